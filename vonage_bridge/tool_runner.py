"""The model's tool calls as tasks of the call, their results sent back through the session:
one runner for media calls and the OpenAI SIP sideband alike. Shell.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from .core.events import RunTool
from .core.session import CallSession
from .metrics import METRICS, TOOL_CANCELLED, TOOL_ERROR, TOOL_OK, TOOL_TIMEOUT, TOOL_UNKNOWN
from .tools import ToolContext, ToolRegistry

log = logging.getLogger(__name__)

# ------------------------------------------------------------------ tools


class ToolRunner:
    """Runs the session's tool calls as tasks of the call (every door).

    Each :class:`RunTool` the session emits (:meth:`start`) runs its handler with a timeout;
    the output (or ``{"error": ...}``: a failing tool is reported to the model, never fatal)
    goes back through ``session.tool_result`` and ``flush`` sends it. A call-ending tool sets
    :attr:`end_requested` (and :attr:`ended_by` to its name). A transfer that succeeds (any
    tool's ``ctx.transfer``) marks the session's ``stats.transferred``. Each call is counted
    in ``vonage_bridge_tool_calls_total`` (``metrics``) once it ends. The tasks die with the
    call (:meth:`stop`).

    Args:
        session: the call's session.
        tools: the tools the model may call; None refuses every call.
        ctx: what tools see of the call.
        flush: sends what the session queued (and starts the tools it asked for).
    """

    def __init__(
        self,
        session: CallSession,
        tools: ToolRegistry | None,
        ctx: ToolContext,
        flush: Callable[[], Awaitable[None]],
    ) -> None:
        self.session = session
        self.tools = tools
        if ctx.transfer is not None:
            ctx = replace(ctx, transfer=self._transfer_with(ctx.transfer))
        self.ctx = ctx
        self.flush = flush
        self.tasks: set[asyncio.Task[None]] = set()
        self.end_requested = asyncio.Event()
        self.ended_by: str | None = None
        self._warned: set[str] = set()

    def _transfer_with(
        self, transfer: Callable[[str], Awaitable[None]]
    ) -> Callable[[str], Awaitable[None]]:
        """``transfer``, marking the call transferred once it succeeded."""

        async def transfer_and_mark(number: str) -> None:
            """Transfer to ``number``; the call's stats say transferred once it succeeded."""
            await transfer(number)
            self.session.stats.transferred = True

        return transfer_and_mark

    def start(self) -> None:
        """Start a task for each tool call the session asked for."""
        for run in self.session.drain_tool_calls():
            task = asyncio.create_task(self.run(run), name=f"tool-{run.name}")
            self.tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # only sending its result can fail here (a socket closing at the end of the call)
            log.debug("%s: result not delivered: %r", task.get_name(), exc)

    async def run(self, run: RunTool) -> None:
        """Run one tool call to its result and send that back."""
        tool = self.tools.get(run.name) if self.tools is not None else None
        ends_call = False
        if tool is None:
            output = json.dumps({"error": f"unknown tool {run.name!r}"})
            METRICS.tool_called(run.name, TOOL_UNKNOWN, registered=False)
            if run.name not in self._warned:
                self._warned.add(run.name)
                log.warning("the model called unknown tool %r", run.name)
        else:
            outcome = TOOL_CANCELLED
            try:
                args = json.loads(run.arguments) if run.arguments.strip() else {}
                if not isinstance(args, dict):
                    raise ValueError("arguments are not a JSON object")
                async with asyncio.timeout(tool.timeout_s):
                    result = await tool.handler(args, self.ctx)
                output = result if isinstance(result, str) else json.dumps(result, default=str)
                ends_call = tool.ends_call
                outcome = TOOL_OK
            except Exception as exc:  # a failing tool is reported to the model, never fatal
                outcome = TOOL_TIMEOUT if isinstance(exc, TimeoutError) else TOOL_ERROR
                log.warning("tool %s failed: %r", run.name, exc)
                output = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
            finally:
                METRICS.tool_called(run.name, outcome, registered=True)
        self.session.now = time.time()
        self.session.tool_result(run.call_id, output, end_call=ends_call)
        if ends_call:
            self.ended_by = run.name
            self.end_requested.set()
        await self.flush()

    async def stop(self) -> None:
        """Cancel the tools still running and wait for them (the call is ending)."""
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

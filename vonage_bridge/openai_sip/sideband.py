"""The sideband socket of an accepted OpenAI SIP call. Shell: does I/O with aiohttp.

The sideband carries JSON events only (the audio stays on SIP): we send the greeting as
``response.create``, keep the transcripts and run tools from the shared registry;
``end_call`` hangs the call up once the goodbye has played, ``transfer_call`` refers the
caller to ``TRANSFER_NUMBER``. The call ends when the socket closes.

Source: OpenAI Realtime SIP guide (https://platform.openai.com/docs/guides/realtime-sip),
Realtime server events (https://platform.openai.com/docs/api-reference/realtime-server-events).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from ..config import OpenAISettings
from ..core.events import (
    FunctionCallDone,
    InputTranscriptCompleted,
    OtherServerEvent,
    OutputTranscriptDone,
    RealtimeError,
    ResponseDone,
)
from ..errors import RealtimeConnectError, RemoteProtocolError, UpstreamError
from ..realtime.connection import MAX_MESSAGE_BYTES
from ..realtime.protocol import client_event, function_call_output, parse_server_event
from ..store import TranscriptEntry
from ..tools import ToolContext, ToolRegistry
from .control import CallGone, SipControl

log = logging.getLogger(__name__)

HANGUP_GRACE_S = 8.0
"""After ``end_call``, hang up when the goodbye has played (``output_audio_buffer.stopped``)
or after this long, whichever is first."""
TRANSFER_TOOL = "transfer_call"


async def open_sideband(
    http: aiohttp.ClientSession, openai: OpenAISettings, call_id: str
) -> aiohttp.ClientWebSocketResponse:
    """``<base as ws>/realtime?call_id=...`` with Bearer auth.

    Raises:
        RealtimeConnectError: refused, timed out or unreachable.
    """
    headers = {"Authorization": f"Bearer {openai.api_key.get_secret_value()}"}
    try:
        async with asyncio.timeout(openai.connect_timeout_s):
            return await http.ws_connect(
                openai.realtime_url,
                params={"call_id": call_id},
                headers=headers,
                max_msg_size=MAX_MESSAGE_BYTES,
                heartbeat=20.0,
            )
    except aiohttp.WSServerHandshakeError as exc:
        raise RealtimeConnectError(f"sideband refused: HTTP {exc.status} {exc.message}") from exc
    except TimeoutError:
        raise RealtimeConnectError("sideband did not answer in time") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise RealtimeConnectError(f"cannot reach the sideband: {exc}") from exc


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Sideband:
    """One accepted SIP call's sideband loop. ``transcript`` fills as the call goes."""

    ws: aiohttp.ClientWebSocketResponse
    call_id: str
    control: SipControl
    tools: ToolRegistry
    caller: str | None = None
    transfer_number: str | None = None
    clock: Callable[[], datetime] = _now
    transcript: list[TranscriptEntry] = field(default_factory=list)
    end_reason: str = "sideband closed"
    _seen_calls: set[str] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _audio_stopped: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._audio_stopped.set()  # nothing is playing yet

    async def run(self, greeting: dict[str, Any]) -> str:
        """Send the greeting, then handle events until the socket closes; the end reason."""
        try:
            await self.ws.send_str(client_event(greeting))
            async for msg in self.ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self._on_text(msg.data)
                elif msg.type is aiohttp.WSMsgType.ERROR:
                    self.end_reason = f"sideband error: {self.ws.exception()!r}"
                    break
            else:
                if self.end_reason == "sideband closed":
                    self.end_reason = f"sideband closed ({self.ws.close_code})"
        finally:
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.ws.close()
        return self.end_reason

    def _add(self, role: str, text: str) -> None:
        self.transcript.append(TranscriptEntry(role, text, self.clock()))

    def _spawn(self, coro: Any, name: str) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_text(self, data: str) -> None:
        try:
            event = parse_server_event(data)
        except RemoteProtocolError as exc:
            log.warning("sideband: %s", exc.message)
            return
        if isinstance(event, InputTranscriptCompleted):
            log.info("caller: %s", event.transcript)
            self._add("caller", event.transcript)
        elif isinstance(event, OutputTranscriptDone):
            log.info("assistant: %s", event.transcript)
            self._add("assistant", event.transcript)
        elif isinstance(event, FunctionCallDone):
            self._on_function_call(event)
        elif isinstance(event, ResponseDone):
            for call in event.function_calls:
                self._on_function_call(call)
        elif isinstance(event, RealtimeError):
            log.warning("sideband error event: %s %s", event.code or event.type, event.message)
        elif isinstance(event, OtherServerEvent):
            if event.type == "output_audio_buffer.started":
                self._audio_stopped.clear()
            elif event.type == "output_audio_buffer.stopped":
                self._audio_stopped.set()

    def _on_function_call(self, call: FunctionCallDone) -> None:
        if call.status not in ("completed", "") or call.call_id in self._seen_calls:
            return
        self._seen_calls.add(call.call_id)
        self._add("tool_call", f"{call.name} {call.arguments}"[:2000])
        self._spawn(self._run_tool(call), f"sip-tool-{call.name}")

    async def _run_tool(self, call: FunctionCallDone) -> None:
        tool = self.tools.get(call.name)
        ends_call = False
        transfer = call.name == TRANSFER_TOOL and self.transfer_number is not None
        try:
            args = json.loads(call.arguments) if call.arguments.strip() else {}
            if not isinstance(args, dict):
                raise ValueError("arguments are not a JSON object")
            if transfer:
                # Set first: the socket may close (call transferred) before refer returns.
                before, self.end_reason = self.end_reason, "transferred"
                try:
                    await self.control.refer(self.call_id, f"tel:+{self.transfer_number}")
                except Exception:  # not cancelled: the transfer failed
                    self.end_reason = before
                    raise
                output = "The caller is being transferred."
            elif tool is None:
                output = json.dumps({"error": f"unknown tool {call.name!r}"})
            else:
                ctx = ToolContext(call_uuid=self.call_id, caller=self.caller)
                async with asyncio.timeout(tool.timeout_s):
                    result = await tool.handler(args, ctx)
                output = result if isinstance(result, str) else json.dumps(result, default=str)
                ends_call = tool.ends_call
        except Exception as exc:  # a failing tool is reported to the model, never fatal
            log.warning("tool %s failed: %r", call.name, exc)
            output = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
        self._add("tool_result", output[:2000])
        await self.ws.send_str(function_call_output(call.call_id, output))
        if ends_call:
            self.end_reason = f"{call.name} tool"
            await self._hang_up_after_goodbye()
        elif not transfer:
            await self.ws.send_str(client_event({"type": "response.create"}))

    async def _hang_up_after_goodbye(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(HANGUP_GRACE_S):
                await self._audio_stopped.wait()
        try:
            await self.control.hangup(self.call_id)
        except CallGone:
            log.info("hang-up: the call had already ended")
        except UpstreamError as exc:
            log.error("hang-up failed: %s", exc.message)

"""What every fake shares about its lifetime: ``async with`` that closes it, and the
background tasks it owns (a caller's receive loop, its playback clock, ...).

Entry ring (I/O): used by the fakes in ``sim/`` and the bridge harness, never by the core.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Self


class ClosedOnExit:
    """``async with`` for a fake: entering runs :meth:`_open` and gives the fake itself,
    leaving runs :meth:`close` (idempotent in every subclass), whatever happened inside."""

    async def __aenter__(self) -> Self:
        await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _open(self) -> None:
        """Hook: what entering does (a server starts listening; a caller does nothing)."""

    async def close(self) -> None:
        """Release everything the fake holds."""
        raise NotImplementedError


class OwnedTasks:
    """Tasks started by name and cancelled together; a finished task forgets itself.

    Args:
        prefix: task names are ``<prefix>-<name>`` (e.g. ``fake-twilio-clock``).
    """

    __slots__ = ("_prefix", "_tasks")

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        """Run ``coro`` as a task of this owner."""
        task: asyncio.Task[None] = asyncio.create_task(coro, name=f"{self._prefix}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def cancel_all(self) -> None:
        """Cancel every task but the calling one, and wait for them to finish."""
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

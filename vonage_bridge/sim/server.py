"""The lifecycle every fake server shares: an aiohttp app on loopback at a port the OS picks.

Entry ring (I/O): used by the fakes in ``sim/``, never by the core.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import ClassVar, Self, TypeVar

from aiohttp import web

from .tasks import ClosedOnExit

T = TypeVar("T")


class LoopbackServer(ClosedOnExit):
    """Serves :attr:`app` on loopback; an async context manager.

    Subclasses build :attr:`app` (and may be dataclasses: call :meth:`_init_server` from
    ``__post_init__`` or ``__init__``, then add routes). :attr:`_closing` is set on
    :meth:`close`, so delayed handlers can give up early; :meth:`_before_cleanup` is where a
    subclass closes its live sockets before the runner stops. A handler records a request
    with :meth:`_record`; a test helper waits for one with :meth:`_wait_recorded`.

    Attributes:
        app: the aiohttp application.
        shutdown_timeout_s: how long the runner waits for handlers still running on close, s.
    """

    shutdown_timeout_s: ClassVar[float] = 1.0

    app: web.Application
    _runner: web.AppRunner | None = None
    _host: str = "127.0.0.1"
    _port: int | None = None
    _closing: asyncio.Event
    _recorded: asyncio.Condition

    def _init_server(self) -> None:
        self.app = web.Application()
        self._runner = None
        self._host = "127.0.0.1"
        self._port = None
        self._closing = asyncio.Event()
        self._recorded = asyncio.Condition()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Self:
        """Listen on ``host:port``; port 0 lets the OS pick (see :attr:`origin`).

        Raises:
            RuntimeError: if already started.
            OSError: if the address cannot be bound.
        """
        if self._runner is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=self.shutdown_timeout_s)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._host = host
        self._port = int(runner.addresses[0][1])
        return self

    async def close(self) -> None:
        """Release delayed requests, run :meth:`_before_cleanup`, stop listening. Idempotent."""
        self._closing.set()
        runner = self._runner
        if runner is None:
            return
        await self._before_cleanup()
        await runner.cleanup()
        self._runner = None

    async def _delay(self, seconds: float) -> None:
        """Wait ``seconds`` (an injected delay), or less if the server is closing."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), seconds)

    async def _record(self, append: Callable[[], None]) -> None:
        """Run ``append`` (it records a request on the fake) and wake :meth:`_wait_recorded`."""
        async with self._recorded:
            append()
            self._recorded.notify_all()

    async def _wait_recorded(self, find: Callable[[], T | None], timeout: float) -> T:
        """The first answer of ``find()`` that is not None, asking again after each
        :meth:`_record`.

        Raises:
            TimeoutError: if ``find()`` still answers None after ``timeout`` s.
        """
        async with asyncio.timeout(timeout), self._recorded:
            await self._recorded.wait_for(lambda: find() is not None)
        found = find()
        assert found is not None
        return found

    async def _before_cleanup(self) -> None:
        """Hook: close what the runner would otherwise wait for (live WebSockets)."""

    async def _open(self) -> None:
        await self.start()

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT`` (an IPv6 host in brackets), once started.

        Raises:
            RuntimeError: the server has not been started.
        """
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} not started")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    @property
    def base_url(self) -> str:
        """The URL clients are configured with; :attr:`origin` unless a subclass adds a path.

        Raises:
            RuntimeError: the server has not been started.
        """
        return self.origin

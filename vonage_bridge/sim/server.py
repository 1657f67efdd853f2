"""The lifecycle the REST fakes share: an aiohttp app on 127.0.0.1 at a port the OS picks.

Entry ring (I/O): used by the fakes in ``sim/``, never by the core.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

from aiohttp import web


class LoopbackServer:
    """Serves :attr:`app` on loopback; an async context manager.

    Subclasses build :attr:`app` (and may be dataclasses: call :meth:`_init_server` from
    ``__post_init__``). :attr:`_closing` is set on :meth:`close`, so delayed handlers can
    give up early.
    """

    app: web.Application
    _runner: web.AppRunner | None = None
    _port: int | None = None
    _closing: asyncio.Event

    def _init_server(self) -> None:
        self.app = web.Application()
        self._runner = None
        self._port = None
        self._closing = asyncio.Event()

    async def start(self, host: str = "127.0.0.1") -> Self:
        """Listen on ``host`` at a port the OS picks (see :attr:`base_url`)."""
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        return self

    async def close(self) -> None:
        """Release delayed requests and stop listening."""
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, once started.

        Raises:
            RuntimeError: the server has not been started.
        """
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} not started")
        return f"http://127.0.0.1:{self._port}"

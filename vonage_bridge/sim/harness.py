"""Run the real bridge app on 127.0.0.1 for the simulation, the tests and the bench.

The listening socket is bound first (port 0: the OS picks), so ``SERVER_URL`` is known before
the settings and the app are built: the same ``make_app`` as production, no monkeypatching.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping

from aiohttp import web

from ..config import Settings
from ..web.app import make_app
from .tasks import ClosedOnExit


class RunningBridge(ClosedOnExit):
    """The bridge app served on a loopback socket.

    Args:
        env: settings variables; ``SERVER_URL`` is filled in with the bound address.
        host: loopback address to bind.
        port: port to bind; 0 (the default) lets the OS pick one.
    """

    def __init__(self, env: Mapping[str, str], host: str = "127.0.0.1", port: int = 0) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        try:
            self.settings = Settings.from_env(
                {**env, "SERVER_URL": self.url, "PORT": str(self.port)}
            )
            self.app = make_app(self.settings)
        except BaseException:
            self._sock.close()  # a ConfigError must not leak the bound socket
            raise
        self._runner = web.AppRunner(
            self.app, handle_signals=False, access_log=None, shutdown_timeout=5.0
        )

    async def start(self) -> RunningBridge:
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()
        return self

    async def close(self) -> None:
        await self._runner.cleanup()

    async def _open(self) -> None:
        await self.start()


def sim_env(openai_base_url: str, **overrides: str) -> dict[str, str]:
    """Settings for a local run against the fake Realtime server (no accounts): the fake
    callers do not sign, so this opts out of webhook verification (``ALLOW_UNSIGNED_WEBHOOKS``;
    override it with ``"false"`` to run signed). Metrics are off (``METRICS_PORT=0``: several
    bridges run at once here; give a free port to scrape them)."""
    env = {
        "OPENAI_API_KEY": "sk-sim",
        "OPENAI_BASE_URL": openai_base_url,
        "SYSTEM_MESSAGE_PATH": "system-message.txt",
        "MEDIA_TOKEN_SECRET": "simulation-secret-not-for-production",
        "OPENAI_CONNECT_TIMEOUT_S": "5",
        "LOG_FORMAT": "text",
        "DATABASE_URL": "sqlite:///:memory:",  # call records kept in memory, no file left behind
        "ALLOW_UNSIGNED_WEBHOOKS": "true",  # the fake Vonage caller does not sign
        "METRICS_PORT": "0",
    }
    env.update(overrides)
    return env

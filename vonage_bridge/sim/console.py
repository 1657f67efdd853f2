"""``bash scripts/sim.sh --console``: after the simulated call, keep the bridge running (with
the fake Realtime server) and open its operator console, until Ctrl-C.

The simulated call's record is in the same temporary SQLite file, so the console's History
shows it at once; "Talk to the assistant" talks to the fake Realtime server (it plays your
words back). An operator ``operator`` is created with a one-time password, printed once,
never logged; the file is deleted at exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal

from ..console.accounts import Accounts
from ..store import SqlCallStore
from ..web.keys import STORE
from .harness import RunningBridge, sim_env
from .realtime import FakeRealtimeServer

OPERATOR = "operator"


async def serve_console(database_url: str, port: int) -> None:
    """Serve the bridge and its console on 127.0.0.1:``port`` until SIGINT or SIGTERM.

    Raises:
        OSError: ``port`` cannot be bound.
    """
    async with (
        FakeRealtimeServer() as fake,
        RunningBridge(sim_env(fake.base_url, DATABASE_URL=database_url), port=port) as bridge,
    ):
        store = bridge.app[STORE]
        assert isinstance(store, SqlCallStore)
        password = secrets.token_urlsafe(12)
        accounts = Accounts(store)
        if not await accounts.add(OPERATOR, password):
            await accounts.set_password(OPERATOR, password)
        print("\n--- operator console ---", flush=True)
        print(f"console:  {bridge.url}/console", flush=True)
        print(f"operator: {OPERATOR}", flush=True)
        print(f"password: {password}   (one-time: a new one each run)", flush=True)
        print("Ctrl-C stops the server.", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()

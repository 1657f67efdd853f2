"""``WORKERS`` > 1: that many processes of the service sharing one port. Entry point.

The parent process (:func:`run_workers`) migrates the database, then starts ``WORKERS``
copies of ``python -m vonage_bridge`` with :data:`WORKER_ENV` set to the worker's number;
each binds ``HOST``:``PORT`` with ``SO_REUSEPORT`` (the kernel spreads new connections
over them) and is an instance in its own right (its own instance id, live calls, heartbeat
and bus connection; the shared state is in PostgreSQL). The parent serves nothing: it
forwards SIGTERM and SIGINT to every worker (each drains, ``web.lifecycle``) and exits when
they all have, with status 0 if they all exited 0, else the first failure's status. A
worker that fails while the others run (e.g. at start-up) makes the parent stop the others
(SIGTERM) and exit with that status. A worker whose parent is gone (killed with SIGKILL, which
cannot be forwarded) drains as on SIGTERM (:func:`watch_parent`, checked every
:data:`PARENT_CHECK_S`).

Sources: https://man7.org/linux/man-pages/man7/socket.7.html (``SO_REUSEPORT``),
https://docs.aiohttp.org/en/stable/web_reference.html#aiohttp.web.TCPSite (``reuse_port``)
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from types import FrameType

from .db_cli import run_db_action

log = logging.getLogger(__name__)

PARENT_CHECK_S = 1.0
"""How often a worker checks that its parent is still there, s."""
WORKER_ENV = "VONAGE_BRIDGE_WORKER"
"""Set in a worker's environment to its number (1..WORKERS): it serves, it does not fork."""


def is_worker() -> bool:
    """Whether this process is a worker started by :func:`run_workers`."""
    return bool(os.environ.get(WORKER_ENV))


def run_workers(count: int, argv: list[str], database_url: str) -> int:
    """Migrate the database once (``DATABASE_URL``: the workers then find it up to date;
    SQLite has no lock to take turns with), start ``count`` workers with ``argv`` (this
    process's arguments), forward signals to them and wait for them all; the exit status
    (see the module docstring)."""
    try:
        log.info("%s", asyncio.run(run_db_action(database_url, "upgrade")))
    except Exception as exc:
        log.error("database upgrade failed: %s", exc.__class__.__name__)
        print(f"vonage-bridge: database upgrade failed: {exc.__class__.__name__}", file=sys.stderr)
        return 1
    procs: list[subprocess.Popen[bytes]] = []
    for n in range(1, count + 1):
        env = {**os.environ, WORKER_ENV: str(n)}
        procs.append(subprocess.Popen([sys.executable, "-m", "vonage_bridge", *argv], env=env))
    log.info("started %d workers (WORKERS=%d): pids %s", count, count, [p.pid for p in procs])
    stopping = False

    def forward(signum: int, _frame: FrameType | None) -> None:
        """Pass ``signum`` on to every running worker; the workers then stop."""
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    status = 0
    running = set(procs)
    while running:
        pid, code = os.wait()  # a signal runs ``forward``; the wait is retried (PEP 475)
        done = next((p for p in running if p.pid == pid), None)
        if done is None:
            continue
        running.discard(done)
        done.returncode = os.waitstatus_to_exitcode(code)
        log.info("worker pid %d exited with status %d", pid, done.returncode)
        if done.returncode != 0 and status == 0:
            status = done.returncode if done.returncode > 0 else 1
            if not stopping:
                stopping = True
                log.error("a worker failed: stopping the others")
                for p in running:
                    p.send_signal(signal.SIGTERM)
    return status


async def watch_parent(orphaned: Callable[[], None]) -> None:
    """In a worker: call ``orphaned()`` once the parent process is gone (the worker was
    re-parented), then return. Runs until then or until cancelled."""
    parent = os.getppid()
    while os.getppid() == parent:
        await asyncio.sleep(PARENT_CHECK_S)
    log.warning("the parent process %d is gone: draining", parent)
    orphaned()

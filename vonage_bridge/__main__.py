"""``python -m vonage_bridge``: load ``.env``, read settings, log, serve until SIGINT/SIGTERM.

``--version`` prints the version; ``--help`` lists every variable with its default, from the
settings model (``cli_help``); ``vonage-bridge doctor ...`` checks a set-up instead of
serving (``doctor``, its own exit statuses).

A start-up failure ends the process with ONE line on stderr, never a traceback (at
``LOG_LEVEL=DEBUG`` the traceback is also logged, to stdout with the other log lines):

- exit 2, the configuration is wrong: a :class:`ConfigError` (every bad variable at once;
  ``TOOLS_MODULE`` that cannot be loaded; ``DATABASE_URL`` naming a SQLite file that cannot be
  opened), a ``HOST`` that does not resolve or is not an address of this machine, a ``PORT``
  this user may not bind;
- exit 1, anything else: a ``PORT`` already in use (another process holds it, so the same
  settings may work on a retry), or any other exception (its class and message).

SIGTERM or SIGINT drains the instance (``web.lifecycle``): no new calls, live calls run to
their end for up to ``DRAIN_TIMEOUT_S`` and are then ended politely; the process exits 0 when
the last call has ended and the stores are closed. A second signal ends every call at once
(hung up, sockets closed with 1001) and exits. The start-up log names the event loop and
ends with the address it listens on.

The event loop (``EVENT_LOOP``): ``auto`` (the default) runs uvloop, the asyncio loop on libuv,
when it can be imported (it is a dependency on Linux and macOS) and asyncio's own loop
otherwise; ``asyncio`` always asyncio's own; ``uvloop`` uvloop or exit 2 if it is not
installed. Sources: https://uvloop.readthedocs.io/ ,
https://docs.python.org/3/library/asyncio-runner.html#asyncio.Runner

We run the app with :class:`aiohttp.web.AppRunner` instead of :func:`aiohttp.web.run_app`:
``run_app`` does not clean up the ``cleanup_ctx`` parts already entered when a later one fails
at start-up, and it cannot tell a bind failure (``HOST``/``PORT``) from any other ``OSError``.
Source: https://docs.aiohttp.org/en/stable/web_advanced.html#application-runners
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from aiohttp import web
from dotenv import load_dotenv

from . import __version__
from .cli_help import variables_help
from .config import Settings
from .errors import ConfigError
from .logs import setup_logging
from .web.app import make_app
from .web.lifecycle import drain
from .workers import is_worker, run_workers, watch_parent

log = logging.getLogger("vonage_bridge")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
SHUTDOWN_TIMEOUT_S = 10.0
"""Bound on closing open HTTP connections at shutdown (``AppRunner(shutdown_timeout=...)``)."""


class ExitError(Exception):
    """The service cannot go on, for a reason already phrased for the operator (one line,
    naming the variable); ``status`` is the exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) made one space."""
    return " ".join(text.split())


def describe_exception(exc: BaseException) -> str:
    """``ClassName: message`` on one line (just the class when the message is empty)."""
    text = one_line(str(exc))
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def config_message(exc: ConfigError) -> str:
    """Every problem of ``exc`` on one line, ``; ``-separated."""
    return "invalid configuration: " + "; ".join(one_line(p) for p in exc.problems)


def bind_failure(exc: OSError, host: str, port: int) -> ExitError:
    """What a failed ``bind``/``getaddrinfo`` of ``HOST``:``PORT`` means for the operator.

    Errno values: ``EADDRINUSE`` (port taken), ``EADDRNOTAVAIL`` (address not on this
    machine), ``EACCES`` (privileged port); a :class:`socket.gaierror` is a name that does
    not resolve. Source: https://man7.org/linux/man-pages/man2/bind.2.html
    """
    reason = os.strerror(exc.errno) if exc.errno else one_line(str(exc))
    if isinstance(exc, socket.gaierror):
        return ExitError(f"HOST={host!r} does not resolve ({reason})", EXIT_CONFIG)
    if exc.errno == errno.EADDRINUSE:
        return ExitError(
            f"PORT={port} is already in use on HOST={host!r}: another process listens there "
            "(stop it or choose another PORT)",
            EXIT_FAILURE,
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return ExitError(
            f"HOST={host!r} is not an address of this machine ({reason}); "
            "use 0.0.0.0 to listen on every interface",
            EXIT_CONFIG,
        )
    if exc.errno == errno.EACCES:
        return ExitError(
            f"PORT={port} on HOST={host!r} may not be bound by this user ({reason})", EXIT_CONFIG
        )
    return ExitError(f"cannot listen on HOST={host!r} PORT={port}: {reason}", EXIT_FAILURE)


LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory(choice: str) -> LoopFactory | None:
    """The ``loop_factory`` of :class:`asyncio.Runner` for ``EVENT_LOOP`` (``auto``,
    ``asyncio`` or ``uvloop``, as the settings validated it); None means asyncio's own loop.

    Raises:
        ExitError: ``uvloop`` when uvloop cannot be imported (exit 2: the configuration asks
            for what this machine lacks).
    """
    if choice == "asyncio":
        return None
    try:
        import uvloop  # optional at run time: not on Windows
    except ImportError as exc:
        if choice == "uvloop":
            raise ExitError(
                f"EVENT_LOOP='uvloop' but uvloop cannot be imported ({describe_exception(exc)}); "
                "install it (Linux and macOS only) or set EVENT_LOOP=auto or asyncio",
                EXIT_CONFIG,
            ) from exc
        return None
    return uvloop.new_event_loop


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop 0.23.0`` for a uvloop loop, else ``asyncio`` and the loop's class."""
    module = type(loop).__module__
    if module.split(".", 1)[0] == "uvloop":
        version = getattr(sys.modules.get("uvloop"), "__version__", "")
        return f"uvloop {version}".rstrip()
    return f"asyncio ({type(loop).__name__})"


def _address(sockname: Any) -> str:
    """``host:port`` of a bound socket (IPv6 hosts in brackets)."""
    host, port = sockname[0], sockname[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    drain_timeout_s: float = 0.0,
    reuse_port: bool = False,
) -> None:
    """Start ``app`` on ``host``:``port`` and serve until SIGINT or SIGTERM; then drain for
    up to ``drain_timeout_s`` (a second signal cuts it short) and shut down. ``reuse_port``:
    bind with ``SO_REUSEPORT`` (a worker of ``WORKERS``, ``workers.py``).

    Raises:
        ExitError: the address cannot be bound (see :func:`bind_failure`), or the shutdown
            failed.
        ConfigError: a ``cleanup_ctx`` found the configuration wrong.
        Exception: anything else a start-up hook raised.
    """
    loop = asyncio.get_running_loop()
    drain_now, stop = asyncio.Event(), asyncio.Event()

    def on_signal() -> None:
        """SIGINT/SIGTERM: the first starts the drain, the second stops at once."""
        (stop if drain_now.is_set() else drain_now).set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # no loop signal handlers on Windows
            loop.add_signal_handler(sig, on_signal)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    try:
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port, reuse_port=reuse_port or None).start()
        except OSError as exc:
            raise bind_failure(exc, host, port) from exc
        addresses = ", ".join(_address(a) for a in runner.addresses)
        log.info("listening on %s (HOST=%s, PORT=%d)", addresses, host, port)
        # Start-up's objects (modules, settings, the app) move to the permanent generation:
        # the collector's full passes stop rescanning them while calls run (bench/README.md).
        gc.freeze()
        orphan_watch = asyncio.create_task(watch_parent(on_signal)) if reuse_port else None
        await drain_now.wait()
        if orphan_watch is not None:
            orphan_watch.cancel()
        log.info("signal received: draining (a second signal ends every call at once)")
        await _drain(app, drain_timeout_s, stop)
        log.info("shutting down")
    except BaseException:
        try:
            await runner.cleanup()
        except Exception as exc:  # keep the start-up failure as the one reported
            log.warning("cleanup after a failed start-up failed too: %s", describe_exception(exc))
        raise
    try:
        await runner.cleanup()
    except Exception as exc:
        raise ExitError(
            f"error while shutting down: {describe_exception(exc)}", EXIT_FAILURE
        ) from exc


async def _drain(app: web.Application, timeout_s: float, stop: asyncio.Event) -> None:
    """:func:`~.web.lifecycle.drain` until it is over or ``stop`` is set (a second signal)."""
    draining = asyncio.create_task(drain(app, timeout_s), name="drain")
    stopping = asyncio.create_task(stop.wait(), name="second-signal")
    try:
        await asyncio.wait({draining, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (draining, stopping):
            task.cancel()
        await asyncio.gather(draining, stopping, return_exceptions=True)
    if stop.is_set():
        log.info("second signal: ending every live call now")


def main(argv: list[str] | None = None) -> int:
    """Run the service (or ``doctor``, ``operator``, ``db``); the exit status (see the module
    docstring)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["doctor"]:
        from .doctor import main as doctor

        return doctor(argv[1:])
    if argv[:1] == ["operator"]:  # console accounts: vonage_bridge/console/cli.py
        from .console.cli import main as operator_main

        return operator_main(argv[1:])
    if argv[:1] == ["db"]:  # vonage-bridge db upgrade|current
        from .db_cli import main as db_main

        return db_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="vonage-bridge",
        description="Vonage Voice <-> OpenAI Realtime bridge. Without a command: serve. "
        "Commands (each has --help): `doctor` checks a set-up before the first call; "
        "`operator add|list|passwd|remove` manages the console's accounts; "
        "`db upgrade|current` migrates the database schema.",
        epilog=variables_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--env-file", default=".env", help="dotenv file to load (default .env)")
    parser.add_argument("--version", action="version", version=f"vonage-bridge {__version__}")
    args = parser.parse_args(argv)
    try:
        load_dotenv(args.env_file, override=False)  # the real environment wins
        settings = Settings.from_env(os.environ)
        setup_logging(settings.log.level, settings.log.format)
        if settings.scale.workers > 1 and not is_worker():  # the parent of WORKERS processes
            return run_workers(settings.scale.workers, argv, settings.store.database_url)
        app = make_app(settings)
        choice = settings.server.event_loop
        with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
            log.info("event loop: %s (EVENT_LOOP=%s)", loop_name(runner.get_loop()), choice)
            runner.run(
                serve(
                    app,
                    settings.server.host,
                    settings.server.port,
                    drain_timeout_s=settings.scale.drain_timeout_s,
                    reuse_port=is_worker(),
                )
            )
    except ExitError as exc:
        return _fail(exc, exc.message, exc.status)
    except ConfigError as exc:
        return _fail(exc, config_message(exc), EXIT_CONFIG)
    except Exception as exc:
        return _fail(exc, f"cannot start: {describe_exception(exc)}", EXIT_FAILURE)
    return EXIT_OK


def _fail(exc: BaseException, message: str, status: int) -> int:
    """Log the traceback at DEBUG (if logging is set up) and print ``message`` to stderr."""
    log.debug("start-up failure", exc_info=exc)
    print(f"vonage-bridge: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())

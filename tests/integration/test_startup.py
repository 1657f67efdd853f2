"""``python -m vonage_bridge`` as a deployer runs it, in a subprocess on 127.0.0.1.

A start-up failure is one line on stderr naming the variable, exit status 2 for configuration
and 1 for anything else, and no traceback (except in the DEBUG log); a good start logs where
it listens, the call-record database (never its password) and the tools, and SIGTERM stops it
with status 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from support import SECOND

from vonage_bridge.sim.harness import sim_env

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent  # sample_tools.py lives here
RUN_TIMEOUT_S = 60 * SECOND  # a cold interpreter on a busy machine; nothing asserts speed


@dataclass(frozen=True)
class Finished:
    status: int
    stdout: str
    stderr: str


def unused_port() -> int:
    """A loopback port nobody listens on (the OS picks it, then we let it go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def bridge_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """A minimal environment: only what the bridge needs, nothing inherited."""
    port = overrides.pop("PORT", None) or str(unused_port())
    env = sim_env(
        "http://127.0.0.1:9",  # never contacted: no call is made
        SYSTEM_MESSAGE_PATH=str(ROOT / "system-message.txt"),
        SERVER_URL=f"http://127.0.0.1:{port}",
        HOST="127.0.0.1",
        PORT=port,
        PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE), str(tmp_path)]),
    )
    env.update(overrides)
    return env


async def spawn(tmp_path: Path, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vonage_bridge",
        "--env-file",
        str(tmp_path / "absent.env"),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def stop(proc: asyncio.subprocess.Process) -> None:
    """Kill ``proc`` if it still runs (a test that failed half-way)."""
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


async def run_bridge(tmp_path: Path, **env: str) -> Finished:
    """Run the bridge until it exits on its own (a failing start)."""
    proc = await spawn(tmp_path, bridge_env(tmp_path, **env))
    try:
        async with asyncio.timeout(RUN_TIMEOUT_S):
            out, err = await proc.communicate()
    finally:
        await stop(proc)
    assert proc.returncode is not None
    return Finished(proc.returncode, out.decode(), err.decode())


def assert_one_line_failure(run: Finished, status: int, *names: str) -> str:
    """Exit ``status``, one stderr line containing every one of ``names``, no traceback."""
    assert run.status == status, run
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("vonage-bridge: ")
    for name in names:
        assert name in lines[0]
    assert "Traceback" not in run.stderr + run.stdout
    return lines[0]


# --- configuration errors: exit 2 -----------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "source", "detail"),
    [
        ("vb_absent_tools", None, "no such module"),
        ("vb_raising_tools", "raise RuntimeError('tools backend down')\n", "tools backend down"),
        (
            "vb_bad_name_tools",
            "from vonage_bridge.tools import Tool\n"
            "async def look(args, ctx):\n    return 'x'\n"
            "TOOLS = [Tool('look up', 'Look something up.', look)]\n",
            "'look up'",
        ),
        (
            "vb_sync_handler_tools",
            "def register(registry):\n"
            "    @registry.tool('lookup', 'Look something up.')\n"
            "    def lookup(args, ctx):\n        return 'x'\n",
            "async",
        ),
    ],
    ids=["not-importable", "import-raises", "bad-tool-name", "sync-handler"],
)
async def test_bad_tools_module_is_one_line_naming_it(
    tmp_path: Path, module: str, source: str | None, detail: str
) -> None:
    if source is not None:
        (tmp_path / f"{module}.py").write_text(source)

    run = await run_bridge(tmp_path, TOOLS_MODULE=module)

    assert_one_line_failure(run, 2, "TOOLS_MODULE", module, detail)


async def test_sqlite_file_that_cannot_be_opened_is_one_line_naming_database_url(
    tmp_path: Path,
) -> None:
    """The ConfigError comes from a cleanup_ctx, raised inside aiohttp's start-up."""
    db = tmp_path / "calls.db"
    db.write_text("this is not a SQLite database, only text long enough to have a header\n" * 4)

    run = await run_bridge(tmp_path, DATABASE_URL=f"sqlite:///{db}")

    assert_one_line_failure(run, 2, "DATABASE_URL", str(db))


async def test_unresolvable_host_is_one_line_naming_host(tmp_path: Path) -> None:
    # A host with a port in it: the resolver refuses the name locally, nothing is sent.
    run = await run_bridge(tmp_path, HOST="localhost:3000")

    assert_one_line_failure(run, 2, "HOST='localhost:3000'", "does not resolve")


async def test_host_not_on_this_machine_is_one_line_naming_host(tmp_path: Path) -> None:
    # 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never a local address; bind fails locally.
    run = await run_bridge(tmp_path, HOST="192.0.2.1")

    assert_one_line_failure(run, 2, "HOST='192.0.2.1'", "not an address of this machine")


# --- other failures: exit 1 ------------------------------------------------------------------


async def test_port_in_use_is_one_line_naming_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        run = await run_bridge(tmp_path, PORT=str(port))

    assert_one_line_failure(run, 1, f"PORT={port}", "already in use")


FAULT_TOOLS = """\
# Loaded as TOOLS_MODULE (valid, registers nothing), it breaks the start-up report, to stand
# for any unexpected exception during start-up.
import vonage_bridge.web.app as app

def _broken(*args, **kwargs):
    raise RuntimeError("injected start-up fault\\nsecond line")

app._startup_report = _broken
TOOLS = []
"""


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
async def test_unexpected_exception_is_one_line_traceback_only_in_debug_log(
    tmp_path: Path, level: str
) -> None:
    (tmp_path / "vb_fault_tools.py").write_text(FAULT_TOOLS)

    run = await run_bridge(tmp_path, TOOLS_MODULE="vb_fault_tools", LOG_LEVEL=level)

    assert run.status == 1, run
    assert run.stderr.splitlines() == [
        "vonage-bridge: cannot start: RuntimeError: injected start-up fault second line"
    ]
    if level == "DEBUG":
        assert "Traceback" in run.stdout and "injected start-up fault" in run.stdout
    else:
        assert "Traceback" not in run.stdout


# --- a good start: the log says where, which database and which tools -----------------------


Started = Callable[..., Awaitable[tuple[asyncio.subprocess.Process, list[str]]]]


@pytest.fixture
async def start_bridge(tmp_path: Path) -> AsyncIterator[Started]:
    """Factory: start the bridge, return it with its log lines up to "listening on"."""
    procs: list[asyncio.subprocess.Process] = []

    async def start(**env: str) -> tuple[asyncio.subprocess.Process, list[str]]:
        proc = await spawn(tmp_path, bridge_env(tmp_path, **env))
        procs.append(proc)
        assert proc.stdout is not None
        lines: list[str] = []
        async with asyncio.timeout(RUN_TIMEOUT_S):
            while not lines or " listening on " not in lines[-1]:
                line = await proc.stdout.readline()
                assert line, f"exited before listening: {lines}"
                lines.append(line.decode().rstrip("\n"))
        return proc, lines

    yield start
    for proc in procs:
        await stop(proc)


async def sigterm(proc: asyncio.subprocess.Process) -> Finished:
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(RUN_TIMEOUT_S):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return Finished(proc.returncode, out.decode(), err.decode())


def line_with(lines: list[str], text: str) -> str:
    found = [line for line in lines if text in line]
    assert len(found) == 1, (text, lines)
    return found[0]


async def test_start_up_log_names_address_database_and_tools_then_sigterm_exits_0(
    tmp_path: Path, start_bridge: Started
) -> None:
    port = unused_port()
    db = tmp_path / "records" / "calls.db"
    db.parent.mkdir()

    proc, lines = await start_bridge(
        PORT=str(port), DATABASE_URL=f"sqlite:///{db}", TOOLS_MODULE="sample_tools"
    )

    assert f"listening on 127.0.0.1:{port} " in lines[-1]
    assert f"call records: SQLite file {db} " in line_with(lines, "call records:")
    assert "end_call, lookup_order" in line_with(lines, "tools loaded:")
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/health") as resp,
    ):
        assert resp.status == 200  # the address logged is the one that answers
    finished = await sigterm(proc)
    assert finished.status == 0
    assert finished.stderr == ""
    assert "shutting down" in finished.stdout


async def test_postgresql_is_logged_without_its_password(
    tmp_path: Path, start_bridge: Started
) -> None:
    """PostgreSQL unreachable is not fatal; its ERROR line names host and database only."""
    pg_port = unused_port()  # nothing listens: refused at once, on loopback
    url = f"postgresql://app:pw-s3cret@127.0.0.1:{pg_port}/calls"

    proc, lines = await start_bridge(DATABASE_URL=url)

    off = line_with(lines, "call records OFF:")
    assert f"PostgreSQL database calls on 127.0.0.1:{pg_port} as user app" in off
    finished = await sigterm(proc)
    assert finished.status == 0
    assert "pw-s3cret" not in "\n".join(lines) + finished.stdout + finished.stderr

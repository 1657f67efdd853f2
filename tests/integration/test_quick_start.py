"""The README's quick start against the fakes, followed literally: ``vonage-bridge-sim serve``
writes ``.env``, ``change_url.py`` points the fake application at the bridge, the bridge
starts, ``vonage-bridge doctor`` says it is ready, ``vonage-bridge-sim call`` places a call
and the call's record is in the SQLite file. Every command runs as a process, as a user
types it (ports chosen by the OS instead of the fixed defaults, so parallel runs do not
collide)."""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support import SECOND

from vonage_bridge.sim.serve import READY_LINE
from vonage_bridge.store import SqlCallStore

ROOT = Path(__file__).resolve().parents[2]
PROGRAMS = {
    "vonage-bridge": [sys.executable, "-m", "vonage_bridge"],
    "vonage-bridge-sim": [sys.executable, "-m", "vonage_bridge.sim"],
    "python": [sys.executable],
}
QUICK_START = [
    "vonage-bridge-sim serve --env-file .env",
    "python change_url.py local --force",
    "python change_url.py twilio local --force",
    "vonage-bridge",
    "vonage-bridge doctor --allow-local",
    "vonage-bridge-sim call --url http://127.0.0.1:3000",
]
"""The commands of the README's "Quick start" against the fakes, in order."""


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def argv(command: str, port: int) -> list[str]:
    words = shlex.split(command.replace("3000", str(port)))
    if words[:2] == ["python", "change_url.py"]:
        words[1] = str(ROOT / "change_url.py")
    if words[:2] == ["vonage-bridge-sim", "serve"]:
        words += ["--realtime-port", "0", "--vonage-port", "0", "--twilio-port", "0"]
        words += ["--bridge-port", str(port)]
    return PROGRAMS[words[0]] + words[1:]


@pytest.fixture
async def processes() -> AsyncIterator[list[asyncio.subprocess.Process]]:
    started: list[asyncio.subprocess.Process] = []
    yield started
    for proc in started:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    for proc in started:
        async with asyncio.timeout(20 * SECOND):
            await proc.wait()


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VONAGE_", "OPENAI_"))}
    env["PYTHONPATH"] = str(ROOT)
    return env


async def start(
    command: list[str], cwd: Path, started: list[asyncio.subprocess.Process], until: str
) -> asyncio.subprocess.Process:
    """Start a long-running command and wait for the line that says it is ready."""
    proc = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=child_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    started.append(proc)
    assert proc.stdout is not None
    seen: list[str] = []
    async with asyncio.timeout(60 * SECOND):
        while until not in (line := (await proc.stdout.readline()).decode()):
            assert line, f"{command} ended before {until!r}: {''.join(seen)}"
            seen.append(line)
    return proc


async def run(command: list[str], cwd: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=child_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(90 * SECOND):
        out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def test_the_readme_quick_start_has_these_commands() -> None:
    """The commands run below are the README's, in its order (comments aside), and the
    quick start fits in 40 lines."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    assert len(section.strip().splitlines()) <= 40
    blocks = section.split("```sh\n")[1:]
    lines = [
        line.split("#", 1)[0].strip() for b in blocks for line in b.split("```")[0].splitlines()
    ]
    commands = iter(lines)
    missing = [c for c in QUICK_START if c not in commands]  # in order: a subsequence
    assert missing == []


async def test_the_quick_start_places_a_call_against_the_fakes(
    tmp_path: Path, processes: list[asyncio.subprocess.Process]
) -> None:
    port = unused_port()
    serve, change, change_twilio, bridge, doctor, call = (argv(c, port) for c in QUICK_START)
    await start(serve, tmp_path, processes, READY_LINE)
    assert "OPENAI_API_KEY=sk-sim" in (tmp_path / ".env").read_text(encoding="utf-8")

    code, out = await run(change, tmp_path)
    assert code == 0 and "updated" in out, out
    code, out = await run(change_twilio, tmp_path)
    assert code == 0 and "updated" in out, out
    bridge_proc = await start(bridge, tmp_path, processes, "listening on")
    code, out = await run(doctor, tmp_path)
    assert code == 0, out
    assert "verdict: ready for a real call (Vonage, Twilio)" in out

    code, out = await run(call, tmp_path)
    assert code == 0, out
    assert "result: reply heard" in out
    call_uuid = out.split()[1].rstrip(":")

    # A graceful stop ends after the call records are written: then read the SQLite file.
    bridge_proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(30 * SECOND):
        assert await bridge_proc.wait() == 0
    store = await SqlCallStore.open(f"sqlite:///{tmp_path / 'calls.db'}")
    try:
        record = await store.get(call_uuid)
    finally:
        await store.close()
    assert record is not None and record.front_door == "vonage"

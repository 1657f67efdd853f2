"""``python -m vonage_bridge`` runs the event loop ``EVENT_LOOP`` asks for and says so.

Each case starts the bridge in a subprocess on 127.0.0.1, reads its start-up log up to
"listening on", checks the ``event loop:`` line, that ``/health`` answers on that loop, and
that SIGTERM still ends it with status 0. The rest of the suite runs on asyncio's own loop.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
from test_startup import RUN_TIMEOUT_S, bridge_env, spawn, stop, unused_port


def uvloop_installed() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


needs_uvloop = pytest.mark.skipif(not uvloop_installed(), reason="uvloop is not installed")


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        pytest.param("auto", "event loop: uvloop ", marks=needs_uvloop, id="auto"),
        pytest.param("asyncio", "event loop: asyncio (", id="asyncio"),
        pytest.param("uvloop", "event loop: uvloop ", marks=needs_uvloop, id="uvloop"),
    ],
)
async def test_the_loop_event_loop_asks_for_runs_and_is_logged(
    tmp_path: Path, choice: str, expected: str
) -> None:
    port = unused_port()
    proc = await spawn(tmp_path, bridge_env(tmp_path, PORT=str(port), EVENT_LOOP=choice))
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        async with asyncio.timeout(RUN_TIMEOUT_S):
            while not lines or " listening on " not in lines[-1]:
                line = await proc.stdout.readline()
                assert line, f"exited before listening: {lines}"
                lines.append(line.decode().rstrip("\n"))
        loop_lines = [line for line in lines if "event loop: " in line]
        assert len(loop_lines) == 1, lines
        assert expected in loop_lines[0]
        assert f"(EVENT_LOOP={choice})" in loop_lines[0]
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/health") as resp,
        ):
            assert resp.status == 200
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(RUN_TIMEOUT_S):
            _, err = await proc.communicate()
        assert proc.returncode == 0
        assert err.decode() == ""
    finally:
        await stop(proc)


@pytest.mark.skipif(sys.platform == "win32", reason="the exit path is the same; uvloop is absent")
async def test_uvloop_asked_for_but_not_importable_is_one_line_exit_2(tmp_path: Path) -> None:
    # A module named uvloop that fails to import stands for a machine without uvloop.
    (tmp_path / "uvloop.py").write_text("raise ImportError('no uvloop here')\n")
    proc = await spawn(tmp_path, bridge_env(tmp_path, EVENT_LOOP="uvloop"))
    try:
        async with asyncio.timeout(RUN_TIMEOUT_S):
            out, err = await proc.communicate()
    finally:
        await stop(proc)
    assert proc.returncode == 2
    lines = err.decode().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("vonage-bridge: EVENT_LOOP='uvloop' but uvloop cannot be imported")
    assert "Traceback" not in out.decode() + err.decode()

"""``WORKERS=2``: two processes share the port (``SO_REUSEPORT``), each an instance of its
own; SIGTERM to the parent drains both and the parent exits 0 when they have."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import aiohttp
from support import SECOND
from test_startup import bridge_env

API_KEY = "workers-key-0123456789"


async def test_two_workers_share_the_port_and_stop_together(tmp_path: Path) -> None:
    env = bridge_env(
        tmp_path,
        WORKERS="2",
        CONNECT_API_KEY=API_KEY,
        DATABASE_URL=f"sqlite:///{tmp_path / 'calls.db'}",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vonage_bridge",
        "--env-file",
        str(tmp_path / "absent.env"),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group: the cleanup reaches the workers
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        async with asyncio.timeout(30 * SECOND):
            while sum(" listening on " in line for line in lines) < 2:
                line = await proc.stdout.readline()
                assert line, f"exited before both workers listened: {lines}"
                lines.append(line.decode().rstrip("\n"))
        assert any("SQLite" in line and "WORKERS=2" in line for line in lines)  # the warning
        url = f"http://127.0.0.1:{env['PORT']}/calls/live"
        seen: set[str] = set()
        for _ in range(100):  # a new connection each time: the kernel spreads them
            if len(seen) == 2:
                break
            async with aiohttp.ClientSession() as http:
                async with http.get(url, headers={"X-API-Key": API_KEY}) as resp:
                    assert resp.status == 200
                    seen.add((await resp.json())["instance_id"])
        assert len(seen) == 2, seen
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30 * SECOND):
            out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        rest = out.decode()
        assert rest.count("drained: no call left") == 2
        assert rest.count("exited with status 0") == 2
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


async def test_workers_drain_and_exit_when_their_parent_is_killed(tmp_path: Path) -> None:
    env = bridge_env(tmp_path, WORKERS="2", DATABASE_URL=f"sqlite:///{tmp_path / 'calls.db'}")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vonage_bridge",
        "--env-file",
        str(tmp_path / "absent.env"),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        async with asyncio.timeout(30 * SECOND):
            while sum(" listening on " in line for line in lines) < 2:
                line = await proc.stdout.readline()
                assert line, f"exited before both workers listened: {lines}"
                lines.append(line.decode().rstrip("\n"))
        proc.kill()  # SIGKILL: nothing is forwarded
        await proc.wait()
        # The workers share the stdout pipe: it ends when both have exited on their own.
        async with asyncio.timeout(30 * SECOND):
            rest = (await proc.stdout.read()).decode()
        assert rest.count("is gone: draining") == 2
        assert rest.count("drained: no call left") == 2
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.returncode is None:
            await proc.wait()

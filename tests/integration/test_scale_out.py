"""Two instances (subprocesses) behind HAProxy (round robin, health-checked) on one
PostgreSQL, on loopback: the issue's scale-out and rolling-restart scenario.

1. 20 simulated calls through the balancer spread over both instances; an answer URL served
   by one and its media socket on the other works; ``/calls/live`` on either lists all 20; a
   hang-up asked on one ends a call held by the other; the operator console of one lists a
   call held by the other, shows its transcript lines as they come and hangs it up; an
   OpenAI SIP webhook retried on the other instance is ignored.
2. Rolling restart: SIGTERM to instance A with calls live -> A's ``/health`` is 503 at once,
   new calls through the balancer go to B (HAProxy retries a 503 on the other server), A's
   calls play to their end with no reply frame lost, A exits 0 when its last call has
   ended, and every call has its record.

Needs ``haproxy`` (``.ci/run`` installs Debian's) and ``VB_TEST_POSTGRES_URL``; each run uses
a schema of its own. Skips locally without them; fails under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pg_support import PgSchema, pg_schema
from support import SECOND
from test_vonage_call import speech

from vonage_bridge.console.accounts import Accounts
from vonage_bridge.sim.harness import sim_env
from vonage_bridge.sim.openai_sip import (
    TEST_WEBHOOK_SECRET,
    incoming_call_body,
    send_webhook,
    signed_headers,
)
from vonage_bridge.sim.realtime import FakeRealtimeServer, FakeRealtimeSession
from vonage_bridge.sim.vonage import FakeVonageCaller
from vonage_bridge.store import SqlCallStore

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "scale-out-key-0123456789"
HEADERS = {"X-API-Key": API_KEY}
REALTIME_FRAME = 960  # 20 ms of 24 kHz PCM16: one caller frame of the fake's reply
CALLER_FRAME = 640  # 20 ms of 16 kHz L16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float, what: str) -> None:
    """Poll ``check`` (another process's state: no event to wait on) every 50 ms, bounded."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@dataclass
class Instance:
    name: str
    port: int
    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def start_instance(
    name: str, env: dict[str, str], tmp: Path, *, port: int | None = None
) -> Instance:
    port = port or free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vonage_bridge",
        "--env-file",
        str(tmp / "absent.env"),
        cwd=tmp,
        env={**env, "PORT": str(port), "HOST": "127.0.0.1"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    inst = Instance(name, port, proc)
    listening = asyncio.Event()

    async def read() -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            text = line.decode(errors="replace").rstrip("\n")
            inst.lines.append(text)
            if " listening on " in text:
                listening.set()

    inst.reader = asyncio.create_task(read())
    waiting = asyncio.create_task(listening.wait())
    await asyncio.wait({waiting, inst.reader}, timeout=30 * SECOND, return_when="FIRST_COMPLETED")
    waiting.cancel()
    assert listening.is_set(), f"instance {name} did not start: {inst.lines[-20:]}"
    return inst


HAPROXY_CFG = """
global
    maxconn 1024
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 120s
    retries 2
    option redispatch 1
    retry-on 503 conn-failure empty-response
frontend calls
    bind 127.0.0.1:{port}
    default_backend bridges
backend bridges
    balance roundrobin
    option httpchk GET /health
    http-check expect status 200
    default-server inter 200ms fall 1 rise 2
    server a 127.0.0.1:{a} check
    server b 127.0.0.1:{b} check
"""


@dataclass
class Cluster:
    a: Instance
    b: Instance
    lb_url: str
    fake: FakeRealtimeServer
    http: aiohttp.ClientSession

    async def get(self, base: str, path: str) -> tuple[int, Any]:
        async with self.http.get(base + path, headers=HEADERS) as resp:
            return resp.status, await resp.json()

    async def post(self, base: str, path: str) -> tuple[int, Any]:
        async with self.http.post(base + path, headers=HEADERS) as resp:
            return resp.status, await resp.json()

    async def live(self, base: str) -> dict[str, str]:
        """call uuid -> instance id, as ``base`` lists them."""
        status, body = await self.get(base, "/calls/live")
        assert status == 200, body
        return {c["call_uuid"]: c["instance_id"] for c in body["calls"]}

    async def instance_id(self, inst: Instance) -> str:
        return str((await self.get(inst.url, "/calls/live"))[1]["instance_id"])


@pytest.fixture
async def schema() -> AsyncIterator[PgSchema]:
    async for s in pg_schema():
        yield s


@pytest.fixture
async def cluster(schema: PgSchema, tmp_path: Path) -> AsyncIterator[Cluster]:
    haproxy = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None
    )
    if haproxy is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but haproxy is not installed (.ci/run installs it)")
        pytest.skip("haproxy not installed (apt-get install haproxy)")
    fake = FakeRealtimeServer()
    await fake.start()
    lb_port = free_port()
    lb_url = f"http://127.0.0.1:{lb_port}"
    env = sim_env(
        fake.base_url,
        SYSTEM_MESSAGE_PATH=str(ROOT / "system-message.txt"),
        SERVER_URL=lb_url,  # the NCCO's media socket goes through the balancer
        DATABASE_URL=schema.url,
        CONNECT_API_KEY=API_KEY,
        INSTANCE_COUNT="2",
        OPENAI_WEBHOOK_SECRET=TEST_WEBHOOK_SECRET,
        DRAIN_TIMEOUT_S="60",
        UNSIGNED_CALLS_PER_MINUTE="1000",
        LOG_FORMAT="text",
        PYTHONPATH=str(ROOT),
        PATH=os.environ.get("PATH", ""),
    )
    started: list[Instance] = []
    lb: asyncio.subprocess.Process | None = None
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
    try:
        for name in ("a", "b"):
            started.append(await start_instance(name, env, tmp_path))
        a, b = started
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(HAPROXY_CFG.format(port=lb_port, a=a.port, b=b.port))
        lb = await asyncio.create_subprocess_exec(
            haproxy, "-f", str(cfg), "-db", stdout=asyncio.subprocess.DEVNULL
        )
        c = Cluster(a, b, lb_url, fake, http)

        async def both_up() -> bool:
            try:
                seen = {await c.instance_id(a), await c.instance_id(b)}
                via = {(await c.get(lb_url, "/calls/live"))[1]["instance_id"] for _ in range(4)}
            except (aiohttp.ClientError, KeyError, TypeError):
                return False
            return via == seen

        await until(both_up, 20 * SECOND, "HAProxy to route to both instances")
        yield c
    finally:
        await http.close()
        if lb is not None and lb.returncode is None:
            lb.terminate()
            await lb.wait()
        for inst in started:
            if inst.proc.returncode is None:
                inst.proc.kill()
                await inst.proc.wait()
            if inst.reader is not None:
                await asyncio.gather(inst.reader, return_exceptions=True)
        await fake.close()


def caller_via(c: Cluster, n: int) -> FakeVonageCaller:
    return FakeVonageCaller(c.http, f"{c.lb_url}/incoming-call", from_number=f"4477009{n:05d}")


def live_session(c: Cluster, caller: FakeVonageCaller) -> FakeRealtimeSession:
    """The Realtime session that carried ``caller``'s audio (not a warm one left unused)."""
    mine = [
        s
        for s in c.fake.sessions
        if caller.from_number in str(s.config.get("instructions", "")) and s.append_log
    ]
    assert len(mine) == 1, len(mine)
    return mine[0]


Match = Callable[[dict[str, Any]], bool]
Events = Callable[[Match], Awaitable[dict[str, Any]]]


@contextlib.asynccontextmanager
async def _console(
    c: Cluster, schema: PgSchema
) -> AsyncIterator[tuple[Events, Callable[[str], Awaitable[None]]]]:
    """Log an operator in on A's console; ``(events(match), hang_up(call_uuid))``: the next
    SSE event matching ``match``, and the console's Hang up."""
    store = SqlCallStore(schema.engine())
    try:
        assert await Accounts(store).add("ops", "scale-out password")
    finally:
        await store.close()
    base = c.a.url
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(f"{base}/console/login") as resp:
            form = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
        assert form is not None
        login = {"name": "ops", "password": "scale-out password", "csrf": form[1]}
        async with http.post(f"{base}/console/login", data=login, allow_redirects=False) as r:
            assert r.status == 303
        async with http.get(f"{base}/console/live") as resp:
            token = re.search(r'name="csrf-token" content="([^"]+)"', await resp.text())
        assert token is not None
        csrf = token[1]
        async with http.get(f"{base}/console/api/events") as stream:
            seen: list[dict[str, Any]] = []

            async def events(match: Match) -> dict[str, Any]:
                try:
                    async with asyncio.timeout(15 * SECOND):
                        while True:
                            line = (await stream.content.readline()).decode()
                            if line.startswith("data: "):
                                event: dict[str, Any] = json.loads(line[6:])
                                seen.append(event)
                                if match(event):
                                    return event
                except TimeoutError:
                    raise AssertionError(f"no such console event; seen: {seen[-5:]}") from None

            async def hang_up(call_uuid: str) -> None:
                path = f"{base}/console/calls/{call_uuid}/hangup"
                async with http.post(path, data={"csrf": csrf}, allow_redirects=False) as r:
                    assert r.status == 303

            yield events, hang_up


async def test_two_instances_behind_haproxy_share_calls_and_restart_without_dropping_any(
    cluster: Cluster, schema: PgSchema
) -> None:
    c = cluster
    a_id, b_id = await c.instance_id(c.a), await c.instance_id(c.b)

    # -- 20 calls through the balancer -----------------------------------------------------
    # Round robin per request: a call's answer URL and media socket go to different
    # instances (answer on one, media on the other); a /health between two calls shifts the
    # turn, so the media sockets land on both.
    callers = []
    for n in range(20):
        if n % 2:
            async with c.http.get(c.lb_url + "/health") as resp:
                assert resp.status == 200
        caller = caller_via(c, n)
        await caller.answer()
        await caller.connect()
        callers.append(caller)
    uuids = {x.call_uuid for x in callers}

    async def all_listed() -> bool:
        return set(await c.live(c.a.url)) == uuids and set(await c.live(c.b.url)) == uuids

    await until(all_listed, 10 * SECOND, "/calls/live to list the 20 calls on both")
    held = await c.live(c.b.url)
    assert set(held.values()) == {a_id, b_id}  # spread over both
    assert held == await c.live(c.a.url)

    # An answer URL on A, its media socket on B (the token A minted opens the socket on B).
    cross = FakeVonageCaller(c.http, f"{c.a.url}/incoming-call", from_number="447700999999")
    await cross.answer()
    assert cross.ncco is not None
    for action in cross.ncco:
        for endpoint in action.get("endpoint", []):
            endpoint["uri"] = endpoint["uri"].replace(
                c.lb_url.replace("http", "ws"), "ws" + c.b.url[4:]
            )
    await cross.connect()
    await until(
        lambda: _held_by(c, cross.call_uuid, b_id), 10 * SECOND, "B to hold the crossed call"
    )

    # A hang-up asked on one instance ends a call held by the other, both ways.
    on_a = next(x for x in callers if held[x.call_uuid] == a_id)
    on_b = next(x for x in callers if held[x.call_uuid] == b_id)
    for target, ask in ((on_b, c.a), (on_a, c.b)):
        status, body = await c.post(ask.url, f"/calls/{target.call_uuid}/hangup")
        assert (status, body["status"]) == (202, "requested"), body
        await target.wait_closed(timeout=10 * SECOND)
        assert target.close_code == 1001

    # A's console lists a call held by B, its transcript lines arrive live (the bus), and
    # its Hang up ends it on B.
    watched = next(x for x in callers if held[x.call_uuid] == b_id and x is not on_b)
    async with _console(c, schema) as (events, hang_up):
        first = await events(lambda e: True)
        assert first["type"] == "snapshot"
        listed = {call["call_uuid"]: call["instance_id"] for call in first["calls"]}
        assert listed[watched.call_uuid] == b_id
        on_a_now = {u for u, i in listed.items() if i is None}  # A's own calls
        assert on_a_now and on_a_now <= {u for u, i in held.items() if i == a_id}
        await watched.stream_audio(speech(), realtime=True)
        await watched.stream_silence(900)
        await live_session(c, watched).wait_responses_done(1, timeout=15 * SECOND)
        line = await events(lambda e: e["type"] == "line" and e["call_uuid"] == watched.call_uuid)
        assert line["entry"]["role"] in ("caller", "assistant"), line
        await hang_up(watched.call_uuid)
        await watched.wait_closed(timeout=10 * SECOND)
        assert watched.close_code == 1001
        end = await events(lambda e: e["type"] == "end" and e["call_uuid"] == watched.call_uuid)
        assert "console" in end["reason"], end

    # An OpenAI SIP webhook delivered to A, retried on B: B ignores it.
    body = incoming_call_body("rtc_scale_out")
    headers = signed_headers(TEST_WEBHOOK_SECRET, body)
    assert (await send_webhook(c.http, f"{c.a.url}/openai/webhook", body, headers))[1] == {
        "status": "accepted"
    }
    status, answer = await send_webhook(c.http, f"{c.b.url}/openai/webhook", body, headers)
    assert (status, answer["status"]) == (200, "duplicate")

    for x in [*callers, cross]:
        await x.hang_up()

    async def none_listed() -> bool:
        return not await c.live(c.a.url)

    await until(none_listed, 10 * SECOND, "the calls to end")

    # -- rolling restart: SIGTERM to A with calls live ----------------------------------------
    playing: list[FakeVonageCaller] = []
    n = 100
    while len(playing) < 3:  # about every other call lands on A
        assert n < 120, "no call landed on A"
        if n % 2:  # shift the round robin's turn (see above)
            async with c.http.get(c.lb_url + "/health") as resp:
                assert resp.status == 200
        caller = caller_via(c, n)
        n += 1
        await caller.answer()
        await caller.connect()
        callers.append(caller)
        await until(
            lambda caller=caller: _listed(c, caller.call_uuid), 10 * SECOND, "the call listed"
        )
        if (await c.live(c.b.url))[caller.call_uuid] == a_id:
            playing.append(caller)
    others = [x for x in callers[20:] if x not in playing]

    c.a.proc.send_signal(signal.SIGTERM)

    async def a_draining() -> bool:
        async with c.http.get(c.a.url + "/health") as resp:
            return resp.status == 503 and (await resp.json())["status"] == "draining"

    await until(a_draining, 2 * SECOND, "A's /health to answer 503 draining")
    # New calls through the balancer now all land on B.
    late = []
    for m in range(4):
        caller = caller_via(c, 200 + m)
        await caller.answer()
        await caller.connect()
        late.append(caller)
        await until(lambda x=caller: _held_by(c, x.call_uuid, b_id), 10 * SECOND, "B to hold it")

    # A's calls play to their end: speech, the assistant's reply heard in full, hang up.
    async def converse(caller: FakeVonageCaller) -> tuple[int, int]:
        await caller.stream_audio(speech(), realtime=True)
        await caller.stream_silence(900)
        session = live_session(c, caller)
        done = await session.wait_responses_done(1, timeout=15 * SECOND)
        expected = sum(math.ceil(r.total_bytes / REALTIME_FRAME) for r in done)
        await caller.wait_heard(expected * CALLER_FRAME, timeout=15 * SECOND)
        await caller.hang_up()
        return expected, caller.bytes_received // CALLER_FRAME

    results = await asyncio.gather(*(converse(x) for x in playing))
    for expected, received in results:
        assert expected > 0 and received >= expected  # 0 reply frames lost
    for x in playing:
        assert x.close_code == 1000  # the caller hung up: the call was never cut

    status = await asyncio.wait_for(c.a.proc.wait(), timeout=30 * SECOND)
    assert status == 0, c.a.lines[-30:]
    assert any("drained: no call left" in line for line in c.a.lines)

    for x in [*others, *late]:
        await x.hang_up()
    await until(lambda: _none_live(c), 10 * SECOND, "B's calls to end")

    # Every call has its record (read through B: A is gone).
    everyone = [*callers, cross, *late]
    missing = []
    for x in everyone:
        status, record = await c.get(c.b.url, f"/calls/{x.call_uuid}")
        if status != 200:
            missing.append(x.call_uuid)
    assert missing == []
    for x in playing:
        status, record = await c.get(c.b.url, f"/calls/{x.call_uuid}")
        assert record["end_reason"].startswith("caller hung up"), record


async def _held_by(c: Cluster, call_uuid: str, instance_id: str) -> bool:
    return (await c.live(c.b.url)).get(call_uuid) == instance_id


async def _listed(c: Cluster, call_uuid: str) -> bool:
    return call_uuid in await c.live(c.b.url)


async def _none_live(c: Cluster) -> bool:
    return not await c.live(c.b.url)

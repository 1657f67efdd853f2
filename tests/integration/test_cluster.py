"""Two instances on one PostgreSQL (in this process, a schema of their own): a media token
minted by one opens the socket on the other once, ``/calls/live`` on either lists every
call, a hang-up asked on one ends a call held by the other (LISTEN/NOTIFY), and an OpenAI
SIP webhook retried on the other is ignored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from pg_support import PgSchema, pg_schema
from support import SECOND
from test_scale_out import until

from vonage_bridge.bus import Bus
from vonage_bridge.sim.harness import RunningBridge, sim_env
from vonage_bridge.sim.openai_sip import (
    TEST_WEBHOOK_SECRET,
    FakeOpenAISip,
    incoming_call_body,
    send_webhook,
    signed_headers,
)
from vonage_bridge.sim.realtime import FakeRealtimeServer
from vonage_bridge.sim.vonage import FakeVonageCaller
from vonage_bridge.web.cluster_api import HANGUP_REASON
from vonage_bridge.web.keys import BUS, CALLS, REGISTRY, SIP

API_KEY = "cluster-test-key-0123456789"
HEADERS = {"X-API-Key": API_KEY}


@dataclass
class Pair:
    a: RunningBridge
    b: RunningBridge
    fake: FakeRealtimeServer
    http: aiohttp.ClientSession

    async def get(self, bridge: RunningBridge, path: str) -> tuple[int, Any]:
        async with self.http.get(bridge.url + path, headers=HEADERS) as resp:
            return resp.status, await resp.json()

    async def post(self, bridge: RunningBridge, path: str) -> tuple[int, Any]:
        async with self.http.post(bridge.url + path, headers=HEADERS) as resp:
            return resp.status, await resp.json()


@pytest.fixture
async def schema() -> AsyncIterator[PgSchema]:
    async for s in pg_schema():
        yield s


@pytest.fixture
async def pair(schema: PgSchema) -> AsyncIterator[Pair]:
    fake = FakeRealtimeServer()
    await fake.start()
    env = sim_env(
        fake.base_url, DATABASE_URL=schema.url, CONNECT_API_KEY=API_KEY, INSTANCE_COUNT="2"
    )
    a = await RunningBridge(env).start()
    b = await RunningBridge(env).start()
    http = aiohttp.ClientSession()
    for bridge in (a, b):  # both listen on the bus before the test asks anything of it
        await asyncio.wait_for(bridge.app[BUS].connected.wait(), timeout=5 * SECOND)
    try:
        yield Pair(a, b, fake, http)
    finally:
        await http.close()
        await a.close()
        await b.close()
        await fake.close()


def media_on(caller: FakeVonageCaller, bridge: RunningBridge) -> None:
    """Point the NCCO's websocket at ``bridge`` (as a balancer may route it)."""
    assert caller.ncco is not None
    for action in caller.ncco:
        for endpoint in action.get("endpoint", []):
            uri = endpoint["uri"]
            path = uri.split("/", 3)[3]
            endpoint["uri"] = bridge.url.replace("http", "ws", 1) + "/" + path


async def test_answer_on_one_media_on_the_other_listed_everywhere_hung_up_from_either(
    pair: Pair,
) -> None:
    caller = FakeVonageCaller(pair.http, f"{pair.a.url}/incoming-call")
    await caller.answer()
    ncco = [dict(a, endpoint=[dict(e) for e in a.get("endpoint", [])]) for a in caller.ncco or []]
    media_on(caller, pair.b)
    await caller.connect()
    await pair.fake.wait_for_session(timeout=5 * SECOND)  # A's warm session (unused)

    async def held_by_b() -> bool:
        return caller.call_uuid in pair.b.app[CALLS]

    await until(held_by_b, 5 * SECOND, "B to hold the call")
    await pair.b.app[REGISTRY].settled()

    # The same token again, on A this time: spent on B, refused on A (a shared claim).
    replay = FakeVonageCaller(pair.http, f"{pair.a.url}/incoming-call", call_uuid=caller.call_uuid)
    replay.ncco = ncco
    with pytest.raises(Exception, match="403"):
        await replay.connect()

    async def listed_on_both() -> bool:  # registered in the background as the call starts
        return all([(await pair.get(x, "/calls/live"))[1]["calls"] for x in (pair.a, pair.b)])

    await until(listed_on_both, 5 * SECOND, "the call listed on both instances")
    for bridge in (pair.a, pair.b):
        status, body = await pair.get(bridge, "/calls/live")
        assert status == 200
        (listed,) = body["calls"]
        assert listed["call_uuid"] == caller.call_uuid
        assert listed["instance_id"] == pair.b.app[REGISTRY].instance_id
        assert listed["front_door"] == "vonage"
        assert listed["from"] == "***0000" and listed["to"] == "***0001"  # masked

    status, body = await pair.post(pair.a, f"/calls/{caller.call_uuid}/hangup")
    assert (status, body["status"]) == (202, "requested")
    await caller.wait_closed(timeout=5 * SECOND)
    assert caller.close_code == 1001
    task = [c.task for c in pair.b.app[CALLS].values()]
    if task:
        await asyncio.wait(task, timeout=5 * SECOND)
    await pair.b.app[REGISTRY].settled()
    status, record = await pair.get(pair.a, f"/calls/{caller.call_uuid}")
    assert (status, record["end_reason"]) == (200, HANGUP_REASON)
    assert (await pair.get(pair.a, "/calls/live"))[1]["calls"] == []
    status, body = await pair.post(pair.a, f"/calls/{caller.call_uuid}/hangup")
    assert (status, body["error"]["code"]) == (404, "call_not_live")


@pytest.fixture
async def sip_pair(schema: PgSchema) -> AsyncIterator[tuple[RunningBridge, RunningBridge]]:
    fake = await FakeOpenAISip().start()
    env = sim_env(
        fake.base_url,
        DATABASE_URL=schema.url,
        OPENAI_WEBHOOK_SECRET=TEST_WEBHOOK_SECRET,
        INSTANCE_COUNT="2",
    )
    a = await RunningBridge(env).start()
    b = await RunningBridge(env).start()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()
        await fake.close()


async def test_a_sip_webhook_retried_on_the_other_instance_is_ignored(
    sip_pair: tuple[RunningBridge, RunningBridge],
) -> None:
    a, b = sip_pair
    body = incoming_call_body("rtc_cluster_1")
    headers = signed_headers(TEST_WEBHOOK_SECRET, body)
    async with aiohttp.ClientSession() as http:
        assert await send_webhook(http, f"{a.url}/openai/webhook", body, headers) == (
            200,
            {"status": "accepted"},
        )
        # OpenAI retries the same delivery (same webhook-id): B has never seen it itself.
        status, answer = await send_webhook(http, f"{b.url}/openai/webhook", body, headers)
        assert (status, answer["status"]) == (200, "duplicate")
        # A new delivery of the same call (another webhook-id): the call is A's already.
        body2 = incoming_call_body("rtc_cluster_1")
        again = signed_headers(TEST_WEBHOOK_SECRET, body2)
        status, answer = await send_webhook(http, f"{b.url}/openai/webhook", body2, again)
        assert (status, answer["status"]) == (200, "duplicate")
    assert "rtc_cluster_1" not in b.app[SIP].calls


async def test_the_bus_listens_again_after_losing_its_connection(schema: PgSchema) -> None:
    engine = schema.engine()
    bus = Bus(engine, schema.url)
    got: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    bus.subscribe("vb_test_channel", got.put_nowait)
    runner = asyncio.create_task(bus.run())
    try:
        await asyncio.wait_for(bus.connected.wait(), timeout=5 * SECOND)
        assert await bus.publish("vb_test_channel", {"n": 1})
        assert await asyncio.wait_for(got.get(), timeout=5 * SECOND) == {"n": 1}
        pid = bus._conn.get_server_pid()
        async with engine.begin() as conn:  # the server drops the listening connection
            await conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await asyncio.wait_for(bus.lost.wait(), timeout=5 * SECOND)
        await asyncio.wait_for(bus.connected.wait(), timeout=15 * SECOND)
        assert bus._conn.get_server_pid() != pid  # a new connection
        assert await bus.publish("vb_test_channel", {"n": 2})
        assert await asyncio.wait_for(got.get(), timeout=5 * SECOND) == {"n": 2}
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await engine.dispose()

"""Outbound calls across instances, on loopback: two bridges on one PostgreSQL
(``VB_TEST_POSTGRES_URL``, a schema of their own). ``POST /connect`` on A; the carrier's
answer URL and status events land on B, which reads the call's entry from the shared table:
the per-call instructions reach the Realtime session, the callbacks are posted, and the
last outcome removes the entry.

Sources: https://developer.vonage.com/en/voice/voice-api/webhook-reference#event-webhook,
https://developer.vonage.com/en/voice/voice-api/webhook-reference#answer-webhook
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import sqlalchemy as sa
from pg_support import PgSchema, pg_schema
from support import SECOND
from test_outbound import API_KEY, vonage_env
from test_outbound_outcomes import SECRET, CallbackReceiver
from test_vonage_call import speech

from vonage_bridge.outbound import OUTBOUND
from vonage_bridge.outbound_store import outbound_calls_table
from vonage_bridge.sim.harness import RunningBridge, sim_env
from vonage_bridge.sim.realtime import FakeRealtimeServer
from vonage_bridge.sim.vonage import FakeVonageCaller
from vonage_bridge.sim.vonage_api import FakeVoiceApi, application_test_key
from vonage_bridge.web.keys import CALLS, STORE

APP_ID = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"


@pytest.fixture
async def schema() -> AsyncIterator[PgSchema]:
    async for s in pg_schema():
        yield s


async def rows(schema: PgSchema) -> list[str]:
    engine = schema.engine()
    try:
        async with engine.connect() as conn:
            result = await conn.execute(sa.select(outbound_calls_table.c.call_id))
            return [r.call_id for r in result]
    finally:
        await engine.dispose()


@pytest.mark.parametrize("media_on", ["b", "a"])
async def test_connect_on_a_answer_and_events_on_b(schema: PgSchema, media_on: str) -> None:
    """The media socket on B (where the answer URL opened its warm session), or on A (no
    warm session there: the call's own context; its record is written on A and B's
    ``completed`` waits for it). Either way the record has the AMD verdict B was told."""
    fake = FakeRealtimeServer()
    await fake.start()
    api = FakeVoiceApi(application_test_key().public_key(), APP_ID)
    await api.start()
    env = sim_env(
        fake.base_url,
        **vonage_env(api, CALLBACK_SECRET=SECRET),
        DATABASE_URL=schema.url,
        INSTANCE_COUNT="2",
    )
    a = await RunningBridge(env).start()
    b = await RunningBridge(env).start()
    http = aiohttp.ClientSession()
    try:
        async with CallbackReceiver() as receiver:
            for bridge in (a, b):
                sender = bridge.app[OUTBOUND].sender
                assert sender is not None
                sender.backoff_s = 0.01
            body = {
                "to": "+818012345678",
                "instructions": "Remind {name} of the visit.",
                "variables": {"name": "Ann"},
                "metadata": {"crm_id": 7},
                "status_url": receiver.url,
            }
            async with http.post(
                f"{a.url}/connect", json=body, headers={"X-API-Key": API_KEY}
            ) as resp:
                assert resp.status == 201, await resp.text()
                uuid = (await resp.json())["uuid"]
            assert await rows(schema) == [uuid]  # written before /connect answered
            assert b.app[OUTBOUND].get(uuid) is None  # B has never heard of it

            # The carrier's event URL and answer URL go to B (the balancer's choice).
            sent = api.created_call(uuid)["body"]
            sent["event_url"] = [u.replace(a.url, b.url) for u in sent["event_url"]]
            for event in ("started", "ringing", "answered"):
                assert await api.post_event(uuid, event) == 204
            caller = FakeVonageCaller(
                http, f"{b.url}/answer", call_uuid=uuid, from_number="815031023332"
            )
            await caller.answer()
            media = b if media_on == "b" else a
            assert caller.ncco is not None
            for action in caller.ncco:
                for endpoint in action.get("endpoint", []):
                    path = endpoint["uri"].split("/", 3)[3]
                    endpoint["uri"] = media.url.replace("http", "ws", 1) + "/" + path
            await caller.connect()
            rt = await fake.wait_for_session(timeout=5 * SECOND)  # B's, from the answer URL
            if media_on == "a":  # no warm session on A: it opens its own
                rt = await fake.wait_for_session(timeout=5 * SECOND)
            update = await rt.wait_for_event("session.update")
            assert "Remind Ann of the visit." in update["session"]["instructions"]
            # Vonage's AMD verdict reaches B; the record is written where the media is.
            assert await api.post_event(uuid, "human") == 204
            await b.app[OUTBOUND].drain()  # B has noted it (in the database too)
            await caller.stream_audio(speech()[:32000], realtime=False)
            await caller.hang_up()
            for task in [c.task for c in media.app[CALLS].values()]:
                await task
            assert await api.post_event(uuid, "completed", duration_s=5) == 204

            await receiver.wait_count(3)
            outcomes = receiver.verified()
            assert [o["status"] for o in outcomes] == ["ringing", "answered", "completed"]
            assert all(o["metadata"] == {"crm_id": 7} for o in outcomes)
            assert outcomes[-1]["record_url"] == f"{b.url}/calls/{uuid}"
            await b.app[OUTBOUND].drain()
            record = await b.app[STORE].get(uuid)
            assert record is not None and record.metadata == {"crm_id": 7}
            assert record.amd == "human"  # noted on B, written on A or B
            assert record.direction == "outbound"
            assert (record.end_reason, record.duration_s) == (
                outcomes[-1]["end_reason"],
                outcomes[-1]["duration_s"],
            )
            assert await rows(schema) == []  # the last outcome removed the entry
            assert a.app[OUTBOUND].get(uuid) is not None  # A was told nothing: kept till TTL
    finally:
        await http.close()
        await a.close()
        await b.close()
        await api.close()
        await fake.close()

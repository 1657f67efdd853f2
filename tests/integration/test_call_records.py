"""Loopback calls leave call records; ``GET /calls`` serves them behind the API key."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from support import SECOND, Call, StartCall
from test_vonage_call import speech

from vonage_bridge.sim.realtime import FakeRealtimeOptions
from vonage_bridge.store import FRONT_DOOR_TWILIO, CallRecord, SqlCallStore, metadata
from vonage_bridge.web.keys import CALLS, STORE

API_KEY = "records-key-0123456789"
FRAME = 640


async def call_finished(call: Call, call_uuid: str) -> None:
    """Wait until the media handler of ``call_uuid`` has returned (its record is written
    before it leaves ``CALLS``, so a call already gone from there is finished too)."""
    live = call.bridge.app[CALLS].get(call_uuid)
    if live is not None:
        await asyncio.wait({live.task}, timeout=5 * SECOND)
        assert live.task.done()


async def get_json(call: Call, path: str, key: str | None = API_KEY) -> tuple[int, Any]:
    headers = {"X-API-Key": key} if key is not None else {}
    async with call.http.get(call.bridge.url + path, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_normal_call_leaves_a_record_with_its_transcript(start_call: StartCall) -> None:
    call = await start_call(CONNECT_API_KEY=API_KEY)
    caller = call.caller()
    await caller.answer()
    await caller.connect()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    # speech at real time (faster is dropped); the silence after at real time too
    await caller.stream_audio(speech(), realtime=True)
    await caller.stream_silence(900)
    done = await rt.wait_responses_done(1, timeout=10 * SECOND)
    await caller.wait_heard(math.ceil(done[0].total_bytes * 2 / 3 / FRAME) * FRAME, 10 * SECOND)
    await caller.hang_up()
    await call_finished(call, caller.call_uuid)

    status, body = await get_json(call, f"/calls/{caller.call_uuid}")
    assert status == 200
    assert body["call_uuid"] == caller.call_uuid
    assert body["conversation_uuid"] == caller.conversation_uuid
    assert body["direction"] == "inbound"
    assert (body["from"], body["to"]) == (caller.from_number, caller.to_number)
    started = datetime.fromisoformat(body["started_at"])
    ended = datetime.fromisoformat(body["ended_at"])
    assert started.tzinfo is not None and started <= ended
    assert len(body["started_at"].split(".")[1]) == len("123456+00:00")  # microseconds
    assert body["duration_s"] > 0
    assert "caller hung up" in body["end_reason"]
    roles = [e["role"] for e in body["transcript"]]
    assert "caller" in roles and "assistant" in roles
    assert roles.index("caller") < roles.index("assistant")
    assert all(set(e) == {"role", "text", "at"} and e["text"] for e in body["transcript"])
    stamps = [datetime.fromisoformat(e["at"]) for e in body["transcript"]]  # every entry stamped
    assert all(started <= at <= ended for at in stamps) and stamps == sorted(stamps)

    status, page = await get_json(call, "/calls")
    assert status == 200
    assert [c["call_uuid"] for c in page["calls"]] == [caller.call_uuid]
    assert "transcript" not in page["calls"][0]
    assert page["next_offset"] is None


async def test_realtime_failure_still_leaves_a_record(start_call: StartCall) -> None:
    call = await start_call(FakeRealtimeOptions(reject_status=401), CONNECT_API_KEY=API_KEY)
    caller = call.caller("/answer")  # the answer URL of calls placed with POST /connect
    await caller.answer()
    await caller.connect()
    await caller.wait_closed(timeout=10 * SECOND)
    await call_finished(call, caller.call_uuid)

    status, body = await get_json(call, f"/calls/{caller.call_uuid}")
    assert status == 200
    assert body["direction"] == "outbound"
    assert "401" in body["end_reason"]
    assert body["transcript"] == []


async def test_calls_are_paged_newest_first(start_call: StartCall) -> None:
    call = await start_call(FakeRealtimeOptions(reject_status=503), CONNECT_API_KEY=API_KEY)
    uuids = []
    for _ in range(3):
        caller = call.caller()
        await caller.answer()
        await caller.connect()
        await caller.wait_closed(timeout=10 * SECOND)
        await call_finished(call, caller.call_uuid)
        uuids.append(caller.call_uuid)
    status, first = await get_json(call, "/calls?limit=2")
    assert status == 200
    assert [c["call_uuid"] for c in first["calls"]] == uuids[::-1][:2]
    assert first["next_offset"] == 2
    status, rest = await get_json(call, "/calls?limit=2&offset=2")
    assert [c["call_uuid"] for c in rest["calls"]] == [uuids[0]]
    assert rest["next_offset"] is None


@pytest.mark.parametrize(
    ("env", "key", "status", "code"),
    [
        ({"CONNECT_API_KEY": API_KEY}, None, 401, "api_key_missing"),
        ({"CONNECT_API_KEY": API_KEY}, "wrong", 403, "api_key_invalid"),
        ({}, API_KEY, 503, "calls_api_disabled"),
    ],
)
async def test_calls_api_needs_the_api_key(
    start_call: StartCall, env: dict[str, str], key: str | None, status: int, code: str
) -> None:
    call = await start_call(**env)
    for path in ("/calls", "/calls/some-uuid"):
        got, body = await get_json(call, path, key)
        assert (got, body["error"]["code"]) == (status, code)


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=101", "limit=abc", "offset=-1", "offset=x", "limit=", "offset=1000001"],
)
async def test_bad_paging_is_a_400(start_call: StartCall, query: str) -> None:
    call = await start_call(CONNECT_API_KEY=API_KEY)
    status, body = await get_json(call, f"/calls?{query}")
    assert status == 400
    assert body["error"]["code"] == "invalid_paging"
    assert query.split("=")[0] in body["error"]["message"]


async def test_unknown_call_is_a_404(start_call: StartCall) -> None:
    call = await start_call(CONNECT_API_KEY=API_KEY)
    status, body = await get_json(call, "/calls/no-such-call")
    assert (status, body["error"]["code"]) == (404, "call_not_found")


async def test_unreachable_postgresql_starts_without_records(start_call: StartCall) -> None:
    """PostgreSQL down at start-up: the service runs, GET /calls answers 503."""
    call = await start_call(
        CONNECT_API_KEY=API_KEY, DATABASE_URL="postgresql://nobody@127.0.0.1:1/nothing"
    )
    status, body = await get_json(call, "/calls")
    assert (status, body["error"]["code"]) == (503, "call_records_unavailable")
    async with call.http.get(call.bridge.url + "/health") as resp:
        assert resp.status == 200


async def test_a_failed_record_write_is_logged_and_the_call_ends_cleanly(
    start_call: StartCall, caplog: pytest.LogCaptureFixture
) -> None:
    call = await start_call(FakeRealtimeOptions(reject_status=401), CONNECT_API_KEY=API_KEY)
    store = call.bridge.app[STORE]
    assert isinstance(store, SqlCallStore)
    async with store.engine.begin() as conn:  # the database loses its tables mid-flight
        await conn.run_sync(metadata.drop_all)
    caller = call.caller()
    await caller.answer()
    await caller.connect()
    await caller.wait_closed(timeout=10 * SECOND)
    await call_finished(call, caller.call_uuid)
    assert caller.close_code == 1011  # the Realtime failure, as without a store
    failed = [r for r in caplog.records if "not written" in r.getMessage()]
    assert len(failed) == 1 and caller.call_uuid in failed[0].getMessage()
    async with call.http.get(call.bridge.url + "/health") as resp:
        assert resp.status == 200
    for path in ("/calls", f"/calls/{caller.call_uuid}"):
        status, body = await get_json(call, path)
        assert (status, body["error"]["code"]) == (503, "call_records_unavailable")


async def test_abrupt_hang_up_mid_reply_leaves_a_record(start_call: StartCall) -> None:
    call = await start_call(CONNECT_API_KEY=API_KEY)
    caller = call.caller()
    await caller.answer()
    await caller.connect()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    # speech at real time (faster is dropped); the silence after at real time too
    await caller.stream_audio(speech(), realtime=True)
    await caller.stream_silence(900)
    await rt.wait_responses_done(1, timeout=10 * SECOND)
    await caller.wait_heard(FRAME, timeout=10 * SECOND)  # the reply is playing
    live = call.bridge.app[CALLS][caller.call_uuid]
    await call.http.close()  # the TCP connection drops: no close frame
    await asyncio.wait({live.task}, timeout=5 * SECOND)
    assert live.task.done()
    store = call.bridge.app[STORE]
    record = await store.get(caller.call_uuid)
    assert record is not None
    assert "1006" in record.end_reason  # dropped, not closed
    assert "caller" in [e.role for e in record.transcript]


async def test_records_say_their_front_door_and_can_be_filtered_by_it(
    start_call: StartCall,
) -> None:
    call = await start_call(FakeRealtimeOptions(reject_status=401), CONNECT_API_KEY=API_KEY)
    caller = call.caller()
    await caller.answer()
    await caller.connect()
    await caller.wait_closed(timeout=10 * SECOND)
    await call_finished(call, caller.call_uuid)
    await call.bridge.app[STORE].add(  # as the Twilio front door writes it
        CallRecord(
            call_uuid="CA" + "0" * 32,
            direction="inbound",
            started_at=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
            ended_at=datetime(2026, 11, 23, 9, 1, tzinfo=UTC),
            duration_s=60.0,
            end_reason="caller hung up",
            front_door=FRONT_DOOR_TWILIO,
        )
    )

    status, body = await get_json(call, f"/calls/{caller.call_uuid}")
    assert (status, body["front_door"]) == (200, "vonage")
    status, body = await get_json(call, "/calls/CA" + "0" * 32)
    assert (status, body["front_door"]) == (200, "twilio")
    status, page = await get_json(call, "/calls")
    assert [(c["call_uuid"], c["front_door"]) for c in page["calls"]] == [
        (caller.call_uuid, "vonage"),
        ("CA" + "0" * 32, "twilio"),
    ]
    for door, expected in [
        ("vonage", [caller.call_uuid]),
        ("twilio", ["CA" + "0" * 32]),
        ("openai-sip", []),
    ]:
        status, page = await get_json(call, f"/calls?front_door={door}&limit=1")
        assert status == 200
        assert [c["call_uuid"] for c in page["calls"]] == expected
        assert page["next_offset"] is None


@pytest.mark.parametrize("value", ["", "Twilio", "sip", "vonage,twilio"])
async def test_unknown_front_door_filter_is_a_400(start_call: StartCall, value: str) -> None:
    call = await start_call(CONNECT_API_KEY=API_KEY)
    status, body = await get_json(call, f"/calls?front_door={value}")
    assert status == 400
    assert body["error"]["code"] == "invalid_filter"
    assert "front_door" in body["error"]["message"]

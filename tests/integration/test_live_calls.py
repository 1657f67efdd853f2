"""``GET /calls/live`` and ``POST /calls/{call_uuid}/hangup`` on one instance (SQLite)."""

from __future__ import annotations

import asyncio
from typing import Any

from support import SECOND, Call, StartCall
from test_call_records import speech

from vonage_bridge.bus import TRANSCRIPT
from vonage_bridge.web.cluster_api import HANGUP_REASON
from vonage_bridge.web.keys import BUS, CALLS, REGISTRY, STORE

API_KEY = "live-calls-key-0123456789"


async def request(call: Call, method: str, path: str, key: str | None = API_KEY) -> tuple[int, Any]:
    headers = {"X-API-Key": key} if key is not None else {}
    async with call.http.request(method, call.bridge.url + path, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_live_calls_are_listed_masked_and_hung_up_on_request(start_call: StartCall) -> None:
    call = await start_call(CONNECT_API_KEY=API_KEY)
    caller = call.caller()
    await caller.answer()
    await caller.connect()
    await call.fake.wait_for_session(timeout=5 * SECOND)
    registry = call.bridge.app[REGISTRY]
    await registry.settled()

    assert (await request(call, "GET", "/calls/live", key=None))[0] == 401
    assert (await request(call, "GET", "/calls/live", key="wrong"))[0] == 403
    status, body = await request(call, "GET", "/calls/live?from=x")
    assert (status, body["error"]["code"]) == (400, "unknown_parameter")
    status, body = await request(call, "GET", "/calls/live")
    assert status == 200 and body["instance_id"] == registry.instance_id
    (listed,) = body["calls"]
    assert listed["call_uuid"] == caller.call_uuid
    assert (listed["direction"], listed["from"], listed["to"]) == ("inbound", "***0000", "***0001")

    status, body = await request(call, "POST", f"/calls/{caller.call_uuid}/hangup")
    assert (status, body["status"]) == (200, "hung_up")
    await caller.wait_closed(timeout=5 * SECOND)
    assert caller.close_code == 1001
    tasks = [c.task for c in call.bridge.app[CALLS].values()]
    if tasks:
        await asyncio.wait(tasks, timeout=5 * SECOND)
    await registry.settled()
    record = await call.bridge.app[STORE].get(caller.call_uuid)
    assert record is not None and record.end_reason == HANGUP_REASON
    assert (await request(call, "GET", "/calls/live"))[1]["calls"] == []
    status, body = await request(call, "POST", "/calls/no-such-call/hangup")
    assert (status, body["error"]["code"]) == (404, "call_not_live")


async def test_transcript_lines_are_published_as_they_happen(start_call: StartCall) -> None:
    call = await start_call(CONNECT_API_KEY=API_KEY)
    lines: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    call.bridge.app[BUS].subscribe(TRANSCRIPT, lines.put_nowait)  # SQLite: this instance only
    caller = call.caller()
    await caller.answer()
    await caller.connect()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    await caller.stream_audio(speech(), realtime=True)
    await caller.stream_silence(900)
    await rt.wait_responses_done(1, timeout=10 * SECOND)
    roles = set()
    while not {"caller", "assistant"} <= roles:  # both lines, while the call is live
        line = await asyncio.wait_for(lines.get(), timeout=5 * SECOND)
        assert line["call_uuid"] == caller.call_uuid and line["text"]
        assert line["instance_id"] == call.bridge.app[REGISTRY].instance_id
        roles.add(line["role"])
    assert caller.call_uuid in call.bridge.app[CALLS]
    await caller.hang_up()

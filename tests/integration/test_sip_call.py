"""OpenAI SIP front door on loopback: signed webhook -> accept -> sideband -> hang-up,
against the fake in ``vonage_bridge/sim/openai_sip.py``."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from support import SECOND

from vonage_bridge.bridge import DRAIN_GOODBYE_INSTRUCTIONS
from vonage_bridge.calls import DRAIN_REASON
from vonage_bridge.config import Settings
from vonage_bridge.realtime.connection import open_realtime
from vonage_bridge.sim.harness import RunningBridge, sim_env
from vonage_bridge.sim.openai_sip import (
    TEST_WEBHOOK_SECRET,
    FakeOpenAISip,
    incoming_call_body,
    send_webhook,
    signed_headers,
)
from vonage_bridge.web.keys import SIP, STORE
from vonage_bridge.web.lifecycle import drain

Setup = tuple[RunningBridge, FakeOpenAISip, aiohttp.ClientSession]
StartSip = Callable[..., Coroutine[Any, Any, Setup]]


@pytest.fixture
async def start_sip() -> AsyncIterator[StartSip]:
    """Factory: ``bridge, fake, http = await start_sip(**env_overrides)``."""
    cleanups: list[Any] = []

    async def start(**env: str) -> Setup:
        fake = await FakeOpenAISip().start()
        cleanups.append(fake)
        env = {"OPENAI_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET, **env}
        bridge = await RunningBridge(sim_env(fake.base_url, **env)).start()
        cleanups.append(bridge)
        http = aiohttp.ClientSession()
        cleanups.append(http)
        return bridge, fake, http

    yield start
    for thing in reversed(cleanups):
        await thing.close()


async def post_call(
    bridge: RunningBridge,
    http: aiohttp.ClientSession,
    call_id: str,
    *,
    path: str = "/openai/webhook",
    **kwargs: Any,
) -> tuple[int, dict[str, Any]]:
    body = incoming_call_body(call_id, **kwargs)
    headers = signed_headers(TEST_WEBHOOK_SECRET, body)
    return await send_webhook(http, f"{bridge.url}{path}", body, headers)


async def wait_task(bridge: RunningBridge, call_id: str) -> None:
    task = bridge.app[SIP].calls[call_id]
    async with asyncio.timeout(5 * SECOND):
        await asyncio.wait([task])


async def test_sip_call_accept_greeting_transcripts_end_call_and_record(
    start_sip: StartSip,
) -> None:
    bridge, fake, http = await start_sip(
        SYSTEM_MESSAGE_PATH="/nonexistent", GREETING_TEXT="Welcome to the shop."
    )
    status, answer = await post_call(bridge, http, "rtc_call1")
    assert (status, answer) == (200, {"status": "accepted"})

    accept = await fake.next_request(5 * SECOND)
    assert (accept.action, accept.call_id) == ("accept", "rtc_call1")
    assert accept.authorization == "Bearer sk-sim"
    session = accept.body
    assert session is not None
    assert session["type"] == "realtime"
    assert session["model"] == "gpt-realtime"
    assert "+818012345678 (national form 08012345678)" in session["instructions"]
    assert "+815031023332" in session["instructions"]
    assert session["audio"]["output"] == {"voice": "marin"}
    assert "format" not in session["audio"]["input"]
    assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert "end_call" in [t["name"] for t in session["tools"]]

    sideband = await fake.wait_for_sideband(5 * SECOND)
    assert sideband.call_id == "rtc_call1"
    greeting = await sideband.next_event(5 * SECOND)
    assert greeting["type"] == "response.create"
    assert "Welcome to the shop." in greeting["response"]["instructions"]

    await sideband.send(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "item_1",
            "content_index": 0,
            "transcript": "Bye now.",
        }
    )
    await sideband.send(
        {
            "type": "response.output_audio_transcript.done",
            "response_id": "resp_1",
            "item_id": "item_2",
            "output_index": 0,
            "content_index": 0,
            "transcript": "Goodbye!",
        }
    )
    await sideband.send({"type": "output_audio_buffer.started", "response_id": "resp_1"})
    call_item = {
        "type": "function_call",
        "id": "item_3",
        "call_id": "call_1",
        "name": "end_call",
        "arguments": "{}",
        "status": "completed",
    }
    await sideband.send({"type": "response.output_item.done", "item": call_item})
    await sideband.send(
        {"type": "response.done", "response": {"id": "resp_1", "status": "completed"}}
    )
    output = await sideband.next_event(5 * SECOND)
    assert output["type"] == "conversation.item.create"
    assert output["item"]["type"] == "function_call_output"
    assert output["item"]["call_id"] == "call_1"
    # The goodbye is still playing: no hang-up until the audio buffer stops.
    assert [r.action for r in fake.requests] == ["accept"]
    await sideband.send({"type": "output_audio_buffer.stopped", "response_id": "resp_1"})

    hangup = await fake.next_request(5 * SECOND)
    assert (hangup.action, hangup.call_id, hangup.body) == ("hangup", "rtc_call1", None)
    await wait_task(bridge, "rtc_call1")

    record = await bridge.app[STORE].get("rtc_call1")
    assert record is not None
    assert record.direction == "inbound"
    assert record.from_number == "+818012345678"
    assert record.to_number == "+815031023332"
    assert record.end_reason == "openai-sip: end_call tool"
    roles = [(e.role, e.text) for e in record.transcript]
    assert roles[:2] == [("caller", "Bye now."), ("assistant", "Goodbye!")]
    assert [r for r, _ in roles[2:]] == ["tool_call", "tool_result"]
    assert all(e.at is not None and e.at.tzinfo is not None for e in record.transcript)
    assert len(fake.requests) == 2  # the function call in response.done ran only once


async def test_sip_ordinary_tool_result_asks_for_a_response(start_sip: StartSip) -> None:
    bridge, fake, http = await start_sip(TOOLS_MODULE="sample_tools")
    await post_call(bridge, http, "rtc_tools", path="/webhook")
    sideband = await fake.wait_for_sideband(5 * SECOND)
    await sideband.next_event(5 * SECOND)  # greeting
    accept = fake.requests[0]
    assert accept.body is not None
    names = [t["name"] for t in accept.body["tools"]]
    assert len(names) > 1
    other = next(n for n in names if n != "end_call")
    item = {
        "type": "function_call",
        "call_id": "call_x",
        "name": other,
        "arguments": "not json",
        "status": "completed",
    }
    await sideband.send({"type": "response.output_item.done", "item": item})
    output = await sideband.next_event(5 * SECOND)
    assert output["item"]["call_id"] == "call_x"
    assert "error" in output["item"]["output"]
    follow = await sideband.next_event(5 * SECOND)
    assert follow == {"type": "response.create"}
    await sideband.close()
    await wait_task(bridge, "rtc_tools")
    record = await bridge.app[STORE].get("rtc_tools")
    assert record is not None
    assert record.end_reason.startswith("openai-sip: sideband closed")


async def test_sip_transfer_call_refers_to_transfer_number(start_sip: StartSip) -> None:
    bridge, fake, http = await start_sip(TRANSFER_NUMBER="+14155550100")
    await post_call(bridge, http, "rtc_xfer")
    sideband = await fake.wait_for_sideband(5 * SECOND)
    await sideband.next_event(5 * SECOND)
    item = {
        "type": "function_call",
        "call_id": "call_t",
        "name": "transfer_call",
        "arguments": '{"reason": "wants a human"}',
        "status": "completed",
    }
    await sideband.send({"type": "response.output_item.done", "item": item})
    await fake.next_request(5 * SECOND)  # accept
    refer = await fake.next_request(5 * SECOND)
    assert (refer.action, refer.body) == ("refer", {"target_uri": "tel:+14155550100"})
    await wait_task(bridge, "rtc_xfer")
    record = await bridge.app[STORE].get("rtc_xfer")
    assert record is not None
    assert record.end_reason == "openai-sip: transferred"


@pytest.mark.parametrize("tamper", ["body", "stale", "missing", "no_comma"])
async def test_sip_webhook_not_signed_now_is_refused_and_nothing_accepted(
    start_sip: StartSip, tamper: str, caplog: pytest.LogCaptureFixture
) -> None:
    bridge, fake, http = await start_sip()
    body = incoming_call_body("rtc_bad")
    at = datetime.now(UTC) - (timedelta(minutes=6) if tamper == "stale" else timedelta(0))
    headers = signed_headers(TEST_WEBHOOK_SECRET, body, at=at)
    if tamper == "body":
        body = body.replace(b"rtc_bad", b"rtc_evl")
    if tamper == "missing":
        del headers["webhook-signature"]
    if tamper == "no_comma":
        headers["webhook-signature"] = headers["webhook-signature"].replace(",", "")
    caplog.clear()
    with caplog.at_level(logging.INFO):
        status, answer = await send_webhook(http, f"{bridge.url}/openai/webhook", body, headers)
    assert status == 401
    assert answer["error"]["code"] == "invalid_signature"
    assert not bridge.app[SIP].tasks
    assert fake.requests == []
    # one line, at INFO (a client's mistake), with the reason
    refused = [r for r in caplog.records if "webhook not verified" in r.getMessage()]
    assert len(refused) == 1 and refused[0].levelno == logging.INFO
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_sip_replayed_webhook_is_deduplicated(start_sip: StartSip) -> None:
    bridge, fake, http = await start_sip()
    fake.accept_status = 404
    body = incoming_call_body("rtc_dup")
    headers = signed_headers(TEST_WEBHOOK_SECRET, body)
    url = f"{bridge.url}/openai/webhook"
    assert await send_webhook(http, url, body, headers) == (200, {"status": "accepted"})
    task = bridge.app[SIP].calls["rtc_dup"]
    assert await send_webhook(http, url, body, headers) == (200, {"status": "duplicate"})
    async with asyncio.timeout(5 * SECOND):
        await asyncio.wait([task])
    assert [r.action for r in fake.requests] == ["accept"]


async def test_sip_accept_404_means_caller_hung_up_logged_at_info(
    start_sip: StartSip, caplog: pytest.LogCaptureFixture
) -> None:
    bridge, fake, http = await start_sip()
    fake.accept_status = 404
    with caplog.at_level(logging.INFO):
        status, _ = await post_call(bridge, http, "rtc_gone")
        assert status == 200
        await wait_task(bridge, "rtc_gone")
    gone = [r for r in caplog.records if "404" in r.getMessage()]
    assert gone and all(r.levelno == logging.INFO for r in gone)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert fake.sidebands == {}
    assert await bridge.app[STORE].get("rtc_gone") is None


async def test_sip_over_the_limit_is_rejected_486(start_sip: StartSip) -> None:
    bridge, fake, http = await start_sip(SIP_MAX_CALLS="1")
    await post_call(bridge, http, "rtc_first")
    sideband = await fake.wait_for_sideband(5 * SECOND)
    status, answer = await post_call(bridge, http, "rtc_second")
    assert (status, answer) == (200, {"status": "rejected", "sip_status": 486})
    await fake.next_request(5 * SECOND)  # accept of the first
    reject = await fake.next_request(5 * SECOND)
    assert (reject.action, reject.call_id, reject.body) == (
        "reject",
        "rtc_second",
        {"status_code": 486},
    )
    await sideband.close()
    await wait_task(bridge, "rtc_first")


async def test_sip_denied_caller_is_rejected_603(start_sip: StartSip) -> None:
    bridge, fake, http = await start_sip(SIP_DENY_FROM="+818012345678")
    status, answer = await post_call(bridge, http, "rtc_denied")
    assert (status, answer) == (200, {"status": "rejected", "sip_status": 603})
    reject = await fake.next_request(5 * SECOND)
    assert (reject.action, reject.body) == ("reject", {"status_code": 603})


async def test_sip_unknown_event_type_is_acknowledged(
    start_sip: StartSip, caplog: pytest.LogCaptureFixture
) -> None:
    bridge, fake, http = await start_sip()
    body = b'{"object": "event", "id": "evt_1", "type": "batch.completed", "data": {}}'
    headers = signed_headers(TEST_WEBHOOK_SECRET, body)
    with caplog.at_level(logging.INFO):
        status, answer = await send_webhook(http, f"{bridge.url}/openai/webhook", body, headers)
    assert (status, answer) == (200, {"status": "ignored"})
    assert any("batch.completed" in r.getMessage() for r in caplog.records)
    assert fake.requests == []


async def test_sip_shutdown_cancels_a_live_call(start_sip: StartSip) -> None:
    bridge, fake, http = await start_sip()
    await post_call(bridge, http, "rtc_live")
    await fake.wait_for_sideband(5 * SECOND)
    task = bridge.app[SIP].calls["rtc_live"]
    store = bridge.app[STORE]
    records: list[Any] = []
    add = store.add

    async def keep(record: Any) -> None:
        records.append(record)
        await add(record)

    store.add = keep  # type: ignore[method-assign]
    await bridge.close()
    assert task.done()
    assert [r.action for r in fake.requests] == ["accept", "hangup"]
    assert [r.end_reason for r in records] == ["openai-sip: server shutting down"]


async def test_sip_routes_absent_without_webhook_secret() -> None:
    fake = await FakeOpenAISip().start()
    bridge = await RunningBridge(sim_env(fake.base_url)).start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{bridge.url}/openai/webhook", data=b"{}") as resp:
                assert resp.status == 404
        assert SIP not in bridge.app
    finally:
        await bridge.close()
        await fake.close()


def test_sip_startup_log_says_whether_the_front_door_is_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = sim_env("http://127.0.0.1:9/v1")
    with caplog.at_level(logging.INFO):
        RunningBridge(
            {**env, "OPENAI_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET, "OPENAI_PROJECT_ID": "proj_1"}
        )._sock.close()
        RunningBridge(env)._sock.close()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "SIP front door ON" in text
    assert "sip:proj_1@sip.api.openai.com;transport=tls" in text
    assert "SIP front door off (OPENAI_WEBHOOK_SECRET not set)" in text
    assert TEST_WEBHOOK_SECRET not in text


async def test_sip_failed_accept_is_logged_and_the_call_rejected(
    start_sip: StartSip, caplog: pytest.LogCaptureFixture
) -> None:
    bridge, fake, http = await start_sip()
    fake.accept_status = 500
    with caplog.at_level(logging.INFO):
        await post_call(bridge, http, "rtc_fail")
        await wait_task(bridge, "rtc_fail")
    assert [(r.action, r.body) for r in fake.requests][1:] == [("reject", {"status_code": 603})]
    assert any(
        r.levelno == logging.ERROR and "accept failed" in r.getMessage() for r in caplog.records
    )


async def test_sideband_socket_carries_api_version_when_set() -> None:
    """``OPENAI_API_VERSION`` (Azure) reaches the sideband's upgrade like a media call's."""
    seen: asyncio.Queue[tuple[dict[str, str], str | None, str | None]] = asyncio.Queue()

    async def realtime(request: web.Request) -> web.StreamResponse:
        headers = request.headers
        seen.put_nowait((dict(request.query), headers.get("api-key"), headers.get("Authorization")))
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/v1/realtime", realtime)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    env = sim_env(f"http://127.0.0.1:{port}/v1", OPENAI_API_VERSION="2025-04-01-preview")
    openai = Settings.from_env({**env, "SERVER_URL": "http://127.0.0.1:9"}).openai
    try:
        async with aiohttp.ClientSession() as http:
            ws = await open_realtime(http, openai, call_id="rtc_azure")
            await ws.close()
        query, api_key, bearer = await asyncio.wait_for(seen.get(), 5 * SECOND)
    finally:
        await runner.cleanup()
    assert query == {"call_id": "rtc_azure", "api-version": "2025-04-01-preview"}
    assert (api_key, bearer) == ("sk-sim", None)


async def test_sip_call_has_the_shared_summary_line_and_ignores_audio_events(
    start_sip: StartSip, caplog: pytest.LogCaptureFixture
) -> None:
    bridge, fake, http = await start_sip()
    with caplog.at_level(logging.INFO):
        await post_call(bridge, http, "rtc_sum")
        sideband = await fake.wait_for_sideband(5 * SECOND)
        await sideband.next_event(5 * SECOND)  # greeting
        for _ in range(3):  # audio stays on SIP; a stray delta must not reach a playout
            await sideband.send(
                {
                    "type": "response.output_audio.delta",
                    "response_id": "resp_1",
                    "item_id": "item_1",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": "AAAA",
                }
            )
        await sideband.send({"type": "response.created", "response": {"id": "resp_1"}})
        await sideband.send(
            {"type": "response.done", "response": {"id": "resp_1", "status": "completed"}}
        )
        await sideband.close()
        await wait_task(bridge, "rtc_sum")
    summaries = [r for r in caplog.records if r.getMessage().startswith("call summary")]
    assert len(summaries) == 1
    fields = summaries[0].summary  # type: ignore[attr-defined]
    assert fields["call_uuid"] == "rtc_sum"
    assert fields["front_door"] == "openai-sip"
    assert fields["responses"] == 1
    assert fields["frames_out"] == 0
    assert fields["end_reason"].startswith("openai-sip: sideband closed")
    audio_warnings = [r for r in caplog.records if "ignoring audio events" in r.getMessage()]
    assert len(audio_warnings) == 1


async def test_sip_call_gets_its_numbers_assistant_and_is_hung_up_when_silent(
    start_sip: StartSip, tmp_path: Path
) -> None:
    path = tmp_path / "assistants.json"
    jp = {
        "name": "jp",
        "numbers": ["+815031023332"],  # the To of incoming_call_body
        "voice": "sage",
        "greeting": {"text": "Moshi moshi"},
        "inactivity_timeout_s": 0.4,
    }
    path.write_text(json.dumps([jp]), encoding="utf-8")
    bridge, fake, http = await start_sip(ASSISTANTS_FILE=str(path))
    await post_call(bridge, http, "rtc_quiet")
    accept = await fake.next_request(5 * SECOND)
    assert accept.body is not None and accept.body["audio"]["output"] == {"voice": "sage"}
    sideband = await fake.wait_for_sideband(5 * SECOND)
    greeting = await sideband.next_event(5 * SECOND)
    assert "Moshi moshi" in greeting["response"]["instructions"]
    # nothing is said: the question, then the goodbye
    asked = await sideband.next_event(5 * SECOND)
    assert "still there" in asked["response"]["instructions"]
    goodbye = await sideband.next_event(5 * SECOND)
    assert "goodbye" in goodbye["response"]["instructions"]
    assert [r.action for r in fake.requests] == ["accept"]  # not before the goodbye is said
    await sideband.send({"type": "response.created", "response": {"id": "resp_9"}})
    await sideband.send(
        {"type": "response.done", "response": {"id": "resp_9", "status": "completed"}}
    )
    hangup = await fake.next_request(5 * SECOND)
    assert (hangup.action, hangup.call_id) == ("hangup", "rtc_quiet")
    await wait_task(bridge, "rtc_quiet")
    record = await bridge.app[STORE].get("rtc_quiet")
    assert record is not None
    assert record.end_reason == "inactivity"
    assert (record.assistant, record.assistant_version) == ("jp", 1)


async def test_sip_call_left_when_the_drain_times_out_hears_a_goodbye_then_is_hung_up(
    start_sip: StartSip,
) -> None:
    bridge, fake, http = await start_sip()
    await post_call(bridge, http, "rtc_drained")
    sideband = await fake.wait_for_sideband(5 * SECOND)
    assert (await sideband.next_event(5 * SECOND))["type"] == "response.create"  # greeting
    store = bridge.app[STORE]
    records: list[Any] = []
    add = store.add

    async def keep(record: Any) -> None:
        records.append(record)
        await add(record)

    store.add = keep  # type: ignore[method-assign]
    task = bridge.app[SIP].calls["rtc_drained"]
    draining = asyncio.create_task(drain(bridge.app, 0.0))
    try:
        goodbye = await sideband.next_event(5 * SECOND)
        assert goodbye["type"] == "response.create"
        assert goodbye["response"]["instructions"] == DRAIN_GOODBYE_INSTRUCTIONS
        # Not hung up while the goodbye plays.
        await sideband.send({"type": "response.created", "response": {"id": "resp_bye"}})
        await sideband.send({"type": "output_audio_buffer.started", "response_id": "resp_bye"})
        await sideband.send(
            {"type": "response.done", "response": {"id": "resp_bye", "status": "completed"}}
        )
        assert [r.action for r in fake.requests] == ["accept"]
        await sideband.send({"type": "output_audio_buffer.stopped", "response_id": "resp_bye"})
        hangup = await fake.next_request(5 * SECOND)  # the accept
        if hangup.action == "accept":
            hangup = await fake.next_request(5 * SECOND)
        assert (hangup.action, hangup.call_id) == ("hangup", "rtc_drained")
        await asyncio.wait_for(draining, timeout=5 * SECOND)
    finally:
        draining.cancel()
    assert task.done() and not task.cancelled()
    assert [r.end_reason for r in records] == [DRAIN_REASON]
    assert bridge.app[SIP].polite == {}

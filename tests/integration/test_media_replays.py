"""Replays of a finished call's media socket are refused and never touch its record.

A media token is single-use, a Twilio CallSid gets one stream per instance, and a call record
is written once: a later connection with the same call id (a reused media URI, a replayed
Twilio webhook, another instance) opens no Realtime session and leaves the first record as it
was. Every refusal is one log line carrying the call id, and no token or phone number.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import test_twilio_call
from support import SECOND, Call, StartCall
from test_call_records import API_KEY, call_finished
from test_twilio_call import StartTwilio, no_live_calls, speech
from test_vonage_call import speech as vonage_speech

from vonage_bridge.core.events import TranscriptEntry
from vonage_bridge.logs import CallContextFilter
from vonage_bridge.sim.phone import CallerError
from vonage_bridge.sim.realtime import FakeRealtimeOptions
from vonage_bridge.store import CallRecord
from vonage_bridge.web.keys import SIGNER, STORE, WARM_SESSIONS

start_twilio = test_twilio_call.start_twilio  # the Twilio fixtures, shared
twilio_api = test_twilio_call.twilio_api

OTHER_FROM = "447700900999"
OTHER_TO = "447700900998"


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """``caplog`` at INFO whose records carry ``call_uuid`` as the service's log lines do."""
    caplog.handler.addFilter(CallContextFilter())
    caplog.set_level(logging.INFO)
    return caplog


def lines_about(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if text in r.getMessage()]


def assert_nothing_personal(caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    for r in caplog.records:
        message = r.getMessage()
        for secret in secrets:
            assert secret not in message, f"{secret!r} logged: {message}"


def websocket_endpoint(ncco: list[dict[str, Any]]) -> dict[str, Any]:
    connect = next(a for a in ncco if a["action"] == "connect")
    endpoint: dict[str, Any] = connect["endpoint"][0]
    return endpoint


async def finished_vonage_call(call: Call) -> tuple[list[dict[str, Any]], CallRecord]:
    """A whole Vonage call with a transcript, hung up and recorded: its NCCO and record."""
    first = call.caller()
    ncco = await first.answer()
    await first.connect()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    await first.stream_audio(vonage_speech(), realtime=True)
    await first.stream_silence(900)
    await rt.wait_responses_done(1, timeout=10 * SECOND)
    await first.hang_up()
    await call_finished(call, first.call_uuid)
    record = await call.bridge.app[STORE].get(first.call_uuid)
    assert record is not None and record.transcript
    return ncco, record


# ------------------------------------------------------------------ 1. single-use media tokens


async def test_vonage_media_uri_of_a_finished_call_cannot_be_used_again(
    start_call: StartCall, logs: pytest.LogCaptureFixture
) -> None:
    call = await start_call(CONNECT_API_KEY=API_KEY)
    ncco, before = await finished_vonage_call(call)
    call_uuid = before.call_uuid
    handshakes = len(call.fake.handshakes)

    # The same media URI again, announcing other numbers in websocket:connected.
    replayed = copy.deepcopy(ncco)
    websocket_endpoint(replayed)["headers"].update({"from": OTHER_FROM, "to": OTHER_TO})
    again = call.caller(call_uuid=call_uuid, from_number=OTHER_FROM, to_number=OTHER_TO)
    again.ncco = replayed
    logs.clear()
    with pytest.raises(CallerError) as info:
        await again.connect()
    assert info.value.status == 403
    refused = lines_about(logs, "media token already used")
    assert len(refused) == 1
    assert refused[0].call_uuid == call_uuid  # type: ignore[attr-defined]
    uri: str = websocket_endpoint(ncco)["uri"]
    token = uri.split("token=")[1].split("&")[0]
    assert_nothing_personal(logs, token, OTHER_FROM, before.from_number or "?")

    async with call.http.get(uri.replace("ws", "http", 1)) as resp:  # the refusal's body
        assert resp.status == 403
        body = await resp.json()
    assert body["error"]["code"] == "media_token_used"
    assert len(call.fake.handshakes) == handshakes  # no second Realtime session
    assert await call.bridge.app[STORE].get(call_uuid) == before


async def test_twilio_stream_token_of_a_finished_call_cannot_be_used_again(
    start_twilio: StartTwilio, logs: pytest.LogCaptureFixture
) -> None:
    tw = await start_twilio()
    first, rt = await tw.connected()
    await first.stream_audio(speech(1200), realtime=True)
    await first.stream_silence(900)
    await rt.wait_responses_done(1, timeout=10 * SECOND)
    await first.hang_up()
    await no_live_calls(tw.call)
    store = tw.call.bridge.app[STORE]
    before = await store.get(first.call_sid)
    assert before is not None and before.transcript

    again = tw.caller(call_sid=first.call_sid)
    again.answer_info = first.answer_info  # the same TwiML: the same token
    logs.clear()
    await again.connect()
    await again.wait_closed(timeout=5 * SECOND)
    assert (again.close_code, again.close_reason) == (1008, "invalid media token")
    refused = lines_about(logs, "media token already used")
    assert len(refused) == 1
    assert refused[0].call_uuid == first.call_sid  # type: ignore[attr-defined]
    assert first.answer_info is not None
    token = first.answer_info.parameters["token"]
    assert_nothing_personal(logs, token, first.from_number)
    assert len(tw.call.fake.sessions) == 1
    assert await store.get(first.call_sid) == before


# ------------------------------------------------------------------ 3. Twilio webhook replays


async def test_replayed_twilio_webhook_gets_no_second_stream_for_its_call(
    start_twilio: StartTwilio, logs: pytest.LogCaptureFixture
) -> None:
    tw = await start_twilio(FakeRealtimeOptions(reject_status=401))
    # Every Realtime handshake is counted below: the answer URLs open none here (as when
    # another instance answered), so any would be the refused stream's.
    tw.call.bridge.app[WARM_SESSIONS].enabled = False
    first = tw.caller()
    tw.api.add_call(first.call_sid)
    await first.answer()
    await first.connect()
    await first.wait_closed(timeout=10 * SECOND)  # the call failed and ended, record written
    await no_live_calls(tw.call)
    store = tw.call.bridge.app[STORE]
    before = await store.get(first.call_sid)
    assert before is not None

    # The same signed webhook again (Twilio's signature has no timestamp): it is accepted and
    # mints a token; a replay a second later mints a new one, never used.
    replay = tw.caller(call_sid=first.call_sid, from_number="+15005550006")
    twiml = await replay.answer()
    fresh = tw.call.bridge.app[SIGNER].mint(first.call_sid, time.time() + 1)
    params = {**twiml.parameters, "exp": str(fresh.exp), "token": fresh.token}
    replay.answer_info = dataclasses.replace(twiml, parameters=params)
    logs.clear()
    await replay.connect()
    await replay.wait_closed(timeout=5 * SECOND)
    assert replay.close_code == 1008
    assert "already" in replay.close_reason
    refused = lines_about(logs, "Twilio stream refused")
    assert len(refused) == 1
    assert refused[0].call_uuid == first.call_sid  # type: ignore[attr-defined]
    assert_nothing_personal(logs, fresh.token, "+15005550006", first.from_number)
    assert len(tw.call.fake.handshakes) == 1  # the first call's only
    assert await store.get(first.call_sid) == before


# ------------------------------------------------------------------ 2. records written once


async def test_a_later_call_with_a_recorded_call_id_leaves_the_record_alone(
    start_call: StartCall, logs: pytest.LogCaptureFixture
) -> None:
    """Another instance (whose token memory this one does not share) recorded the call
    first: this instance's call with the same id ends without replacing that record."""
    call = await start_call(FakeRealtimeOptions(reject_status=401), CONNECT_API_KEY=API_KEY)
    store = call.bridge.app[STORE]
    call_uuid = "5f1c0d3e-0000-4000-8000-00000000beef"
    first = CallRecord(
        call_uuid=call_uuid,
        direction="inbound",
        started_at=datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
        ended_at=datetime(2026, 11, 23, 9, 1, tzinfo=UTC),
        duration_s=60.0,
        end_reason="caller hung up (close 1000)",
        from_number="447700900000",
        to_number="447700900001",
        transcript=(TranscriptEntry("caller", "hello"),),
    )
    await store.add(first)

    later = call.caller(call_uuid=call_uuid, from_number=OTHER_FROM, to_number=OTHER_TO)
    await later.answer()
    logs.clear()
    await later.connect()
    await later.wait_closed(timeout=10 * SECOND)
    await call_finished(call, call_uuid)

    assert await store.get(call_uuid) == first
    refused = [r for r in logs.records if "already" in r.getMessage() and "record" in r.msg]
    assert len(refused) == 1
    assert refused[0].levelno == logging.WARNING
    assert call_uuid in refused[0].getMessage()
    assert_nothing_personal(logs, OTHER_FROM, OTHER_TO, "447700900000", "447700900001")

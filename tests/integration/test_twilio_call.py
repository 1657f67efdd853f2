"""A whole Twilio call on loopback: signed Voice webhook, TwiML, Media Stream, fake Realtime.

The fake Twilio caller (``sim/twilio.py``) signs like Twilio, sends 20 ms mu-law frames in real
time and plays what it receives, echoing ``mark``s once played and dropping its queue on
``clear``. The fake Twilio REST API (``sim/twilio_api.py``) records hang-ups and transfers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from support import SECOND, Call, StartCall
from test_tools_call import function_call

from vonage_bridge.sim.realtime import FakeRealtimeOptions, FakeRealtimeSession
from vonage_bridge.sim.twilio import (
    CALLER_WAV,
    FakeTwilioCaller,
    TwilioCallerError,
    TwilioCallerOptions,
    read_wav_mulaw,
)
from vonage_bridge.sim.twilio_api import FakeTwilioApi
from vonage_bridge.twilio.signature import sign_request
from vonage_bridge.web.keys import CALLS, STORE

AUTH_TOKEN = "twilio-auth-token-for-tests-0123456789"
ACCOUNT_SID = "AC" + "a" * 32
MS = 8  # bytes per ms of 8 kHz mu-law
WEBHOOK = "/twilio/incoming-call"


@dataclass
class TwilioCall:
    call: Call
    api: FakeTwilioApi

    def caller(self, **kwargs: object) -> FakeTwilioCaller:
        kwargs.setdefault("auth_token", AUTH_TOKEN)
        kwargs.setdefault("account_sid", ACCOUNT_SID)
        return FakeTwilioCaller(
            self.call.http,
            f"{self.call.bridge.url}{WEBHOOK}",
            **kwargs,  # type: ignore[arg-type]
        )

    async def connected(self, **kwargs: object) -> tuple[FakeTwilioCaller, FakeRealtimeSession]:
        caller = self.caller(**kwargs)
        self.api.add_call(caller.call_sid)
        await caller.answer()
        await caller.connect()
        return caller, await self.call.fake.wait_for_session(timeout=5 * SECOND)


@pytest.fixture
async def twilio_api() -> AsyncIterator[FakeTwilioApi]:
    async with FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN) as api:
        yield api


StartTwilio = Callable[..., Coroutine[Any, Any, TwilioCall]]
"""``await start_twilio(options=FakeRealtimeOptions(...), **env_overrides)``."""


@pytest.fixture
def start_twilio(start_call: StartCall, twilio_api: FakeTwilioApi) -> StartTwilio:
    async def start(options: FakeRealtimeOptions | None = None, **env: str) -> TwilioCall:
        env = {
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_API_URL": twilio_api.base_url,
            **env,
        }
        return TwilioCall(await start_call(options, **env), twilio_api)

    return start


def speech(ms: int) -> bytes:
    return read_wav_mulaw(CALLER_WAV)[: ms * MS]


async def no_live_calls(call: Call) -> None:
    app = call.bridge.app
    tasks = [live.task for live in app[CALLS].values()]
    if tasks:
        await asyncio.wait(tasks, timeout=5 * SECOND)
    assert not app[CALLS]


async def test_twilio_call_bridges_mulaw_both_ways_without_resampling(
    start_twilio: StartTwilio,
) -> None:
    tw = await start_twilio()
    caller, rt = await tw.connected()
    # TwiML: greeting, then <Connect><Stream> with caller, called number and a media token
    assert caller.greeting.startswith("Hello")
    params = caller.answer_info.parameters
    assert params["call_sid"] == caller.call_sid
    assert params["from"] == caller.from_number and params["to"] == caller.to_number
    assert params["token"] and params["exp"].isdigit()

    audio = speech(1200)
    # speech at real time (faster is dropped); the silence after at real time too
    await caller.stream_audio(audio, realtime=True)
    await caller.stream_silence(900)
    done = await rt.wait_responses_done(1, timeout=10 * SECOND)
    await caller.wait_heard(done[0].total_bytes, timeout=10 * SECOND)

    update = rt.client_events[0]
    assert update["type"] == "session.update"
    fmt = update["session"]["audio"]
    assert fmt["input"]["format"] == {"type": "audio/pcmu"}
    assert fmt["output"]["format"] == {"type": "audio/pcmu"}
    assert "+14155550100" in update["session"]["instructions"]
    # the caller's mu-law reached OpenAI byte for byte (no resampling, no transcoding)
    assert bytes(rt.input_audio).startswith(audio)
    # the reply (the fake echoes the caller's utterance) was heard in full, byte for byte,
    # and every mark came back
    reply = bytes(caller.heard)[: done[0].total_bytes]
    assert len(reply) == done[0].total_bytes
    assert reply in bytes(rt.input_audio)
    assert caller.marks_received >= 1
    await caller.wait_marks_echoed(caller.marks_received, timeout=5 * SECOND)
    assert caller.bad_messages == []
    assert caller.underruns == 0
    await caller.hang_up()
    await no_live_calls(tw.call)
    assert tw.api.requests == []  # the caller hung up: nothing to end over REST

    record = await tw.call.bridge.app[STORE].get(caller.call_sid)
    assert record is not None
    assert record.front_door == "twilio"
    assert record.from_number == caller.from_number
    assert "stream stopped" in record.end_reason
    assert [e.role for e in record.transcript][:2] == ["caller", "assistant"]


async def test_twilio_barge_in_clears_and_truncates_at_the_marked_position(
    start_twilio: StartTwilio,
) -> None:
    tw = await start_twilio(FakeRealtimeOptions(reply_realtime_factor=1.0))
    caller, rt = await tw.connected()
    # speech at real time (faster is dropped); the silence after at real time too
    await caller.stream_audio(speech(3000), realtime=True)
    await caller.stream_silence(900)
    await caller.wait_heard(500 * MS, timeout=10 * SECOND)

    talking = asyncio.create_task(caller.stream_audio(speech(800), realtime=True))
    truncate = await rt.wait_for_event("conversation.item.truncate", timeout=5 * SECOND)
    heard_ms_then = len(caller.heard) / MS
    await talking
    assert truncate["item_id"] == rt.responses[0].item_id
    assert 300 <= truncate["audio_end_ms"] <= heard_ms_then + 1
    types = [e["type"] for e in rt.server_events]
    assert "conversation.item.truncated" in types
    assert "error" not in types
    assert caller.clears_received >= 1
    assert len(caller.heard) / MS < 2500  # far from the ~3 s reply
    assert caller.bad_messages == []
    await caller.hang_up()


async def test_twilio_dtmf_reaches_the_model_and_the_transcript(start_twilio: StartTwilio) -> None:
    tw = await start_twilio()
    caller, rt = await tw.connected()
    await caller.send_dtmf("5")
    created = await rt.wait_for_event("conversation.item.create", timeout=5 * SECOND)
    assert created["item"]["content"] == [{"type": "input_text", "text": "The caller pressed 5"}]
    await caller.hang_up()
    await no_live_calls(tw.call)
    record = await tw.call.bridge.app[STORE].get(caller.call_sid)
    assert record is not None
    assert ("dtmf", "5") in [(e.role, e.text) for e in record.transcript]


@pytest.mark.parametrize("mode", ["invalid", "missing"])
async def test_unsigned_or_badly_signed_webhook_is_refused_403(
    start_twilio: StartTwilio, mode: str
) -> None:
    tw = await start_twilio()
    caller = tw.caller(options=TwilioCallerOptions(webhook_signature=mode))  # type: ignore[arg-type]
    with pytest.raises(TwilioCallerError) as info:
        await caller.answer()
    assert info.value.status == 403
    body = json.loads(info.value.body or "{}")
    assert body["error"]["code"].startswith("twilio_signature")
    assert tw.call.fake.sessions == []


@pytest.mark.parametrize("mode", ["invalid", "missing"])
async def test_unsigned_stream_upgrade_is_refused_403(start_twilio: StartTwilio, mode: str) -> None:
    tw = await start_twilio()
    caller = tw.caller(options=TwilioCallerOptions(stream_signature=mode))  # type: ignore[arg-type]
    await caller.answer()
    with pytest.raises(TwilioCallerError) as info:
        await caller.connect()
    assert info.value.status == 403
    assert tw.call.fake.sessions == []


async def test_signature_made_for_the_public_url_behind_a_proxy_is_accepted(
    start_twilio: StartTwilio,
) -> None:
    """Fly's proxy: Twilio signs https://public-host/..., we see http://127.0.0.1:port/...
    with X-Forwarded-Proto/Host."""
    tw = await start_twilio()
    options = TwilioCallerOptions(public_base_url="https://bridge.example.fly.dev")
    caller = tw.caller(options=options)
    tw.api.add_call(caller.call_sid)
    await caller.answer()
    await caller.connect()
    rt = await tw.call.fake.wait_for_session(timeout=5 * SECOND)
    await rt.wait_for_event("session.update", timeout=5 * SECOND)
    await caller.hang_up()


async def test_stream_without_a_valid_media_token_is_closed_before_realtime(
    start_twilio: StartTwilio,
) -> None:
    tw = await start_twilio()
    bridge = tw.call.bridge.url
    stream_url = bridge.replace("http", "ws") + "/twilio/media-stream"
    headers = {"X-Twilio-Signature": sign_request(AUTH_TOKEN, stream_url)}
    async with tw.call.http.ws_connect(stream_url, headers=headers) as ws:
        await ws.send_str(json.dumps({"event": "connected", "protocol": "Call", "version": "1"}))
        start = {
            "event": "start",
            "sequenceNumber": "1",
            "streamSid": "MZ" + "1" * 32,
            "start": {
                "streamSid": "MZ" + "1" * 32,
                "accountSid": ACCOUNT_SID,
                "callSid": "CA" + "2" * 32,
                "tracks": ["inbound"],
                "customParameters": {"call_sid": "CA" + "2" * 32, "exp": "9999999999"},
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        }
        await ws.send_str(json.dumps(start))
        msg = await ws.receive(timeout=5 * SECOND)
        assert msg.type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 1008
    assert tw.call.fake.sessions == []


async def test_bad_media_messages_are_counted_once_logged_and_the_call_goes_on(
    start_twilio: StartTwilio,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tw = await start_twilio()
    caller, rt = await tw.connected()
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            await caller.send_malformed("bad_base64")
            await caller.send_malformed("bad_json")
        # speech at real time (faster is dropped); the silence after at real time too
        await caller.stream_audio(speech(800), realtime=True)
        await caller.stream_silence(900)
        await rt.wait_responses_done(1, timeout=10 * SECOND)
        await caller.hang_up()
        await no_live_calls(tw.call)
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("vonage_bridge")]
    assert sum("dropping bad caller message" in m for m in messages) == 1
    summary = [r for r in caplog.records if r.getMessage().startswith("call summary")]
    assert summary and summary[-1].summary["bad_frames"] == 6  # type: ignore[attr-defined]


async def test_realtime_failure_hangs_the_twilio_call_up_over_rest(
    start_twilio: StartTwilio,
) -> None:
    tw = await start_twilio()
    caller, rt = await tw.connected()
    await rt.wait_for_event("session.update", timeout=5 * SECOND)
    await rt.close(1011)
    hangup = await tw.api.wait_hangup(caller.call_sid, timeout=5 * SECOND)
    assert hangup.fields == {"Status": "completed"}
    await caller.wait_closed(timeout=5 * SECOND)
    assert caller.close_code == 1011


async def test_end_call_tool_hangs_up_over_twilio_rest(start_twilio: StartTwilio) -> None:
    tw = await start_twilio()
    caller, rt = await tw.connected()
    function_call(rt, "call_1", "end_call", {})
    await tw.api.wait_hangup(caller.call_sid, timeout=5 * SECOND)
    await caller.wait_closed(timeout=5 * SECOND)
    assert "assistant ended the call" in caller.close_reason


async def test_transfer_tool_updates_the_call_with_dial_twiml(start_twilio: StartTwilio) -> None:
    tw = await start_twilio(TRANSFER_NUMBER="447700900123")
    caller, rt = await tw.connected()
    function_call(rt, "call_1", "transfer_call", {"reason": "wants a human"})
    request = await tw.api.wait_request(caller.call_sid, timeout=5 * SECOND)
    dial = ET.fromstring(request.fields["Twiml"]).find("Dial")
    assert dial is not None and dial.text == "+447700900123"
    created = await rt.wait_for_event("conversation.item.create", timeout=5 * SECOND)
    assert "transferred" in created["item"]["output"]
    await caller.hang_up()


async def test_twilio_front_door_is_not_mounted_without_an_account_sid(
    start_call: StartCall,
) -> None:
    call = await start_call()
    async with call.http.post(f"{call.bridge.url}{WEBHOOK}", data={"CallSid": "CA1"}) as resp:
        assert resp.status == 404


async def test_without_an_auth_token_requests_are_not_verified_but_the_token_is(
    start_call: StartCall, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        call = await start_call(TWILIO_ACCOUNT_SID=ACCOUNT_SID)
    assert any("TWILIO_AUTH_TOKEN not set" in r.getMessage() for r in caplog.records)
    caller = FakeTwilioCaller(call.http, f"{call.bridge.url}{WEBHOOK}")
    await caller.answer()
    await caller.connect()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    await rt.wait_for_event("session.update", timeout=5 * SECOND)
    await caller.hang_up()

"""Pre-warm on loopback: the answer URL opens the call's Realtime session while the greeting
plays, and the media socket adopts it (``realtime/prewarm.py``).

The fake Realtime is slow (800 ms to accept the socket, 800 ms more to answer
``session.update``); "the greeting has played" is modelled by waiting until the warm session's
``session.update`` reached the fake, then the caller speaks at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from support import SECOND, Call, StartCall

from vonage_bridge.logs import CallContextFilter
from vonage_bridge.metrics import METRICS
from vonage_bridge.realtime.prewarm import WarmSessions
from vonage_bridge.sim.realtime import FakeRealtimeOptions, FakeRealtimeSession
from vonage_bridge.sim.twilio import CALLER_WAV as TWILIO_WAV
from vonage_bridge.sim.twilio import FakeTwilioCaller, TwilioCallerError, read_wav_mulaw
from vonage_bridge.sim.twilio_api import FakeTwilioApi
from vonage_bridge.sim.vonage import CALLER_WAV, FakeVonageCaller, read_wav_pcm16
from vonage_bridge.sim.vonage_api import sign_webhook
from vonage_bridge.web.keys import CALLS, WARM_SESSIONS

SLOW = FakeRealtimeOptions(handshake_delay_s=0.8, session_updated_delay_s=0.8)
"""A Realtime that takes 800 ms to open and 800 ms more to answer ``session.update``."""
VONAGE_FRAME = 640
TWILIO_FRAME = 160
AUTH_TOKEN = "twilio-auth-token-for-tests-0123456789"
ACCOUNT_SID = "AC" + "b" * 32
SECRET = "vonage-signature-secret-for-tests-0123456789"


def summaries(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.summary for r in caplog.records if hasattr(r, "summary")]  # type: ignore[attr-defined]


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def warm(call: Call) -> WarmSessions:
    return call.bridge.app[WARM_SESSIONS]


async def call_ended(call: Call) -> None:
    """Wait until every call task finished (its summary is logged by then)."""
    tasks = [live.task for live in call.bridge.app[CALLS].values()]
    if tasks:
        await asyncio.wait(tasks, timeout=5 * SECOND)
    assert not call.bridge.app[CALLS]


async def greeting_played(call: Call) -> FakeRealtimeSession:
    """The warm session is open and configured: what a greeting longer than the connect gives."""
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    await rt.wait_for_event("session.update", timeout=5 * SECOND)
    return rt


def vonage_speech(ms: int = 1200) -> bytes:
    pcm, rate = read_wav_pcm16(CALLER_WAV)
    assert rate == 16_000
    return pcm[: ms * 32]


async def vonage_reply(call: Call, caller: FakeVonageCaller, rt: FakeRealtimeSession) -> None:
    """The caller speaks at once (real time), then the reply is heard whole."""
    await caller.stream_audio(vonage_speech(), realtime=True)
    await caller.stream_silence(900)
    done = await rt.wait_responses_done(1, timeout=10 * SECOND)
    frames = math.ceil(done[0].total_bytes * 2 / 3 / VONAGE_FRAME)
    await caller.wait_heard(frames * VONAGE_FRAME, timeout=10 * SECOND)
    assert caller.bad_frames == []


# ------------------------------------------------------------------ adopted: nothing held


async def test_vonage_caller_speaking_right_after_the_greeting_waits_for_no_realtime_connect(
    start_call: StartCall, caplog: pytest.LogCaptureFixture
) -> None:
    call = await start_call(SLOW)
    caplog.handler.addFilter(CallContextFilter())
    with caplog.at_level(logging.INFO):
        caller = call.caller()
        await caller.answer()
        rt = await greeting_played(call)
        await caller.connect()
        await vonage_reply(call, caller, rt)
        await caller.hang_up()
        await call_ended(call)
    (summary,) = summaries(caplog)
    assert summary["held_ms"] == 0
    assert summary["responses"] == 1
    assert len(call.fake.sessions) == 1  # the warm session was the call's only one
    updates = [e for e in rt.client_events if e["type"] == "session.update"]
    assert len(updates) == 1 and rt.client_events[0] is updates[0]  # configured once, first
    assert "447700900000" in updates[0]["session"]["instructions"]  # the caller, known early
    assert len(messages(caplog, "adopted the warm Realtime session")) == 1
    assert len(warm(call)) == 0


async def test_media_socket_arriving_while_the_warm_session_opens_waits_for_it(
    start_call: StartCall, caplog: pytest.LogCaptureFixture
) -> None:
    """A greeting shorter than the connect: the audio is held meanwhile, then sent in order,
    on the one (warm) session."""
    call = await start_call(SLOW)
    caplog.handler.addFilter(CallContextFilter())
    with caplog.at_level(logging.INFO):
        caller = call.caller()
        await caller.answer()
        await caller.connect()  # at once: the fake takes 800 ms to accept
        speech = asyncio.create_task(caller.stream_audio(vonage_speech(), realtime=True))
        rt = await call.fake.wait_for_session(timeout=5 * SECOND)
        await speech
        await caller.stream_silence(900)
        done = await rt.wait_responses_done(1, timeout=10 * SECOND)
        frames = math.ceil(done[0].total_bytes * 2 / 3 / VONAGE_FRAME)
        await caller.wait_heard(frames * VONAGE_FRAME, timeout=10 * SECOND)
        await caller.hang_up()
        await call_ended(call)
    (summary,) = summaries(caplog)
    assert summary["held_ms"] > 0
    assert len(call.fake.sessions) == 1
    assert rt.client_events[0]["type"] == "session.update"
    assert len(messages(caplog, "adopted the warm Realtime session")) == 1


# ------------------------------------------------------------------ connect time measured warm

CONNECT = "vonage_bridge_realtime_connect_seconds"


def connect_seconds() -> tuple[float, float]:
    """``(count, sum)`` of the Realtime connect histogram."""
    registry = METRICS.registry
    count = registry.get_sample_value(f"{CONNECT}_count") or 0.0
    return count, registry.get_sample_value(f"{CONNECT}_sum") or 0.0


async def test_a_warm_session_ready_before_its_media_socket_is_measured_once(
    start_call: StartCall, caplog: pytest.LogCaptureFixture
) -> None:
    call = await start_call(SLOW)
    count_before, sum_before = connect_seconds()
    caplog.handler.addFilter(CallContextFilter())
    with caplog.at_level(logging.INFO):
        caller = call.caller()
        await caller.answer()
        rt = await greeting_played(call)
        session = warm(call).get(caller.call_uuid)
        assert session is not None
        await asyncio.wait_for(session.settled(), timeout=5 * SECOND)
        # measured before any media socket came: upgrade (800 ms) + session.updated (800 ms)
        count, total = connect_seconds()
        assert count == count_before + 1
        assert total - sum_before >= 1.6
        read = [json.loads(event)["type"] for event in session.early]
        assert read == ["session.created", "session.updated"]

        await caller.connect()
        await vonage_reply(call, caller, rt)
        await caller.hang_up()
        await call_ended(call)
    assert connect_seconds()[0] == count_before + 1  # the call did not measure it again
    (summary,) = summaries(caplog)
    assert summary["held_ms"] == 0 and summary["responses"] == 1


async def test_events_a_warm_session_read_reach_the_call_in_order(
    start_call: StartCall, caplog: pytest.LogCaptureFixture
) -> None:
    """The reader stops at an ``error`` (the update refused: not measured) and the call's
    session gets it, then what follows on the socket."""
    call = await start_call(SLOW)
    count_before = connect_seconds()[0]
    caplog.handler.addFilter(CallContextFilter())
    with caplog.at_level(logging.INFO):
        caller = call.caller()
        await caller.answer()
        rt = await greeting_played(call)
        rt._push_error("invalid_value", "refused before session.updated")
        session = warm(call).get(caller.call_uuid)
        assert session is not None
        await asyncio.wait_for(session.settled(), timeout=5 * SECOND)
        read = [json.loads(event)["type"] for event in session.early]
        assert read == ["session.created", "error"]
        await caller.connect()
        await vonage_reply(call, caller, rt)  # session.updated and the rest: read by the call
        await caller.hang_up()
        await call_ended(call)
    assert connect_seconds()[0] == count_before
    (summary,) = summaries(caplog)
    assert summary["responses"] == 1
    (error,) = messages(caplog, "refused before session.updated")  # replayed to the session
    assert error.startswith("Realtime error invalid_request_error/invalid_value")


@pytest.fixture
async def twilio_api() -> AsyncIterator[FakeTwilioApi]:
    async with FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN) as api:
        yield api


async def start_twilio(start_call: StartCall, api: FakeTwilioApi) -> Call:
    return await start_call(
        SLOW,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_API_URL=api.base_url,
    )


def twilio_caller(call: Call, **kwargs: Any) -> FakeTwilioCaller:
    return FakeTwilioCaller(
        call.http,
        f"{call.bridge.url}/twilio/incoming-call",
        auth_token=kwargs.pop("auth_token", AUTH_TOKEN),
        account_sid=ACCOUNT_SID,
        **kwargs,
    )


async def test_twilio_caller_speaking_right_after_the_greeting_waits_for_no_realtime_connect(
    start_call: StartCall, twilio_api: FakeTwilioApi, caplog: pytest.LogCaptureFixture
) -> None:
    call = await start_twilio(start_call, twilio_api)
    caplog.handler.addFilter(CallContextFilter())
    with caplog.at_level(logging.INFO):
        caller = twilio_caller(call)
        twilio_api.add_call(caller.call_sid)
        await caller.answer()
        rt = await greeting_played(call)
        await caller.connect()
        await caller.stream_audio(read_wav_mulaw(TWILIO_WAV)[: 1200 * 8], realtime=True)
        await caller.stream_silence(900)
        done = await rt.wait_responses_done(1, timeout=10 * SECOND)
        frames = math.ceil(done[0].total_bytes / TWILIO_FRAME)
        await caller.wait_heard((frames - 1) * TWILIO_FRAME, timeout=10 * SECOND)
        await caller.hang_up()
        await call_ended(call)
    (summary,) = summaries(caplog)
    assert summary["held_ms"] == 0
    assert summary["responses"] == 1
    assert len(call.fake.sessions) == 1
    update = rt.client_events[0]
    assert update["type"] == "session.update"
    assert update["session"]["audio"]["input"]["format"] == {"type": "audio/pcmu"}
    assert len(messages(caplog, "adopted the warm Realtime session")) == 1


# ------------------------------------------------------------------ not adopted, bounded, refused


async def test_warm_session_without_media_socket_is_closed_after_the_expiry(
    start_call: StartCall, caplog: pytest.LogCaptureFixture
) -> None:
    call = await start_call()
    warm(call).ttl_s = 0.3
    caplog.handler.addFilter(CallContextFilter())
    with caplog.at_level(logging.INFO):
        await call.caller().answer()
        rt = await call.fake.wait_for_session(timeout=5 * SECOND)
        await asyncio.wait_for(rt.closed.wait(), 5 * SECOND)
    assert rt.close_code == aiohttp.WSCloseCode.OK
    assert len(warm(call)) == 0
    (line,) = messages(caplog, "warm Realtime session expired")
    assert "0.3 s" in line


async def test_warm_sessions_are_bounded_and_calls_past_the_bound_open_their_own(
    start_call: StartCall, caplog: pytest.LogCaptureFixture
) -> None:
    call = await start_call()
    warm(call).extra = 2  # no live call: two warm sessions at most
    callers = [call.caller() for _ in range(3)]
    with caplog.at_level(logging.INFO):
        for caller in callers[:2]:
            await caller.answer()
        for _ in range(2):
            await call.fake.wait_for_session(timeout=5 * SECOND)
        await callers[2].answer()
        assert len(warm(call)) == 2
        assert callers[2].call_uuid not in warm(call)
        assert len(messages(caplog, "(the bound)")) == 1
        await callers[2].connect()  # no warm session: it opens its own, as before
        own = await call.fake.wait_for_session(timeout=5 * SECOND)
        await vonage_reply(call, callers[2], own)
        assert len(messages(caplog, "no warm Realtime session for this call")) == 1
        await callers[2].hang_up()
        await call_ended(call)
    assert len(call.fake.sessions) == 3


async def test_unverified_answer_urls_open_no_warm_session(
    start_call: StartCall, twilio_api: FakeTwilioApi
) -> None:
    call = await start_call(
        VONAGE_SIGNATURE_SECRET=SECRET,
        ALLOW_UNSIGNED_WEBHOOKS="false",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_API_URL=twilio_api.base_url,
    )
    body = json.dumps({"uuid": "call-forged", "from": "447700900000", "to": "447700900001"})
    forged = sign_webhook("not-the-vonage-signature-secret-0123456789", body.encode())
    async with call.http.post(
        f"{call.bridge.url}/incoming-call",
        data=body,
        headers={"Content-Type": "application/json", "Authorization": forged},
    ) as resp:
        assert resp.status == 401
    with pytest.raises(TwilioCallerError):
        await twilio_caller(call, auth_token="not-the-twilio-auth-token-0123456789").answer()
    assert len(warm(call)) == 0
    assert call.fake.handshakes == []  # no Realtime session was even started


async def test_media_socket_with_no_warm_session_opens_its_own_and_holds_nothing_back(
    start_call: StartCall, caplog: pytest.LogCaptureFixture
) -> None:
    """As when another instance answered the call: the audio is held while Realtime opens,
    then sent in order, and the reply comes."""
    call = await start_call(SLOW)
    warm(call).enabled = False
    caplog.handler.addFilter(CallContextFilter())
    with caplog.at_level(logging.INFO):
        caller = call.caller()
        await caller.answer()
        assert len(warm(call)) == 0
        await caller.connect()
        speech = asyncio.create_task(caller.stream_audio(vonage_speech(), realtime=True))
        rt = await call.fake.wait_for_session(timeout=5 * SECOND)
        await speech
        await caller.stream_silence(900)
        done = await rt.wait_responses_done(1, timeout=10 * SECOND)
        frames = math.ceil(done[0].total_bytes * 2 / 3 / VONAGE_FRAME)
        await caller.wait_heard(frames * VONAGE_FRAME, timeout=10 * SECOND)
        await caller.hang_up()
        await call_ended(call)
    (summary,) = summaries(caplog)
    assert summary["held_ms"] > 0
    assert rt.client_events[0]["type"] == "session.update"
    assert len(messages(caplog, "no warm Realtime session for this call")) == 1


async def test_shutdown_closes_warm_sessions(start_call: StartCall) -> None:
    call = await start_call()
    await call.caller().answer()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    await call.bridge.close()
    await asyncio.wait_for(rt.closed.wait(), 5 * SECOND)
    assert rt.close_code == aiohttp.WSCloseCode.OK
    assert len(warm(call)) == 0

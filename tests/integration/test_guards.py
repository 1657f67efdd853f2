"""Guards against hostile or broken peers, on loopback: a caller sending audio faster than real
time, a Realtime session that stalls mid-response, and a shutdown whose REST hang-ups hang."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from support import SECOND, Call, StartCall
from test_outbound import APP_ID
from test_twilio_call import StartTwilio, start_twilio, twilio_api  # noqa: F401 (fixtures)

from vonage_bridge.logs import CallContextFilter
from vonage_bridge.sim.realtime import FakeRealtimeOptions, FakeRealtimeSession
from vonage_bridge.sim.twilio import MULAW_SILENCE
from vonage_bridge.sim.vonage import FakeVonageCaller
from vonage_bridge.sim.vonage_api import FakeVoiceApi, application_test_key
from vonage_bridge.web.keys import CALLS

VONAGE_FRAME = bytes(640)  # 20 ms of L16 silence at 16 kHz


@pytest.fixture
async def voice_api() -> AsyncIterator[FakeVoiceApi]:
    api = FakeVoiceApi(application_test_key().public_key(), APP_ID)
    await api.start()
    yield api
    await api.close()


async def connected(call: Call) -> tuple[FakeVonageCaller, FakeRealtimeSession]:
    caller = call.caller()
    await caller.answer()
    await caller.connect()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    await rt.wait_for_event("session.update", timeout=5 * SECOND)
    return caller, rt


def summaries(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.summary for r in caplog.records if hasattr(r, "summary")]  # type: ignore[attr-defined]


async def no_live_calls(call: Call) -> None:
    app = call.bridge.app
    tasks = [live.task for live in app[CALLS].values()]
    if tasks:
        await asyncio.wait(tasks, timeout=5 * SECOND)
    assert not app[CALLS]


# ------------------------------------------------------------------ audio faster than real time


async def test_vonage_caller_faster_than_real_time_is_cut_off_with_policy_violation(
    start_call: StartCall, caplog: pytest.LogCaptureFixture
) -> None:
    call = await start_call()
    caller, rt = await connected(call)
    caplog.handler.addFilter(CallContextFilter())
    with caplog.at_level(logging.INFO):
        # 60 s of audio as fast as the socket takes it (a probe sent 1,600 s in 5 s).
        await caller.stream_audio(VONAGE_FRAME * 3_000, realtime=False)
        await caller.wait_closed(timeout=10 * SECOND)
        await no_live_calls(call)
    assert caller.close_code == 1008
    assert caller.close_reason == "audio faster than real time"
    (summary,) = summaries(caplog)
    assert summary["fast_frames_dropped"] > 0
    # What reached Realtime is the burst allowance plus the excess tolerated, not 60 s.
    assert rt.append_count == 0 or len(rt.input_audio) / 48 < 10_000  # ms at 24 kHz PCM16
    assert summary["frames_in"] < 10_000 / 20
    warnings = [
        r for r in caplog.records if r.levelno >= logging.WARNING and "real time" in r.getMessage()
    ]
    assert warnings, "the drop is logged"
    assert all(r.call_uuid == caller.call_uuid for r in warnings)  # type: ignore[attr-defined]


async def test_twilio_caller_faster_than_real_time_is_cut_off_with_policy_violation(
    start_twilio: StartTwilio,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    tw = await start_twilio()
    caller, rt = await tw.connected()
    await rt.wait_for_event("session.update", timeout=5 * SECOND)
    with caplog.at_level(logging.INFO):
        await caller.stream_audio(MULAW_SILENCE * (8 * 60_000), realtime=False)  # 60 s
        await caller.wait_closed(timeout=10 * SECOND)
        await no_live_calls(tw.call)
    assert caller.close_code == 1008
    assert caller.close_reason == "audio faster than real time"
    (summary,) = summaries(caplog)
    assert summary["fast_frames_dropped"] > 0
    assert summary["frames_in"] < 10_000 / 20


async def test_real_time_caller_with_jitter_loses_no_frame(
    start_call: StartCall, caplog: pytest.LogCaptureFixture
) -> None:
    from vonage_bridge.sim.vonage import CallerOptions

    call = await start_call(FakeRealtimeOptions(reply=False))
    caller = call.caller(options=CallerOptions(jitter_ms=60, seed=7))  # frames bunch up
    await caller.answer()
    await caller.connect()
    await call.fake.wait_for_session(timeout=5 * SECOND)
    with caplog.at_level(logging.INFO):
        await caller.stream_audio(VONAGE_FRAME * 75)  # 1.5 s, paced
        await caller.hang_up()
        await no_live_calls(call)
    (summary,) = summaries(caplog)
    assert summary["fast_frames_dropped"] == 0
    assert summary["frames_in"] == 75
    assert not any("real time" in r.getMessage() for r in caplog.records)

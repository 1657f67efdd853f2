"""Guards against hostile or broken peers, on loopback: a caller sending audio faster than real
time, a caller socket gone silent, a Realtime session that stalls mid-response, and a shutdown
whose REST hang-ups hang."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from support import SECOND, Call, StartCall
from test_outbound import APP_ID, vonage_env
from test_scripted_call import pressed
from test_twilio_call import StartTwilio, start_twilio, twilio_api  # noqa: F401 (fixtures)

from vonage_bridge.logs import CallContextFilter
from vonage_bridge.sim.realtime import FakeRealtimeOptions, FakeRealtimeSession
from vonage_bridge.sim.realtime_script import RealtimeScript, RealtimeStep, session_updated
from vonage_bridge.sim.twilio import MULAW_SILENCE
from vonage_bridge.sim.vonage import CALLER_WAV, FakeVonageCaller, read_wav_pcm16
from vonage_bridge.sim.vonage_api import FakeVoiceApi, FakeVoiceApiOptions, application_test_key
from vonage_bridge.store import CallRecord
from vonage_bridge.twilio import routes as twilio_routes
from vonage_bridge.vonage import routes as vonage_routes
from vonage_bridge.web import lifecycle
from vonage_bridge.web.keys import CALLS, STORE

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


@pytest.fixture
def short_silent_limit(monkeypatch: pytest.MonkeyPatch) -> float:
    """Carrier sockets count as dead after 1 s without a message (30 s in service): short, but
    well above a stall of a loaded test machine between two paced frames."""
    for routes in (vonage_routes, twilio_routes):
        monkeypatch.setattr(routes, "CARRIER_SILENT_S", 1.0)
    return 1.0


async def test_vonage_caller_socket_gone_silent_ends_and_hangs_up_the_call(
    start_call: StartCall,
    voice_api: FakeVoiceApi,
    short_silent_limit: float,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A half-open socket: no close, no audio. No ping heartbeat finds it; the watch does."""
    call = await start_call(FakeRealtimeOptions(reply=False), **vonage_env(voice_api))
    caller, rt = await connected(call)
    caplog.handler.addFilter(CallContextFilter())
    with caplog.at_level(logging.INFO):
        await caller.stream_audio(VONAGE_FRAME * 10)  # 200 ms, paced, then nothing at all
        await caller.wait_closed(timeout=10 * SECOND)
        await no_live_calls(call)
    assert caller.close_code == 1001
    assert caller.close_reason == "caller socket silent for 1 s"
    assert [u for u, _ in voice_api.hangups] == [caller.call_uuid]  # the carrier leg too
    (summary,) = summaries(caplog)
    assert summary["end_reason"] == "caller socket silent for 1 s"
    assert summary["frames_in"] == 10
    await asyncio.wait_for(rt.closed.wait(), 5 * SECOND)
    (line,) = [r for r in caplog.records if "sent nothing" in r.getMessage()]
    assert line.levelno == logging.WARNING  # the carrier's side failed, not ours
    assert line.call_uuid == caller.call_uuid  # type: ignore[attr-defined]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_twilio_caller_socket_gone_silent_ends_the_call(
    start_twilio: StartTwilio,  # noqa: F811
    short_silent_limit: float,
) -> None:
    tw = await start_twilio()
    caller, rt = await tw.connected()
    await rt.wait_for_event("session.update", timeout=5 * SECOND)
    await caller.stream_audio(MULAW_SILENCE * (8 * 200))  # 200 ms, paced, then nothing
    await caller.wait_closed(timeout=10 * SECOND)
    await no_live_calls(tw.call)
    assert caller.close_code == 1001
    assert caller.close_reason == "caller socket silent for 1 s"


async def test_a_caller_streaming_audio_is_never_silent(
    start_call: StartCall, short_silent_limit: float
) -> None:
    """Audio every 20 ms keeps the socket alive well past the limit."""
    call = await start_call(FakeRealtimeOptions(reply=False))
    caller, _ = await connected(call)
    await caller.stream_audio(VONAGE_FRAME * 150)  # 3 s, three times the limit, paced
    assert not caller.closed.is_set()
    await caller.hang_up()
    await no_live_calls(call)


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


# ------------------------------------------------------------------ Realtime stalls


def speech(ms: int) -> bytes:
    pcm, _ = read_wav_pcm16(CALLER_WAV)
    return pcm[: ms * 32]


async def test_realtime_stall_during_a_response_ends_and_hangs_up_the_call(
    start_call: StartCall, voice_api: FakeVoiceApi, caplog: pytest.LogCaptureFixture
) -> None:
    options = FakeRealtimeOptions(stall_after_deltas=2, reply_realtime_factor=0)
    call = await start_call(options, REALTIME_STALL_TIMEOUT_S="0.5", **vonage_env(voice_api))
    caller, rt = await connected(call)
    caplog.handler.addFilter(CallContextFilter())
    with caplog.at_level(logging.INFO):
        await caller.stream_audio(speech(800), realtime=False)
        await caller.stream_silence(700)  # the caller's turn ends: a reply starts, then stalls
        await caller.wait_closed(timeout=10 * SECOND)
        await no_live_calls(call)
    assert rt.stalled and rt.responses[0].status == "in_progress"
    assert caller.close_code == 1011
    assert caller.close_reason == "Realtime stalled: no event for 0.5 s"
    assert [u for u, _ in voice_api.hangups] == [caller.call_uuid]
    (summary,) = summaries(caplog)
    assert summary["end_reason"] == "Realtime stalled: no event for 0.5 s"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == ["call ending: Realtime stalled: no event for 0.5 s"]
    assert errors[0].call_uuid == caller.call_uuid  # type: ignore[attr-defined]
    assert not errors[0].exc_info


async def test_response_create_left_unanswered_ends_the_call(start_call: StartCall) -> None:
    """We asked for a reply (a key press for the model) and Realtime never started one."""
    script = RealtimeScript(
        [
            RealtimeStep("session.update", emit=session_updated),
            pressed("5"),
            RealtimeStep("response.create", emit=()),  # no response.created, nothing at all
        ],
        ignore={"input_audio_buffer.append"},
    )
    call = await start_call(FakeRealtimeOptions(script=script), REALTIME_STALL_TIMEOUT_S="0.3")
    caller, _ = await connected(call)
    await caller.send_dtmf("5")
    await script.wait_done(timeout=5 * SECOND)
    await caller.wait_closed(timeout=5 * SECOND)
    script.assert_complete()
    assert caller.close_code == 1011
    assert caller.close_reason == "Realtime stalled: no event for 0.3 s"
    await no_live_calls(call)


async def test_quiet_realtime_with_no_reply_expected_keeps_the_call(
    start_call: StartCall,
) -> None:
    """Silence on both sides is a call, not a stall: nothing is expected from Realtime."""
    call = await start_call(REALTIME_STALL_TIMEOUT_S="0.2")
    caller, rt = await connected(call)
    quiet_since = len(rt.server_events)
    await caller.stream_silence(1_000)  # paced: 1 s, five stall timeouts
    assert len(rt.server_events) == quiet_since  # Realtime sent nothing meanwhile
    assert not caller.closed.is_set()
    assert caller.call_uuid in call.bridge.app[CALLS]
    await caller.hang_up()
    await no_live_calls(call)


# ------------------------------------------------------------------ shutdown


def keep_records(call: Call) -> list[CallRecord]:
    """The records the bridge writes from now on (its in-memory store closes with it)."""
    store = call.bridge.app[STORE]
    records: list[CallRecord] = []
    add = store.add

    async def keep(record: CallRecord) -> None:
        records.append(record)
        await add(record)

    store.add = keep  # type: ignore[method-assign]
    return records


def hang_up_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "hang-up" in r.getMessage() or "hung up" in r.getMessage()]


async def test_shutdown_with_an_unanswering_voice_api_ends_within_its_deadline(
    start_call: StartCall,
    voice_api: FakeVoiceApi,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real budget (8 s; see test_guard_settings) scaled down to keep the test short."""
    monkeypatch.setattr(lifecycle, "SHUTDOWN_DEADLINE_S", 2.0)
    monkeypatch.setattr(lifecycle, "SHUTDOWN_HANGUP_S", 0.5)
    monkeypatch.setattr(lifecycle, "SHUTDOWN_CANCEL_S", 0.5)
    voice_api.options = FakeVoiceApiOptions(hangup_delay_s=60)  # never answers in time
    call = await start_call(**vonage_env(voice_api, VONAGE_API_TIMEOUT_S="20"))
    records = keep_records(call)
    caller, _ = await connected(call)
    caplog.handler.addFilter(CallContextFilter())
    loop = asyncio.get_running_loop()
    with caplog.at_level(logging.INFO):
        started = loop.time()
        await call.bridge.close()
        elapsed = loop.time() - started
        await caller.wait_closed(timeout=5 * SECOND)
    assert elapsed < 2.0 + 2 * SECOND  # the deadline, not the 20 s REST timeout
    assert caller.close_code == 1001
    assert [r.end_reason for r in records] == ["server shutting down"]
    (summary,) = summaries(caplog)
    assert summary["end_reason"] == "server shutting down"
    lines = hang_up_lines(caplog)
    assert lines, "the unfinished hang-up is logged"
    assert all(r.call_uuid == caller.call_uuid for r in lines)  # type: ignore[attr-defined]
    assert not any(r.exc_info for r in caplog.records)


async def test_shutdown_hang_ups_run_at_once_and_name_their_call(
    start_call: StartCall, voice_api: FakeVoiceApi, caplog: pytest.LogCaptureFixture
) -> None:
    call = await start_call(**vonage_env(voice_api))
    records = keep_records(call)
    callers = [(await connected(call))[0] for _ in range(2)]
    caplog.handler.addFilter(CallContextFilter())
    with caplog.at_level(logging.INFO):
        await call.bridge.close()
    for caller in callers:
        await caller.wait_closed(timeout=5 * SECOND)
        assert caller.close_code == 1001
    assert sorted(u for u, _ in voice_api.hangups) == sorted(c.call_uuid for c in callers)
    assert [r.end_reason for r in records] == ["server shutting down"] * 2
    lines = [r for r in hang_up_lines(caplog) if "server shutting down" in r.getMessage()]
    assert sorted(r.call_uuid for r in lines) == sorted(c.call_uuid for c in callers)  # type: ignore[attr-defined]

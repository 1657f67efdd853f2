"""CallSession, the sans-I/O core of a call: inputs in, client events / notes / frames out."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pytest

from vonage_bridge.audio.resampler import StreamResampler
from vonage_bridge.config import Settings
from vonage_bridge.core.call_data import CallInfo, Note
from vonage_bridge.core.events import (
    AudioDelta,
    AudioDone,
    CallerConnected,
    CallerDtmf,
    InputTranscriptCompleted,
    InputTranscriptFailed,
    OtherServerEvent,
    OutputTranscriptDone,
    RealtimeError,
    ResponseCreated,
    ResponseDone,
    TranscriptEntry,
    UnknownCallerMessage,
)
from vonage_bridge.core.session import CallSession, Phase

FRAME_16K = 640


NewSession = Callable[..., CallSession]  # the ``new_session`` fixture (conftest.py)


@pytest.fixture
def connecting(new_session: NewSession) -> CallSession:
    """A new session, still CONNECTING (``session``, from conftest.py, is BRIDGING)."""
    return new_session(
        CallInfo("call-1", caller="447700900000", called="447700900001"), bridging=False
    )


def caller_audio(n_frames: int, frame_bytes: int = FRAME_16K, rate: int = 16_000) -> bytes:
    n = n_frames * frame_bytes // 2
    t = np.arange(n) / rate
    return (6000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16).tobytes()


def frames(pcm: bytes, size: int = FRAME_16K) -> list[bytes]:
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


def decoded(appends: list[str]) -> bytes:
    out = b""
    for a in appends:
        doc = json.loads(a)
        assert doc["type"] == "input_audio_buffer.append"
        out += base64.b64decode(doc["audio"])
    return out


def phase(session: CallSession) -> Phase:
    """The phase, read through a call so type checkers do not narrow it across steps."""
    return session.phase


def warnings(notes: list[Note]) -> list[str]:
    return [n.message for n in notes if n.level == "warning"]


def drain_playout(session: CallSession) -> list[bytes]:
    out: list[bytes] = []
    t = 0.0
    while True:
        out += session.playout.take(t)
        wake = session.playout.wakeup_at(t)
        if wake is None:
            return out
        t = max(wake, t + 0.001)


# ------------------------------------------------------------ start-up and held audio


def test_session_holds_caller_frames_until_realtime_is_ready(connecting: CallSession) -> None:
    assert connecting.phase is Phase.CONNECTING
    for f in frames(caller_audio(10)):
        assert connecting.caller_frame(f) is None
    assert connecting.stats.frames_in == 10
    assert connecting.drain_realtime() == []


def test_session_realtime_opened_returns_session_update(connecting: CallSession) -> None:
    doc = json.loads(connecting.realtime_opened())
    assert connecting.phase is Phase.OPENING
    assert doc["type"] == "session.update"
    assert doc["session"]["type"] == "realtime"
    assert doc["session"]["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert "447700900000" in doc["session"]["instructions"]


def test_session_flush_held_sends_resampled_held_audio_in_order(
    connecting: CallSession, settings: Settings
) -> None:
    pcm = caller_audio(40)  # 800 ms: more than one 500 ms flush chunk
    for f in frames(pcm):
        connecting.caller_frame(f)
    connecting.realtime_opened()

    appends = connecting.flush_held()
    assert len(appends) >= 2
    ref = StreamResampler(16_000, 24_000, settings.call.resample_quality)
    expected = np.frombuffer(b"".join(ref.process(f) for f in frames(pcm)), np.int16)
    got = np.frombuffer(decoded(appends), np.int16)
    assert len(got) == len(expected)
    # Two soxr streams fed the same input may differ by a couple of LSBs (soxr 1.1.0), so
    # compare sample by sample with a small tolerance: order and content must match.
    assert int(np.max(np.abs(got.astype(np.int32) - expected.astype(np.int32)))) <= 4
    assert phase(connecting) is Phase.OPENING

    assert connecting.flush_held() == []
    assert phase(connecting) is Phase.BRIDGING


def test_session_after_bridging_caller_frame_returns_append(
    connecting: CallSession, settings: Settings
) -> None:
    pcm = caller_audio(13)
    held_frames, live_frames = frames(pcm)[:3], frames(pcm)[3:]
    for f in held_frames:
        connecting.caller_frame(f)
    connecting.realtime_opened()
    held = connecting.flush_held()
    assert connecting.flush_held() == []
    live = [connecting.caller_frame(f) for f in live_frames]
    assert all(a is not None for a in live)  # soxr's delay is already filled by held audio
    # Held then live audio is one continuous resampled stream: nothing lost or repeated.
    got = np.frombuffer(decoded(held + [a for a in live if a]), np.int16)
    ref = StreamResampler(16_000, 24_000, settings.call.resample_quality)
    expected = np.frombuffer(b"".join(ref.process(f) for f in frames(pcm)), np.int16)
    assert len(got) == len(expected)
    assert int(np.max(np.abs(got.astype(np.int32) - expected.astype(np.int32)))) <= 4
    assert connecting.stats.frames_in == 13


def test_session_40_ms_appends_carry_two_frames_after_the_held_audio(
    new_session: NewSession, settings: Settings
) -> None:
    session = new_session(bridging=False, env={"REALTIME_APPEND_MS": "40"})
    pcm = caller_audio(13)
    held_frames, live_frames = frames(pcm)[:3], frames(pcm)[3:]
    for f in held_frames:
        session.caller_frame(f)
    session.realtime_opened()
    held = session.flush_held()
    assert session.flush_held() == []
    live = [session.caller_frame(f) for f in live_frames]
    # One append per two frames, on the second: 10 live frames, 5 appends.
    assert [a is not None for a in live] == [False, True] * 5
    appends = [a for a in live if a is not None]
    assert len(held) == 1
    # Held first, then the live appends: one continuous resampled stream, nothing lost.
    ref = StreamResampler(16_000, 24_000, settings.call.resample_quality)
    per_frame = [ref.process(f) for f in frames(pcm)]
    expected = np.frombuffer(b"".join(per_frame), np.int16)
    got = np.frombuffer(decoded(held + appends), np.int16)
    assert len(got) == len(expected)
    assert int(np.max(np.abs(got.astype(np.int32) - expected.astype(np.int32)))) <= 4
    # Each live append is what the resampler made of its two frames.
    live_out = per_frame[3:]
    assert [len(decoded([a])) for a in appends] == [
        len(live_out[i]) + len(live_out[i + 1]) for i in range(0, 10, 2)
    ]
    assert session.stats.ms_to_realtime == pytest.approx(expected.nbytes / 48.0)  # 24 kHz


def test_session_default_appends_each_frame_as_it_comes(
    session: CallSession, settings: Settings
) -> None:
    pcm = caller_audio(6)
    live = [session.caller_frame(f) for f in frames(pcm)]
    ref = StreamResampler(16_000, 24_000, settings.call.resample_quality)
    per_frame = [ref.process(f) for f in frames(pcm)]
    assert [len(decoded([a])) if a is not None else 0 for a in live] == [
        len(out) for out in per_frame
    ]


def test_session_flush_with_nothing_held_switches_to_bridging(connecting: CallSession) -> None:
    connecting.realtime_opened()
    assert connecting.flush_held() == []
    assert connecting.phase is Phase.BRIDGING
    appends = [connecting.caller_frame(f) for f in frames(caller_audio(5))]
    sent = [a for a in appends if a is not None]
    assert sent
    assert all(json.loads(a)["type"] == "input_audio_buffer.append" for a in sent)


# ------------------------------------------------------------ bad and odd frames


@pytest.mark.parametrize("count", [1, 2, 25])
def test_session_odd_length_frames_are_dropped_with_one_warning(
    session: CallSession, count: int
) -> None:
    for _ in range(count):
        assert session.caller_frame(bytes(641)) is None
    assert session.caller_frame(b"") is None
    notes = session.drain_notes()
    assert len(warnings(notes)) == 1
    assert session.stats.bad_frames == count + 1
    assert session.stats.frames_in == 0


def test_session_short_frame_is_used_with_one_warning(session: CallSession) -> None:
    pcm = caller_audio(20, frame_bytes=320)
    results = [session.caller_frame(f) for f in frames(pcm, 320)]
    assert any(r is not None for r in results)
    assert session.stats.frames_in == 20
    assert session.stats.bad_frames == 0
    assert len(warnings(session.drain_notes())) == 1


def test_session_connected_at_8k_before_audio_switches_frame_size(connecting: CallSession) -> None:
    connecting.caller_event(CallerConnected("audio/l16;rate=8000", 8000, {"call_uuid": "call-1"}))
    assert connecting.frame_bytes == 320
    assert connecting.playout.frame_bytes == 320
    assert connecting.caller_format.sample_rate_hz == 8000
    for f in frames(caller_audio(5, 320, 8000), 320):
        connecting.caller_frame(f)
    assert warnings(connecting.drain_notes()) == []  # 320-byte frames are now the right size


def test_session_connected_with_new_rate_after_audio_is_ignored(connecting: CallSession) -> None:
    connecting.caller_frame(caller_audio(1))
    connecting.caller_connected(CallerConnected("audio/l16;rate=8000", 8000))
    assert connecting.frame_bytes == 640
    assert len(warnings(connecting.drain_notes())) == 1


# ------------------------------------------------------------ audio toward the caller


@pytest.mark.parametrize("delta_ms", [20, 70, 105, 1000])
def test_session_delta_then_done_plays_whole_frames_covering_the_delta(
    session: CallSession, delta_ms: int
) -> None:
    n = 24 * delta_ms
    audio = (5000 * np.sin(np.arange(n) / 3)).astype(np.int16).tobytes()
    session.realtime_event(ResponseCreated("resp_1"))
    session.realtime_event(AudioDelta("resp_1", "item_1", audio))
    session.realtime_event(AudioDone("resp_1", "item_1"))
    out = drain_playout(session)
    assert all(len(f) == FRAME_16K for f in out)
    assert len(out) == math.ceil(delta_ms / 20)
    assert session.playout.buffered_bytes == 0
    assert session.stats.deltas == 1
    # The content is the delta resampled to 16 kHz, then zero padding to the frame edge.
    ref = StreamResampler(24_000, 16_000, "LQ")
    want = np.frombuffer(ref.process(audio) + ref.drain(), np.int16).astype(np.int32)
    got = np.frombuffer(b"".join(out), np.int16).astype(np.int32)
    assert len(want) == 16 * delta_ms
    assert int(np.max(np.abs(got[: len(want)] - want))) <= 4
    assert not got[len(want) :].any()


def test_session_many_deltas_keep_total_duration(session: CallSession) -> None:
    session.realtime_event(ResponseCreated("resp_1"))
    for _ in range(23):  # 23 deltas of 37.5 ms = 862.5 ms
        session.realtime_event(AudioDelta("resp_1", "item_1", bytes(1800)))
    session.realtime_event(AudioDone("resp_1", "item_1"))
    session.realtime_event(ResponseDone("resp_1", "completed"))
    out = drain_playout(session)
    assert len(out) == math.ceil(862.5 / 20)


def test_session_audio_done_without_audio_pushes_nothing(session: CallSession) -> None:
    session.realtime_event(AudioDone("resp_1", "item_1"))
    session.realtime_event(ResponseDone("resp_1", "completed"))
    assert session.playout.buffered_bytes == 0
    assert session.playout.padded_bytes == 0


# ------------------------------------------------------------ responses, transcripts, notes


def test_session_tracks_active_response(session: CallSession) -> None:
    assert session.active_response is None
    session.realtime_event(ResponseCreated("resp_1"))
    assert session.active_response == "resp_1"
    session.realtime_event(ResponseDone("resp_0", "completed"))  # an older one ending
    assert session.active_response == "resp_1"
    session.realtime_event(ResponseDone("resp_1", "completed"))
    assert session.active_response is None
    assert session.stats.responses == 1


@pytest.mark.parametrize(("status", "warned"), [("completed", 0), ("cancelled", 0), ("failed", 1)])
def test_session_response_done_warns_only_on_failure(
    session: CallSession, status: str, warned: int
) -> None:
    session.realtime_event(ResponseCreated("resp_1"))
    session.realtime_event(ResponseDone("resp_1", status))
    assert len(warnings(session.drain_notes())) == warned


def test_session_transcripts_become_notes_and_stats(session: CallSession) -> None:
    session.now = 1_700_000_000.25
    session.realtime_event(InputTranscriptCompleted("item_1", "  I'd like a table.  "))
    session.now = 1_700_000_001.5
    session.realtime_event(OutputTranscriptDone("resp_1", "item_2", "For how many people?"))
    session.realtime_event(InputTranscriptCompleted("item_3", "   "))  # nothing said
    assert session.stats.transcript == [
        TranscriptEntry(
            "caller", "I'd like a table.", datetime.fromtimestamp(1_700_000_000.25, UTC)
        ),
        TranscriptEntry(
            "assistant", "For how many people?", datetime.fromtimestamp(1_700_000_001.5, UTC)
        ),
    ]
    notes = session.drain_notes()
    assert [n.level for n in notes] == ["info", "info"]
    assert "I'd like a table." in notes[0].message
    assert "For how many people?" in notes[1].message


def test_session_failed_transcription_is_a_warning(session: CallSession) -> None:
    session.realtime_event(InputTranscriptFailed("item_1", "audio unintelligible"))
    assert any("audio unintelligible" in w for w in warnings(session.drain_notes()))


def test_session_unknown_realtime_event_warns_once(session: CallSession) -> None:
    for _ in range(5):
        session.realtime_event(OtherServerEvent("response.brand_new", known=False))
    session.realtime_event(OtherServerEvent("another.new", known=False))
    ws = warnings(session.drain_notes())
    assert len(ws) == 2
    assert "response.brand_new" in ws[0]
    assert "another.new" in ws[1]


def test_session_known_unhandled_realtime_event_is_silent(session: CallSession) -> None:
    session.realtime_event(OtherServerEvent("rate_limits.updated", known=True))
    assert session.drain_notes() == []


def test_session_realtime_error_gives_warning_with_code(session: CallSession) -> None:
    session.realtime_event(
        RealtimeError(
            type="invalid_request_error",
            code="invalid_value",
            message="Invalid value",
            param="session.audio",
            event_id="evt_1",
        )
    )
    ws = warnings(session.drain_notes())
    assert len(ws) == 1
    assert "invalid_value" in ws[0]
    assert "session.audio" in ws[0]
    assert session.stats.realtime_errors == 1


def test_session_dtmf_is_counted_and_noted(session: CallSession) -> None:
    session.caller_event(CallerDtmf("5", 260))
    notes = session.drain_notes()
    assert session.stats.dtmf == 1
    assert [n.level for n in notes] == ["info"]
    assert "5" in notes[0].message


def test_session_unknown_caller_event_warns_once(session: CallSession) -> None:
    for _ in range(3):
        session.caller_event(UnknownCallerMessage("websocket:media:update"))
    assert len(warnings(session.drain_notes())) == 1


def test_session_drain_notes_empties_the_queue(session: CallSession) -> None:
    session.caller_event(CallerDtmf("1"))
    assert session.has_notes
    assert session.has_output
    assert len(session.drain_notes()) == 1
    assert not session.has_notes
    assert session.drain_notes() == []


# ------------------------------------------------------------ holding replies (voicemail)


def test_hold_replies_cancels_the_reply_playing_and_clears_the_caller(
    session: CallSession,
) -> None:
    session.realtime_event(ResponseCreated("resp_1"))
    session.realtime_event(AudioDelta("resp_1", "item_1", bytes(4800)))  # 100 ms
    drain_playout(session)
    session.frames_sent(5)  # the caller is hearing it
    session.realtime_event(AudioDelta("resp_1", "item_1", bytes(4800)))
    session.drain_realtime()

    session.hold_replies()
    sent = [json.loads(m) for m in session.drain_realtime()]
    assert {"type": "response.cancel", "response_id": "resp_1"} in sent
    assert any(m["type"] == "conversation.item.truncate" for m in sent)
    assert session.drain_caller() == ['{"action":"clear"}']
    assert session.playout.buffered_bytes == 0
    # late audio of the cancelled reply is dropped
    session.realtime_event(AudioDelta("resp_1", "item_1", bytes(4800)))
    assert session.playout.buffered_bytes == 0


def test_held_replies_are_cancelled_as_they_start_until_say(session: CallSession) -> None:
    session.hold_replies()
    assert session.drain_realtime() == []  # nothing active: nothing to cancel
    session.realtime_event(ResponseCreated("resp_2"))  # the server VAD heard the machine
    assert [json.loads(m) for m in session.drain_realtime()] == [
        {"type": "response.cancel", "response_id": "resp_2"}
    ]
    session.realtime_event(AudioDelta("resp_2", "item_2", bytes(4800)))
    assert session.playout.buffered_bytes == 0
    session.prompt("Are you still there?")  # the call limits keep quiet too
    assert session.drain_realtime() == []

    session.say("Say: call us back.")  # held reply still active: sent when it is done
    assert session.drain_realtime() == []
    session.realtime_event(ResponseDone("resp_2", "cancelled"))
    assert [json.loads(m) for m in session.drain_realtime()] == [
        {"type": "response.create", "response": {"instructions": "Say: call us back."}}
    ]
    session.realtime_event(ResponseCreated("resp_3"))
    session.realtime_event(AudioDelta("resp_3", "item_3", bytes(4800)))
    assert session.drain_realtime() == []  # no longer held: it plays
    assert session.playout.buffered_bytes > 0

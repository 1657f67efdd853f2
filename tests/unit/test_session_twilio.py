"""The call session on the Twilio front door: mu-law passed through as ``audio/pcmu``, marks and
clear rendered for Media Streams, and the same barge-in logic as Vonage's."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest

from vonage_bridge.audio.formats import PCMU_8K
from vonage_bridge.audio.path import PassthroughPath, ResamplingPath
from vonage_bridge.bridge import MARK_FRAMES
from vonage_bridge.core.call_data import CallInfo
from vonage_bridge.core.events import (
    AudioDelta,
    AudioDone,
    CallerEvent,
    ResponseCreated,
    ResponseDone,
    SpeechStarted,
    StreamStarted,
)
from vonage_bridge.core.session import CallSession
from vonage_bridge.twilio.wire import TwilioCommands, parse_message

STREAM_SID = "MZ" + "0" * 32
MS_PCMU = 8  # bytes per ms of 8 kHz mu-law


NewSession = Callable[..., CallSession]  # the ``new_session`` fixture (conftest.py)
TwilioSession = Callable[..., CallSession]


@pytest.fixture
def twilio_session(new_session: NewSession) -> TwilioSession:
    """Factory: ``twilio_session(bridging=True)``, a session as ``twilio/routes.py`` makes it."""

    def make(*, bridging: bool = True) -> CallSession:
        return new_session(
            CallInfo("CA" + "1" * 32, caller="+15551230000"),
            bridging=bridging,
            path=PassthroughPath(),
            commands=TwilioCommands(STREAM_SID),
        )

    return make


def event(raw: str) -> CallerEvent:
    parsed = parse_message(raw)
    assert not isinstance(parsed, bytes)
    return parsed


def test_session_update_asks_for_pcmu_both_ways(twilio_session: TwilioSession) -> None:
    s = twilio_session(bridging=False)
    doc = json.loads(s.realtime_opened())
    audio = doc["session"]["audio"]
    assert audio["input"]["format"] == {"type": "audio/pcmu"}
    assert audio["output"]["format"] == {"type": "audio/pcmu"}


def test_caller_mulaw_goes_up_unchanged(twilio_session: TwilioSession) -> None:
    s = twilio_session()
    frame = bytes(range(160))
    out = s.caller_frame(frame)
    assert out is not None
    doc = json.loads(out)
    assert doc["type"] == "input_audio_buffer.append"
    assert base64.b64decode(doc["audio"]) == frame
    assert s.stats.ms_to_realtime == pytest.approx(20.0)


def test_an_odd_sized_mulaw_frame_is_used_not_dropped(twilio_session: TwilioSession) -> None:
    s = twilio_session()
    assert s.caller_frame(bytes(161)) is not None  # 1 byte per sample: any length is audio
    assert s.stats.bad_frames == 0


def test_audio_held_while_connecting_is_sent_in_order(twilio_session: TwilioSession) -> None:
    s = twilio_session(bridging=False)
    frames = [bytes([i]) * 160 for i in range(5)]
    for f in frames:
        assert s.caller_frame(f) is None
    s.realtime_opened()
    held = s.flush_held()
    assert [base64.b64decode(json.loads(m)["audio"]) for m in held] == [b"".join(frames)]
    assert s.stats.held_ms == pytest.approx(100.0)


def test_reply_audio_is_cut_into_160_byte_frames_padded_with_mulaw_silence(
    twilio_session: TwilioSession,
) -> None:
    s = twilio_session()
    s.realtime_event(ResponseCreated("resp_1"))
    s.realtime_event(AudioDelta("resp_1", "item_1", b"\x01" * 250))
    s.realtime_event(AudioDone("resp_1", "item_1"))
    frames = s.playout.take(0.0)
    assert [len(f) for f in frames] == [160, 160]
    assert frames[1] == b"\x01" * 90 + b"\xff" * 70
    assert s.stats.ms_from_realtime == pytest.approx(250 / MS_PCMU)


def test_marks_name_item_and_ms_and_parse_back(twilio_session: TwilioSession) -> None:
    s = twilio_session()
    s.realtime_event(ResponseCreated("resp_1"))
    s.realtime_event(AudioDelta("resp_1", "item_1", bytes(400 * MS_PCMU)))
    frames = s.playout.take(0.0)[:MARK_FRAMES]  # the pump's first chunk: 100 ms, 5 frames
    mark = s.frames_sent(len(frames))
    assert mark is not None
    doc = json.loads(mark)
    assert doc["event"] == "mark" and doc["streamSid"] == STREAM_SID
    echoed = json.dumps({"event": "mark", "streamSid": STREAM_SID, "mark": doc["mark"]})
    s.caller_event(event(echoed))
    assert s.heard_ms("item_1") == 100


def test_barge_in_sends_twilio_clear_and_truncates_at_the_marked_position(
    twilio_session: TwilioSession,
) -> None:
    s = twilio_session()
    s.realtime_event(ResponseCreated("resp_1"))
    s.realtime_event(AudioDelta("resp_1", "item_1", bytes(1000 * MS_PCMU)))
    mark = s.frames_sent(len(s.playout.take(0.0)[:MARK_FRAMES]))  # the pump's first chunk
    assert mark is not None
    s.caller_event(event(mark))  # Twilio echoes our mark once it has played
    s.drain_realtime()
    s.realtime_event(SpeechStarted("item_2", 5_000))
    assert [json.loads(c) for c in s.drain_caller()] == [
        {"event": "clear", "streamSid": STREAM_SID}
    ]
    truncate = [json.loads(m) for m in s.drain_realtime()]
    assert truncate == [
        {
            "type": "conversation.item.truncate",
            "item_id": "item_1",
            "content_index": 0,
            "audio_end_ms": 100,
        }
    ]
    assert s.playout.buffered_bytes == 0
    # Twilio sends pending marks back after a clear: they must not move the heard position.
    late = s.frames_sent(0)
    assert late is None
    s.playback_marked("item_1", 900)
    assert s.heard_ms("item_1") == 100
    # late deltas of the cut response are dropped
    s.realtime_event(AudioDelta("resp_1", "item_1", bytes(800)))
    s.realtime_event(ResponseDone("resp_1", "cancelled"))
    assert s.playout.buffered_bytes == 0
    assert s.stats.dropped_deltas == 1


def test_a_second_stream_start_mid_call_is_ignored_with_a_warning(
    twilio_session: TwilioSession,
) -> None:
    s = twilio_session()
    s.caller_event(StreamStarted("MZ2", "CA2", "AC2"))
    assert [n.level for n in s.drain_notes()] == ["warning"]
    assert s.caller_format == PCMU_8K


def test_invalid_caller_messages_count_as_bad_frames_and_warn_once(
    twilio_session: TwilioSession,
) -> None:
    s = twilio_session()
    s.caller_message_invalid("media payload is not base64")
    s.caller_message_invalid("media payload is not base64")
    assert s.stats.bad_frames == 2
    assert len(s.drain_notes()) == 1


def test_passthrough_path_holds_nothing() -> None:
    path = PassthroughPath()
    assert path.caller == path.realtime == PCMU_8K
    assert path.up(b"\x00\x7f") == b"\x00\x7f"
    assert path.down(b"\x10") == b"\x10"
    assert path.drain_down() == b""


def test_resampling_path_reset_drops_the_held_tail() -> None:
    kept, reset = ResamplingPath(16_000), ResamplingPath(16_000)
    for path in (kept, reset):
        path.down(b"\x10\x00" * 2400)  # 100 ms at 24 kHz: LQ holds some of it back
    reset.reset_down()
    assert kept.drain_down() != b""  # without a reset the held tail comes out
    assert reset.drain_down() == b""

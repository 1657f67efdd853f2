"""Barge-in on the pure CallSession: notify markers, heard accounting, truncate, clear."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from vonage_bridge.bridge import MARK_FRAMES
from vonage_bridge.core.events import (
    AudioDelta,
    AudioDone,
    PlaybackMarked,
    RealtimeError,
    ResponseCreated,
    ResponseDone,
    SpeechStarted,
    TranscriptEntry,
)
from vonage_bridge.core.session import CallSession

MS_24K = 48  # bytes per ms of PCM16 at 24 kHz
Sent = Callable[[CallSession], list[dict[str, Any]]]  # the ``sent`` fixture (conftest.py)


def reply(session: CallSession, ms: int, *, item: str = "item_1", resp: str = "resp_1") -> None:
    session.realtime_event(ResponseCreated(resp))
    for _ in range(ms // 100):
        session.realtime_event(AudioDelta(resp, item, bytes(100 * MS_24K)))


def play(session: CallSession, n_frames: int, now: float) -> list[dict[str, Any]]:
    """Take frames from the playout in pacer batches; return the notify payloads."""
    markers: list[dict[str, Any]] = []
    taken = 0
    t = now
    while taken < n_frames:
        frames = session.playout.take(t)[: n_frames - taken]
        # as bridge.py's playout pump: a marker's chance after every MARK_FRAMES of a batch
        for i in range(0, len(frames), MARK_FRAMES):
            chunk = frames[i : i + MARK_FRAMES]
            marker = session.frames_sent(len(chunk))
            if marker is not None:
                doc = json.loads(marker)
                assert doc["action"] == "notify"
                markers.append(doc["payload"])
        taken += len(frames)
        t += 0.04
    return markers


def test_markers_go_out_at_most_every_100_ms_of_audio(session: CallSession) -> None:
    reply(session, 1000)
    markers = play(session, 20, 0.0)  # 400 ms
    assert [m["item"] for m in markers] == ["item_1"] * len(markers)
    assert 3 <= len(markers) <= 4
    ms = [m["ms"] for m in markers]
    assert ms == sorted(ms) and ms[-1] <= 400
    assert all(b - a >= 100 for a, b in zip(ms, ms[1:], strict=False))


def test_barge_in_truncates_at_the_acknowledged_ms_and_clears(
    session: CallSession, sent: Sent
) -> None:
    reply(session, 2000)
    markers = play(session, 30, 0.0)  # 600 ms handed over
    heard = markers[1]  # Vonage has played up to the second marker only
    session.caller_event(PlaybackMarked(heard["item"], heard["ms"]))
    session.realtime_event(SpeechStarted("user_2", 5000))
    events = sent(session)
    assert events == [
        {
            "type": "conversation.item.truncate",
            "item_id": "item_1",
            "content_index": 0,
            "audio_end_ms": heard["ms"],
        }
    ]
    # interrupt_response is on: the server cancels; we never race it with response.cancel
    assert not any(e["type"] == "response.cancel" for e in events)
    assert session.drain_caller() == ['{"action":"clear"}']
    assert session.playout.buffered_bytes == 0
    assert session.stats.barge_ins == 1


def test_barge_in_is_a_transcript_entry_and_reaches_the_listener(session: CallSession) -> None:
    seen: list[TranscriptEntry] = []
    session.on_transcript = seen.append
    reply(session, 2000)
    markers = play(session, 30, 0.0)
    session.caller_event(PlaybackMarked(markers[1]["item"], markers[1]["ms"]))
    session.realtime_event(SpeechStarted("user_2", 5000))
    (entry,) = [e for e in session.stats.transcript if e.role == "barge_in"]
    assert entry.text == f"the caller spoke over the reply (heard {markers[1]['ms']} ms)"
    assert seen == session.stats.transcript  # every entry, as it was added


@pytest.mark.parametrize("lookahead_ms", ["100", "240", "300", "600"])
def test_deeper_lookahead_keeps_markers_and_truncate_at_100_ms_grain(
    new_session: Callable[..., CallSession], sent: Sent, lookahead_ms: str
) -> None:
    """How far ahead the pump sends does not change what the caller is known to have heard:
    a marker every 100-120 ms of audio however large the batch (at 100 ms, as before: the
    2-frame refills put them 120 ms apart), and the truncate at the last acknowledged one."""
    session = new_session(env={"PLAYOUT_LOOKAHEAD_MS": lookahead_ms})
    reply(session, 2000)
    markers = play(session, 30, 0.0)  # 600 ms handed over
    ms = [m["ms"] for m in markers]
    assert ms[0] == 100
    assert all(100 <= b - a <= 120 for a, b in zip(ms, ms[1:], strict=False)), ms
    assert ms[-1] >= 600 - 120
    heard = ms[1]
    session.caller_event(PlaybackMarked("item_1", heard))
    session.realtime_event(SpeechStarted("user_2", 5000))
    (event,) = sent(session)
    assert event["type"] == "conversation.item.truncate"
    assert event["audio_end_ms"] == heard


def test_barge_in_before_any_acknowledgement_truncates_at_zero(
    session: CallSession, sent: Sent
) -> None:
    reply(session, 1000)
    play(session, 5, 0.0)
    session.realtime_event(SpeechStarted("user_2", 5000))
    (event,) = sent(session)
    assert event["audio_end_ms"] == 0


def test_heard_is_capped_by_the_audio_received(session: CallSession, sent: Sent) -> None:
    reply(session, 300)
    play(session, 10, 0.0)
    session.caller_event(PlaybackMarked("item_1", 900))  # bogus echo
    assert session.heard_ms("item_1") == 300
    session.realtime_event(SpeechStarted("user_2", 5000))
    (event,) = sent(session)
    assert event["audio_end_ms"] <= 300


def test_late_deltas_of_the_truncated_item_are_dropped(session: CallSession, sent: Sent) -> None:
    reply(session, 1000)
    play(session, 10, 0.0)
    session.realtime_event(SpeechStarted("user_2", 5000))
    sent(session)
    session.realtime_event(AudioDelta("resp_1", "item_1", bytes(100 * MS_24K)))
    session.realtime_event(AudioDone("resp_1", "item_1"))
    session.realtime_event(ResponseDone("resp_1", "cancelled"))
    assert session.playout.buffered_bytes == 0
    assert session.stats.dropped_deltas == 1
    # the next response plays normally
    reply(session, 200, item="item_2", resp="resp_2")
    assert session.playout.buffered_bytes > 0


def test_speech_while_nothing_is_playing_is_not_a_barge_in(
    session: CallSession, sent: Sent
) -> None:
    reply(session, 200)
    session.realtime_event(AudioDone("resp_1", "item_1"))
    session.realtime_event(ResponseDone("resp_1", "completed"))
    markers = play(session, 10, 0.0)
    session.caller_event(PlaybackMarked(markers[-1]["item"], markers[-1]["ms"]))  # everything heard
    session.realtime_event(SpeechStarted("user_2", 5000))
    assert sent(session) == []
    assert session.drain_caller() == []
    assert session.stats.barge_ins == 0


def test_last_marker_covers_the_end_of_a_reply(session: CallSession) -> None:
    reply(session, 300)
    session.realtime_event(AudioDone("resp_1", "item_1"))
    markers = play(session, 15, 0.0)
    assert markers[-1]["ms"] >= 300


def test_markers_from_before_a_barge_in_are_not_counted(session: CallSession) -> None:
    reply(session, 1000)
    epoch = session.playback_epoch
    frames = session.playout.take(0.0)
    session.realtime_event(SpeechStarted("user_2", 5000))
    assert session.frames_sent(len(frames), epoch) is None


def test_cancel_not_active_is_not_a_warning(session: CallSession) -> None:
    session.realtime_event(
        RealtimeError("invalid_request_error", "response_cancel_not_active", "no active")
    )
    assert [n.level for n in session.drain_notes()] == ["debug"]
    assert session.stats.realtime_errors == 0


def test_audio_of_a_response_interrupted_before_any_audio_is_dropped(
    session: CallSession, sent: Sent
) -> None:
    session.realtime_event(ResponseCreated("resp_1"))
    session.realtime_event(SpeechStarted("user_2", 5000))  # the server cancels resp_1
    assert sent(session) == [] and session.drain_caller() == []
    session.realtime_event(AudioDelta("resp_1", "item_1", bytes(100 * MS_24K)))
    assert session.playout.buffered_bytes == 0
    session.realtime_event(ResponseDone("resp_1", "cancelled"))
    reply(session, 200, item="item_2", resp="resp_2")
    assert session.playout.buffered_bytes > 0

"""Playout toward the caller: exact frames, bounded look-ahead, underrun accounting.

Time is a float passed in; nothing here sleeps.
"""

from __future__ import annotations

import pytest

from vonage_bridge.audio.playout import FRAME_S, Playout, default_refill_ms

FB = 640  # one 20 ms frame at 16 kHz


def audio(n_bytes: int, fill: int = 0x11) -> bytes:
    return bytes([fill]) * n_bytes


def run_until_empty(p: Playout, start: float, limit: int = 10_000) -> tuple[list[bytes], float]:
    """Drive ``p`` as the shell does: take, then sleep until ``wakeup_at``."""
    t = start
    sent: list[bytes] = []
    for _ in range(limit):
        sent += p.take(t)
        wake = p.wakeup_at(t)
        if wake is None:
            break
        t = max(wake, t)
    return sent, t


def test_playout_frames_are_exactly_frame_bytes() -> None:
    p = Playout(FB, lookahead_ms=100)
    p.push(audio(FB * 7 + 123))
    p.end_of_audio()
    sent, _ = run_until_empty(p, 0.0)
    assert len(sent) == 8
    assert all(len(f) == FB for f in sent)
    assert p.frames_out == 8
    assert p.buffered_bytes == 0


def test_playout_frames_keep_audio_in_order() -> None:
    p = Playout(FB, lookahead_ms=100)
    data = bytes(i % 251 for i in range(FB * 12))
    p.push(data[: FB * 5 + 10])
    p.push(data[FB * 5 + 10 :])
    sent, _ = run_until_empty(p, 0.0)
    assert b"".join(sent) == data


@pytest.mark.parametrize(("lookahead_ms", "frames"), [(40, 2), (100, 5), (300, 15)])
def test_playout_first_take_sends_lookahead_worth_of_frames(lookahead_ms: int, frames: int) -> None:
    p = Playout(FB, lookahead_ms=lookahead_ms)
    p.push(audio(FB * 50))
    assert len(p.take(0.0)) == frames
    assert p.take(0.0) == []  # nothing more until time passes
    assert p.ahead_s(0.0) == pytest.approx(lookahead_ms / 1000)


def test_playout_take_sends_every_frame_that_ends_within_the_lookahead() -> None:
    """Polled off the 20 ms grid, frames sent by time t = floor((t + lookahead) / 20 ms)."""
    p = Playout(FB, lookahead_ms=100)
    p.push(audio(FB * 50))
    sent = len(p.take(0.0))
    for t, total in [(0.011, 5), (0.021, 6), (0.061, 8), (0.171, 13)]:
        sent += len(p.take(t))
        assert sent == total, t
    # 0.061 -> 0.171 s without a poll is longer than the 100 ms look-ahead: a real gap.
    assert p.underruns == 1


def test_playout_never_more_than_lookahead_frames_ahead_at_arbitrary_times() -> None:
    """Polled off the frame grid, the audio sent and not yet heard never exceeds lookahead."""
    p = Playout(FB, lookahead_ms=100)
    p.push(audio(FB * 100))
    t = 0.0
    max_ahead = 0.0
    while p.buffered_bytes:
        p.take(t)
        max_ahead = max(max_ahead, p.ahead_s(t))
        t += 0.00731
    assert 0.1 - FRAME_S < max_ahead <= 0.1 + 1e-6


@pytest.mark.parametrize("start", [0.0, 0.1, 77.77])
def test_playout_driven_by_wakeup_at_never_exceeds_lookahead(start: float) -> None:
    p = Playout(FB, lookahead_ms=100)
    p.push(audio(FB * 300))
    t = start
    worst = 0.0
    while p.buffered_bytes:
        p.take(t)
        worst = max(worst, p.ahead_s(t))
        wake = p.wakeup_at(t)
        assert wake is not None or p.buffered_bytes < FB
        if wake is None:
            break
        t = max(wake, t)
    assert worst <= 0.100 + 1e-9


@pytest.mark.parametrize(
    ("now", "lookahead_ms", "frames"), [(0.1, 100, 5), (5.0, 100, 5), (0.0, 200, 10)]
)
def test_playout_first_take_at_any_time_sends_lookahead_worth_of_frames(
    now: float, lookahead_ms: int, frames: int
) -> None:
    p = Playout(FB, lookahead_ms=lookahead_ms)
    p.push(audio(FB * 50))
    assert len(p.take(now)) == frames


def test_playout_end_of_audio_pads_tail_with_zeros_to_whole_frame() -> None:
    p = Playout(FB, lookahead_ms=100)
    p.push(audio(FB + 100, fill=0x55))
    p.end_of_audio()
    assert p.padded_bytes == FB - 100
    assert p.buffered_bytes == 2 * FB
    frames = p.take(0.0)
    assert len(frames) == 2
    assert frames[1] == audio(100, fill=0x55) + bytes(FB - 100)


def test_playout_end_of_audio_on_whole_frames_pads_nothing() -> None:
    p = Playout(FB, lookahead_ms=100)
    p.push(audio(FB * 3))
    p.end_of_audio()
    assert p.padded_bytes == 0
    assert p.buffered_bytes == FB * 3


def test_playout_padded_bytes_accumulate_over_stretches() -> None:
    p = Playout(FB, lookahead_ms=100)
    p.push(audio(10))
    p.end_of_audio()
    p.take(0.0)
    p.push(audio(FB + 40))
    p.end_of_audio()
    assert p.padded_bytes == (FB - 10) + (FB - 40)


@pytest.mark.parametrize("n", [0, 1, FB - 1])
def test_playout_wakeup_at_is_none_with_less_than_one_frame(n: int) -> None:
    p = Playout(FB, lookahead_ms=100)
    p.push(audio(n))
    assert p.wakeup_at(5.0) is None
    assert p.take(5.0) == []


def test_playout_wakeup_at_is_now_when_frames_can_go_out() -> None:
    p = Playout(FB, lookahead_ms=100)
    p.push(audio(FB))
    assert p.wakeup_at(5.0) == 5.0


def test_playout_wakeup_at_is_when_lookahead_falls_by_refill() -> None:
    p = Playout(FB, lookahead_ms=100, refill_ms=40)
    p.push(audio(FB * 20))
    p.take(0.0)  # 100 ms ahead: plays until 0.1
    wake = p.wakeup_at(0.0)
    assert wake == pytest.approx(0.1 - 0.060)
    assert wake is not None
    assert len(p.take(wake)) == 2  # refills 40 ms


@pytest.mark.parametrize(
    ("lookahead_ms", "refill_ms"), [(40, 40), (100, 40), (200, 100), (240, 120), (300, 140)]
)
def test_default_refill_is_half_the_lookahead_in_whole_frames(
    lookahead_ms: int, refill_ms: int
) -> None:
    assert default_refill_ms(lookahead_ms) == refill_ms


def test_playout_default_refill_sends_batches_of_half_the_lookahead() -> None:
    p = Playout(FB, lookahead_ms=240)
    p.push(audio(FB * 40))
    assert len(p.take(0.0)) == 12  # 240 ms ahead: plays until 0.24
    wake = p.wakeup_at(0.0)
    assert wake == pytest.approx(0.24 - 0.120)  # 120 ms still buffered at the caller
    assert wake is not None
    assert len(p.take(wake)) == 6  # refills 120 ms in one batch


def test_playout_wakeup_at_tracks_play_position() -> None:
    p = Playout(FB, lookahead_ms=200, refill_ms=60)
    p.push(audio(FB * 30))
    p.take(3.0)
    wake = p.wakeup_at(3.0)
    assert wake == pytest.approx(3.0 + p.ahead_s(3.0) - 0.140)


def test_playout_underrun_counted_when_stretch_audio_arrives_late() -> None:
    p = Playout(FB, lookahead_ms=100)
    p.push(audio(FB * 2))
    assert len(p.take(0.0)) == 2  # plays until 0.04
    p.push(audio(FB))  # more of the same stretch, but after the caller ran dry
    assert len(p.take(0.1)) == 1
    assert p.underruns == 1


def test_playout_no_underrun_when_audio_arrives_in_time() -> None:
    p = Playout(FB, lookahead_ms=100)
    p.push(audio(FB * 2))
    p.take(0.0)
    p.push(audio(FB))
    p.take(0.03)
    assert p.underruns == 0


def test_playout_new_stretch_after_end_of_audio_is_not_an_underrun() -> None:
    p = Playout(FB, lookahead_ms=100)
    p.push(audio(FB * 2 + 5))
    p.end_of_audio()
    assert len(p.take(0.0)) == 3
    p.push(audio(FB * 2))  # the next response, long after the last one ended
    assert len(p.take(10.0)) == 2
    assert p.underruns == 0


def test_playout_end_of_audio_after_buffer_emptied_ends_the_stretch() -> None:
    p = Playout(FB, lookahead_ms=100)
    p.push(audio(FB * 2))
    p.take(0.0)  # everything went out before the stretch was known to be complete
    p.end_of_audio()
    assert p.padded_bytes == 0
    p.push(audio(FB))
    assert len(p.take(10.0)) == 1
    assert p.underruns == 0


def test_playout_underrun_counted_again_within_a_later_stretch() -> None:
    p = Playout(FB, lookahead_ms=100)
    p.push(audio(FB))
    p.end_of_audio()
    p.take(0.0)
    p.push(audio(FB))  # new stretch: first frame is fine
    p.take(5.0)
    p.push(audio(FB))  # same stretch, late
    p.take(6.0)
    assert p.underruns == 1


def test_playout_clear_drops_buffered_audio_and_returns_byte_count() -> None:
    p = Playout(FB, lookahead_ms=100)
    p.push(audio(FB * 10 + 7))
    p.take(0.0)  # 5 frames out
    assert p.clear() == FB * 5 + 7
    assert p.buffered_bytes == 0
    assert p.take(1.0) == []
    assert p.clear() == 0


def test_playout_audio_after_clear_is_not_an_underrun() -> None:
    p = Playout(FB, lookahead_ms=100)
    p.push(audio(FB * 10))
    p.take(0.0)
    p.clear()  # barge-in
    p.push(audio(FB))
    p.take(3.0)
    assert p.underruns == 0


def test_playout_rejects_lookahead_below_two_frames() -> None:
    with pytest.raises(ValueError):
        Playout(FB, lookahead_ms=39)


def test_playout_clear_lets_the_next_audio_start_at_once() -> None:
    """After a barge-in clear, Vonage's queue is empty too: no stale look-ahead remains."""
    p = Playout(FB, lookahead_ms=100)
    p.push(audio(FB * 20))
    assert len(p.take(0.0)) == 5  # caller's queue now holds 100 ms
    p.clear()
    assert p.ahead_s(0.0) == 0.0
    p.push(audio(FB * 20))
    assert len(p.take(0.0)) == 5  # a full window again, not zero

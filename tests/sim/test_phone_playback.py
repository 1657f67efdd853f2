"""The fake phone's loudspeaker (``sim/phone.py``), driven slot by slot with times passed in."""

from __future__ import annotations

import asyncio
import os

from vonage_bridge.sim.phone import PhonePlayback

SECOND = float(os.environ.get("VB_TEST_TIMEOUT_FACTOR", "1"))
SLOT = 4  # bytes per 20 ms slot, small so the schedule reads easily


def speaker() -> tuple[PhonePlayback[str], list[str]]:
    echoed: list[str] = []

    async def echo(name: str) -> None:
        echoed.append(name)

    return PhonePlayback(SLOT, echo), echoed


async def test_slots_play_in_order_and_log_their_start() -> None:
    phone, _ = speaker()
    phone.receive(0.0, b"abcdefghij")
    assert [await phone.play_slot(t) for t in (0.0, 0.02, 0.04, 0.06)] == [True, True, True, False]
    assert bytes(phone.heard) == b"abcdefghij"
    assert phone.play_log == [(0.0, 4), (0.02, 8), (0.04, 10)]
    assert phone.recv_log == [(0.0, 10)]


async def test_mark_is_echoed_on_the_slot_after_the_audio_before_it_played() -> None:
    phone, echoed = speaker()
    phone.receive(0.0, b"12345678")
    phone.mark("m1")
    phone.receive(0.0, b"9999")
    await phone.play_slot(0.0)
    await phone.play_slot(0.02)  # plays the last bytes queued before m1
    assert echoed == []
    assert phone.pending_marks == ["m1"]
    await phone.play_slot(0.04)
    assert echoed == ["m1"]
    assert phone.pending_marks == []


async def test_clear_drops_audio_and_hands_back_the_waiting_marks() -> None:
    phone, echoed = speaker()
    phone.receive(0.0, b"x" * 12)
    phone.mark("a")
    phone.mark("b")
    await phone.play_slot(0.0)
    assert phone.clear() == ["a", "b"]
    assert phone.cleared_bytes == 8
    assert not await phone.play_slot(0.02)
    assert echoed == []
    # audio after the clear plays at once, and a mark behind it waits for it
    phone.receive(0.03, b"yyyy")
    phone.mark("c")
    await phone.play_slot(0.04)
    assert echoed == []
    await phone.play_slot(0.06)
    assert echoed == ["c"]
    assert bytes(phone.heard) == b"xxxxyyyy"


async def test_gap_inside_a_burst_is_an_underrun_but_a_late_burst_or_a_clear_is_not() -> None:
    phone, _ = speaker()
    phone.receive(0.0, b"aaaa")
    await phone.play_slot(0.0)
    await phone.play_slot(0.02)  # ran dry at 0.02
    phone.receive(0.1, b"bbbb")  # 80 ms later: a gap in the burst
    assert phone.underruns == 1
    await phone.play_slot(0.1)
    await phone.play_slot(0.12)  # dry again
    phone.receive(0.5, b"cccc")  # 380 ms later: a new burst
    assert phone.underruns == 1
    await phone.play_slot(0.5)
    phone.clear()
    await phone.play_slot(0.52)
    phone.receive(0.53, b"dddd")  # dry only because of the clear
    assert phone.underruns == 1


async def test_unplayable_audio_is_counted_but_never_heard() -> None:
    phone, _ = speaker()
    phone.receive(0.0, b"bad", playable=False)
    phone.receive(0.01, b"good")
    await phone.play_slot(0.02)
    assert bytes(phone.heard) == b"good"
    assert phone.bytes_received == 7
    assert phone.first_audio_at == 0.0


async def test_idle_clock_wakes_for_a_mark_and_for_audio() -> None:
    """Without ``started_at`` the clock sleeps until something is queued (Vonage's player)."""
    phone, echoed = speaker()
    clock = asyncio.create_task(phone.run())
    try:
        phone.mark("idle")  # nothing queued before it: echoed at once
        phone.receive(asyncio.get_running_loop().time(), b"zzzzzzzz")
        async with asyncio.timeout(5 * SECOND):
            while len(phone.heard) < 8:
                phone.changed.clear()
                await phone.changed.wait()
        assert echoed == ["idle"]
        assert bytes(phone.heard) == b"zzzzzzzz"
        # two slots, 20 ms apart on the restarted clock
        assert round(phone.play_log[1][0] - phone.play_log[0][0], 6) == 0.02
    finally:
        clock.cancel()
        await asyncio.gather(clock, return_exceptions=True)

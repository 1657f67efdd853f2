"""PlaybackLedger, the barge-in bookkeeping: each row is a schedule of what happened on a call
(reply audio received, frames sent to the caller, markers echoed, the caller speaking) and what
the ledger must make of it (markers to send, truncates, what was heard).

Audio is 8 kHz mu-law (8 bytes per ms, 160 per 20 ms frame), so bytes and ms convert exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from vonage_bridge.core.ledger import ITEMS_KEPT, Marker, PlaybackLedger, Truncate

BYTES_PER_MS = 8


@dataclass(frozen=True)
class Recv:
    """A delta of ``item``: ``ms`` ms received, ``queued_ms`` of it into the playout now
    (default all of it; a resampler may hold some back)."""

    item: str
    ms: int
    queued_ms: int | None = None


@dataclass(frozen=True)
class Tail:
    """End of a stretch of audio: ``ms`` more (resampler tail + padding) into the playout."""

    ms: int


@dataclass(frozen=True)
class Send:
    """The pacer took ``ms`` ms of frames from the playout (``epoch``: when it took them)."""

    ms: int
    epoch: int | None = None


@dataclass(frozen=True)
class Mark:
    """The front door echoed a marker: ``ms`` ms of ``item`` played."""

    item: str
    ms: int


@dataclass(frozen=True)
class Speech:
    """``speech_started``: the caller speaks."""


Step = Recv | Tail | Send | Mark | Speech


@dataclass
class Outcome:
    ledger: PlaybackLedger
    markers: list[Marker]
    truncates: list[Truncate] | None  # from the last Speech; None: it was not a barge-in


def run(schedule: list[Step]) -> Outcome:
    """Play ``schedule`` against a ledger, with a playout reduced to its byte count."""
    ledger = PlaybackLedger(BYTES_PER_MS)
    queued = 0  # bytes in the playout
    markers: list[Marker] = []
    truncates: list[Truncate] | None = None
    for step in schedule:
        match step:
            case Recv(item, ms, queued_ms):
                n = (ms if queued_ms is None else queued_ms) * BYTES_PER_MS
                queued += n
                ledger.received(item, float(ms), n)
            case Tail(ms):
                queued += ms * BYTES_PER_MS
                ledger.tail_queued(ms * BYTES_PER_MS)
            case Send(ms, epoch):
                n = ms * BYTES_PER_MS
                if epoch is None or epoch == ledger.epoch:
                    assert n <= queued, "the schedule sends more than was queued"
                    queued -= n  # (stale frames left the playout before it was cleared)
                marker = ledger.taken(n, queued == 0, epoch)
                if marker is not None:
                    markers.append(marker)
            case Mark(item, ms):
                ledger.marked(item, ms)
            case Speech():
                cut = ledger.barge_in()
                truncates = None if cut is None else cut.truncates
                if cut is not None:
                    queued = 0  # the session clears the playout
    return Outcome(ledger, markers, truncates)


@pytest.mark.parametrize(
    ("schedule", "markers", "truncates", "heard"),
    [
        pytest.param(
            [Recv("a", 400)] + [Send(40)] * 10,
            [("a", 120), ("a", 240), ("a", 360), ("a", 400)],
            None,
            {"a": 0},
            id="a marker once 100 ms went out, and at the end of the audio",
        ),
        pytest.param(
            [Recv("a", 1000), Send(200), Mark("a", 100), Speech()],
            [("a", 200)],
            [("a", 100)],
            {"a": 100},
            id="barge-in truncates at the acknowledged ms, not the ms sent",
        ),
        pytest.param(
            [Recv("a", 1000), Send(100), Speech()],
            [("a", 100)],
            [("a", 0)],
            {"a": 0},
            id="barge-in before any echo truncates at 0",
        ),
        pytest.param(
            [Recv("a", 1000), Send(100), Mark("a", 100), Mark("a", 60), Speech()],
            [("a", 100)],
            [("a", 100)],
            {"a": 100},
            id="a late, older echo does not move heard back",
        ),
        pytest.param(
            [Recv("a", 300), Send(100), Mark("a", 900), Speech()],
            [("a", 100)],
            [("a", 300)],
            {"a": 300},
            id="heard is capped by the audio received",
        ),
        pytest.param(
            [Recv("a", 200), Send(200), Mark("a", 200), Speech()],
            [("a", 200)],
            None,
            {"a": 200},
            id="everything heard: speech is not a barge-in",
        ),
        pytest.param(
            [Speech()],
            [],
            None,
            {},
            id="no reply at all: speech is not a barge-in",
        ),
        pytest.param(
            [Recv("a", 1000), Send(200), Mark("a", 100), Speech(), Mark("a", 200)],
            [("a", 200)],
            [("a", 100)],
            {"a": 100},
            id="echoes of a cut item (Twilio after clear) are ignored",
        ),
        pytest.param(
            [Recv("a", 200), Recv("b", 300), Send(100), Mark("a", 100), Speech()],
            [("a", 100)],
            [("a", 100), ("b", 0)],
            {"a": 100, "b": 0},
            id="items queued behind the heard one are truncated at 0",
        ),
        pytest.param(
            [Recv("a", 60), Recv("b", 200), Send(100)],
            [("b", 40)],
            None,
            {},
            id="a batch across two items: the marker names the last, with its own ms",
        ),
        pytest.param(
            [Recv("a", 90, queued_ms=80), Tail(20), Send(100), Mark("a", 100), Speech()],
            [("a", 100)],
            None,
            {"a": 90},
            id="the tail and padding belong to the last item; heard capped by received",
        ),
        pytest.param(
            [Recv("a", 1000), Send(100), Speech(), Send(100, epoch=0)],
            [("a", 100)],
            [("a", 0)],
            {"a": 0},
            id="frames taken before a barge-in are not counted",
        ),
        pytest.param(
            [Recv("a", 500), Send(60), Speech(), Recv("b", 200), Send(40), Send(160)],
            [("b", 200)],
            [("a", 0)],
            {"a": 0, "b": 0},
            id="after a barge-in the cadence restarts with the next item",
        ),
        pytest.param(
            [Recv("a", 200), Send(200), Mark("a", 100), Recv("b", 200), Speech()],
            [("a", 200)],
            [("a", 100), ("b", 0)],
            {"a": 100},
            id="a sent item not fully heard is still playing when the next one is queued",
        ),
        pytest.param(
            [Recv("a", 200), Send(200), Mark("a", 200), Recv("b", 200), Send(40), Speech()],
            [("a", 200)],
            [("b", 0)],
            {"a": 200, "b": 0},
            id="an item fully heard is not truncated again",
        ),
    ],
)
def test_ledger_schedule(
    schedule: list[Step],
    markers: list[Marker],
    truncates: list[tuple[str, int]] | None,
    heard: dict[str, int],
) -> None:
    out = run(schedule)
    assert out.markers == markers
    assert out.truncates == truncates
    assert {item: out.ledger.heard_ms(item) for item in heard} == heard


def test_ledger_barge_in_names_the_heard_item_and_bumps_the_epoch() -> None:
    out = run([Recv("a", 200), Recv("b", 200), Send(100)])
    ledger = out.ledger
    assert ledger.epoch == 0
    cut = ledger.barge_in()
    assert cut is not None and cut.item_id == "a"
    assert ledger.epoch == 1
    assert ledger.is_cut("a") and ledger.is_cut("b") and not ledger.is_cut("c")
    assert ledger.barge_in() is None  # nothing left playing: no second barge-in
    assert ledger.epoch == 1


def test_ledger_keeps_only_recent_items() -> None:
    ledger = PlaybackLedger(BYTES_PER_MS)
    items = [f"item_{i}" for i in range(ITEMS_KEPT + 1)]
    for item in items:
        ledger.received(item, 100.0, 100 * BYTES_PER_MS)
        ledger.taken(100 * BYTES_PER_MS, True)
        ledger.marked(item, 100)
    assert ledger.heard_ms(items[0]) == 0  # forgotten
    assert [ledger.heard_ms(i) for i in items[1:]] == [100] * ITEMS_KEPT
    ledger.marked(items[0], 100)  # an echo for a forgotten item is ignored
    assert ledger.heard_ms(items[0]) == 0


def test_ledger_counts_sent_ms_at_the_caller_rate() -> None:
    """L16 at 16 kHz: 32 bytes per ms, 640 per frame."""
    ledger = PlaybackLedger(32.0)
    ledger.received("a", 100.0, 3200)
    assert ledger.taken(5 * 640, True) == ("a", 100)

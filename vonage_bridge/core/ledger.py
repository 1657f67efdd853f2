"""``PlaybackLedger``: what the caller has heard of each assistant reply, for barge-in. Pure.

When the caller speaks over the assistant, the bridge must tell the Realtime API how much of
the reply was really heard (``conversation.item.truncate`` with ``audio_end_ms``), so that the
model's idea of the conversation matches the caller's. Three counts per assistant item give
that position, each in ms of audio:

- **received**: reply audio that came from Realtime for the item;
- **sent**: audio handed to the caller (frames taken from the playout by the pacer);
- **heard**: audio the front door acknowledged as played: it echoes each playback marker
  (Vonage ``notify``, Twilio ``mark``) once everything sent before it has played.

Heard is a lower bound (markers go out at most every :data:`NOTIFY_EVERY_MS` of audio) and is
capped by received: a truncate past the item's audio is refused by the API. The ledger also
keeps the queue of segments in the playout (which item each queued byte belongs to, in caller
format bytes), the items cut by a barge-in (their late audio and markers are ignored), and the
playback epoch (bumped by each barge-in, so the pacer can tell that frames it took before the
barge-in were cleared).

Transitions (one method each; ``item`` is an assistant ``item_id``)::

    input                      state change                                   returns
    received(item, ms, queued) received[item] += ms; ``queued`` bytes join    -
                               the queue for item; a new item forgets the
                               oldest beyond ITEMS_KEPT
    tail_queued(n)             n bytes join the queue for the last item       -
    taken(n, empty, epoch)     stale epoch (a barge-in cleared the frames):   None
                               nothing
                               else n bytes leave the head of the queue and   (item, ms)
                               add to sent[their item]; once NOTIFY_EVERY_MS  or None
                               went out since the last marker, or the
                               playout is empty: a marker for the last item
                               taken, with its sent ms
    marked(item, ms)           heard[item] = max(heard[item], ms), unless     -
                               item is unknown or was cut
    barge_in()                 nothing playing: nothing                       None
                               else the playing item and every queued item    BargeIn
                               are cut; queue, cadence and last items
                               cleared; epoch += 1
    heard_ms(item)             (a query)                                      min(heard, received)
    is_cut(item)               (a query)                                      item was cut

The *playing* item is the item of the last frame taken while some of what was sent of it is
not acknowledged yet, else the item at the head of the queue.

Time is never read: the ledger counts audio, and the caller passes in what happened.

Sources: https://developer.vonage.com/en/voice/voice-api/concepts/websockets (``notify``,
``clear``); https://www.twilio.com/docs/voice/media-streams/websocket-messages (``mark``,
``clear``); https://platform.openai.com/docs/api-reference/realtime-client-events
(``conversation.item.truncate``: ``audio_end_ms`` at most the item's audio duration).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import NamedTuple, TypeAlias

NOTIFY_EVERY_MS = 100
"""A playback marker (Vonage ``notify``, Twilio ``mark``) follows a batch of frames once this much
reply audio went out since the last one, and at the end of each stretch of audio: the
acknowledgements say what the caller has heard, to within this much (a lower bound)."""
ITEMS_KEPT = 8
"""Per-item playback accounting kept for this many recent assistant items."""


Marker: TypeAlias = tuple[str, int]
"""A playback marker to send after a batch of frames, ``(item_id, ms)``: ``ms`` ms of assistant
item ``item_id`` have been handed to the caller, up to and including that batch. A plain tuple,
not a ``NamedTuple``: one is built every 100 ms of reply audio on the pacer's path, and a
``NamedTuple`` costs some 0.3 µs more to build."""


class Truncate(NamedTuple):
    """``conversation.item.truncate`` to send: the caller heard ``audio_end_ms`` ms of
    assistant item ``item_id`` (0 for an item queued but not reached)."""

    item_id: str
    audio_end_ms: int


@dataclass(frozen=True, slots=True)
class BargeIn:
    """What a barge-in cut.

    Attributes:
        item_id: the item the caller was hearing (or about to hear).
        truncates: one per cut item that had audio received, the heard item first.
    """

    item_id: str
    truncates: list[Truncate]


class _Segment:
    """Reply audio of one item queued in the playout, in caller-format bytes."""

    __slots__ = ("item", "bytes")

    def __init__(self, item: str, n: int) -> None:
        self.item = item
        self.bytes = n


class PlaybackLedger:
    """Per-item received / sent / heard audio of one call, and the playout queue by item.

    Args:
        bytes_per_ms: caller-format bytes per ms of audio (32 for L16 at 16 kHz, 8 for
            mu-law). Public: set it again if the caller format changes before any audio.

    Attributes:
        epoch: bumped by each :meth:`barge_in` (the playout was cleared); starts at 0.
    """

    __slots__ = (
        "bytes_per_ms",
        "epoch",
        "_recv_ms",
        "_sent_ms",
        "_heard_ms",
        "_segments",
        "_taken_item",
        "_last_item",
        "_since_notify_ms",
        "_cut",
    )

    def __init__(self, bytes_per_ms: float) -> None:
        self.bytes_per_ms = bytes_per_ms
        self.epoch = 0
        self._recv_ms: dict[str, float] = {}
        self._sent_ms: dict[str, float] = {}
        self._heard_ms: dict[str, float] = {}
        self._segments: deque[_Segment] = deque()  # reply audio queued in the playout
        self._taken_item: str | None = None  # item of the last frame handed to the caller
        self._last_item: str | None = None  # item of the last delta received
        self._since_notify_ms = 0.0
        self._cut: set[str] = set()  # items cut by a barge-in: late audio and marks ignored

    # ------------------------------------------------------------ reply audio in

    def is_cut(self, item_id: str) -> bool:
        """Whether a barge-in cut ``item_id``: its late audio must be dropped."""
        return item_id in self._cut

    def received(self, item_id: str, ms: float, queued_bytes: int) -> None:
        """A delta of ``item_id`` arrived: ``ms`` ms of Realtime audio, of which
        ``queued_bytes`` caller-format bytes went into the playout now (a resampler may hold
        some back until :meth:`tail_queued`)."""
        recv = self._recv_ms
        if item_id not in recv:
            for d in (recv, self._sent_ms, self._heard_ms):
                while len(d) >= ITEMS_KEPT:
                    del d[next(iter(d))]
            if len(self._cut) > ITEMS_KEPT:
                self._cut.clear()  # old ones: their responses ended long ago
            recv[item_id] = 0.0
        recv[item_id] += ms
        self._last_item = item_id
        self._queue(item_id, queued_bytes)

    def tail_queued(self, n_bytes: int) -> None:
        """``n_bytes`` more went into the playout at the end of a stretch of audio (the
        resampler's tail and the padding to a whole frame): they belong to the last item."""
        if self._last_item is not None:
            self._queue(self._last_item, n_bytes)

    def _queue(self, item_id: str, n: int) -> None:
        if not n:
            return
        segments = self._segments
        if segments and segments[-1].item == item_id:
            segments[-1].bytes += n
        else:
            segments.append(_Segment(item_id, n))

    # ------------------------------------------------------------ audio out, markers back

    def taken(self, n_bytes: int, playout_empty: bool, epoch: int | None = None) -> Marker | None:
        """The pacer handed ``n_bytes`` from the head of the playout to the caller.

        Args:
            n_bytes: whole frames' worth of caller-format bytes.
            playout_empty: nothing is left in the playout (the end of a stretch of audio:
                a marker goes out whatever the cadence, so the end is acknowledged).
            epoch: :attr:`epoch` when the frames were taken; if a barge-in happened since,
                they were cleared and are not counted.
        Returns:
            A marker to send right after these frames, or ``None``.
        """
        if epoch is not None and epoch != self.epoch:
            return None
        left = n_bytes
        segments = self._segments
        sent = self._sent_ms
        bytes_per_ms = self.bytes_per_ms
        item: str | None = None
        while left > 0 and segments:
            seg = segments[0]
            item = seg.item
            have = seg.bytes
            used = min(have, left)
            left -= used
            ms = used / bytes_per_ms
            sent[item] = sent.get(item, 0.0) + ms
            self._since_notify_ms += ms
            if used == have:
                segments.popleft()
            else:
                seg.bytes = have - used
        if item is None:
            return None
        self._taken_item = item
        if self._since_notify_ms < NOTIFY_EVERY_MS and not playout_empty:
            return None
        self._since_notify_ms = 0.0
        return item, int(sent[item])

    def marked(self, item_id: str, ms: int) -> None:
        """A marker came back: ``ms`` ms of ``item_id`` have been played to the caller.

        Markers of items cut by a barge-in (Twilio echoes pending marks after a ``clear``)
        and of unknown items are ignored."""
        if item_id in self._sent_ms and item_id not in self._cut:
            self._heard_ms[item_id] = max(self._heard_ms.get(item_id, 0.0), float(ms))

    def heard_ms(self, item_id: str) -> int:
        """What the caller has heard of ``item_id``, ms: acknowledged by the front door,
        capped by the audio received for it (a truncate past that is refused by the API)."""
        heard = self._heard_ms.get(item_id, 0.0)
        return int(min(heard, self._recv_ms.get(item_id, 0.0)))

    # ------------------------------------------------------------ barge-in

    def _playing_item(self) -> str | None:
        """The assistant item the caller is hearing (or about to), if any."""
        item = self._taken_item
        if item is not None and item not in self._cut:
            if self._heard_ms.get(item, 0.0) < self._sent_ms.get(item, 0.0):
                return item
        if self._segments:
            return self._segments[0].item
        return None

    def barge_in(self) -> BargeIn | None:
        """The caller spoke: cut what is playing and queued, if anything.

        Returns:
            ``None`` when the caller is not hearing a reply (not a barge-in: nothing
            changes). Otherwise what to truncate; the caller of this method must also clear
            the playout and the front door's queue (the ledger's queue is already empty).
        """
        item = self._playing_item()
        if item is None:
            return None
        truncates: list[Truncate] = []
        unheard = [item] + [s.item for s in self._segments if s.item != item]
        for i, other in enumerate(unheard):
            end = self.heard_ms(other) if i == 0 else 0
            self._cut.add(other)
            if self._recv_ms.get(other, 0.0) > 0:
                truncates.append(Truncate(other, end))
        self.epoch += 1
        self._segments.clear()
        self._since_notify_ms = 0.0
        self._taken_item = None
        self._last_item = None
        return BargeIn(item, truncates)

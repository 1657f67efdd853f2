"""The live-call hub: calls publish their start, transcript lines and end; the operator
console's live page subscribes (server-sent events). Shell, in-process, one per app.

With PostgreSQL shared by several instances the hub also shows the calls of the other
instances (:attr:`CallHub.remote`), fed by ``hub_feed`` from the live-call registry and the
bus: the same events, each call's JSON carrying the ``instance_id`` that holds it (numbers
masked, as ``GET /calls/live`` lists them). Its own calls' starts and ends go the other way
through :attr:`CallHub.on_start` / :attr:`CallHub.on_end`.

Nothing here is on the audio path: a call publishes when it starts and ends and when its
session adds a transcript entry (caller or assistant transcript, DTMF, tool call or result),
a few times a minute. Publishing never blocks and never awaits: each subscriber has a bounded
queue, and a subscriber that falls :data:`QUEUE_LIMIT` events behind is dropped (its queue
gets :data:`LOST`; the page reconnects and reloads the snapshot) instead of slowing a call.

Events (JSON objects, as the console's SSE stream sends them)::

    {"type": "start", "call": {call_uuid, front_door, direction, from, to, started_at,
                               assistant, assistant_version, instance_id, transcript: [entry...]}}
    {"type": "line",  "call_uuid": ..., "entry": {"role", "text", "at"}}
    {"type": "end",   "call_uuid": ..., "reason": ...}
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .core.events import TranscriptEntry

log = logging.getLogger(__name__)

QUEUE_LIMIT = 1000
"""Events a subscriber may fall behind before it is dropped."""
LOST: dict[str, Any] = {"type": "lost"}
"""The last item of a dropped subscriber's queue."""


@dataclass(slots=True)
class LiveView:
    """What the console shows of one live call.

    Attributes:
        call_uuid: the front door's call id.
        front_door: one of ``store.FRONT_DOORS``.
        direction: ``inbound`` or ``outbound``.
        from_number / to_number: as the front door gave them (untrusted), when known.
        started_at: aware UTC.
        assistant / assistant_version: the assistant answering (``CallSession.context``:
            its name, and its version, 0 for the built-in default), when known.
        transcript: the session's own list (shared, not copied: the session appends to it).
        hang_up: ends a call that has no media socket here (OpenAI SIP: REST ``hangup``),
            ``reason`` for the log; None for media calls (the console closes their socket).
        instance_id: the instance holding the call when it is another one; None: this one.
    """

    call_uuid: str
    front_door: str
    direction: str
    from_number: str | None
    to_number: str | None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    assistant: str | None = None
    assistant_version: int | None = None
    transcript: list[TranscriptEntry] = field(default_factory=list)
    hang_up: Callable[[str], Awaitable[object]] | None = None
    instance_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The call as the console's events carry it (``started_at`` ISO 8601 to the second)."""
        return {
            "call_uuid": self.call_uuid,
            "front_door": self.front_door,
            "direction": self.direction,
            "from": self.from_number,
            "to": self.to_number,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "assistant": self.assistant,
            "assistant_version": self.assistant_version,
            "instance_id": self.instance_id,
            "transcript": [e.to_json() for e in self.transcript],
        }


class CallHub:
    """Live calls of this instance and the subscribers watching them."""

    def __init__(self) -> None:
        self.calls: dict[str, LiveView] = {}
        self.remote: dict[str, LiveView] = {}
        """The live calls of the other instances (``hub_feed``); empty on one instance."""
        self.on_start: Callable[[LiveView], None] | None = None
        """Told of each call of this instance that starts (``hub_feed``: to the bus)."""
        self.on_end: Callable[[str, str], None] | None = None
        """Told ``(call_uuid, reason)`` of each call of this instance that ends."""
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()

    def every_call(self) -> list[LiveView]:
        """The calls of this instance and of the others, oldest first."""
        return sorted([*self.calls.values(), *self.remote.values()], key=lambda v: v.started_at)

    # ---------------------------------------------------------------- publishing

    def started(self, view: LiveView) -> None:
        """A call is live (replaces an earlier view of the same id)."""
        self.calls[view.call_uuid] = view
        self._publish({"type": "start", "call": view.to_json()})
        if self.on_start is not None:
            self.on_start(view)

    def line(self, call_uuid: str, entry: TranscriptEntry) -> None:
        """A transcript entry was added to the call's session (already in its list)."""
        if call_uuid in self.calls:
            self._publish({"type": "line", "call_uuid": call_uuid, "entry": entry.to_json()})

    def ended(self, call_uuid: str, reason: str) -> None:
        """The call is over; nothing happens for a call that never started."""
        if self.calls.pop(call_uuid, None) is not None:
            self._publish({"type": "end", "call_uuid": call_uuid, "reason": reason})
            if self.on_end is not None:
                self.on_end(call_uuid, reason)

    # ---------------------------------------------------------------- other instances

    def remote_started(self, view: LiveView) -> None:
        """A call of another instance is live (``view.instance_id`` set); a call already
        known keeps the transcript lines it has."""
        if view.call_uuid in self.calls:
            return
        known = self.remote.get(view.call_uuid)
        if known is not None:
            view.transcript = known.transcript
        self.remote[view.call_uuid] = view
        self._publish({"type": "start", "call": view.to_json()})

    def remote_line(self, call_uuid: str, entry: TranscriptEntry) -> None:
        """A transcript line of a call of another instance (nothing for an unknown call)."""
        view = self.remote.get(call_uuid)
        if view is not None:
            view.transcript.append(entry)
            self._publish({"type": "line", "call_uuid": call_uuid, "entry": entry.to_json()})

    def remote_ended(self, call_uuid: str, reason: str) -> None:
        """A call of another instance is over."""
        if self.remote.pop(call_uuid, None) is not None:
            self._publish({"type": "end", "call_uuid": call_uuid, "reason": reason})

    def remote_sync(self, views: list[LiveView]) -> None:
        """The calls of the other instances as the registry lists them now: the new ones
        start, those no longer listed end (an instance that died), the others keep their
        lines."""
        listed = {v.call_uuid for v in views}
        for call_uuid in [u for u in self.remote if u not in listed]:
            self.remote_ended(call_uuid, "no longer listed by any instance")
        for view in views:
            if view.call_uuid not in self.remote:
                self.remote_started(view)

    def _publish(self, event: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self._subscribers.discard(queue)
                _drop(queue)
                log.warning("live-call subscriber dropped: %d events behind", QUEUE_LIMIT)

    # ---------------------------------------------------------------- subscribing

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        """A queue of every event from now on (read :attr:`calls` for what is live now)."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_LIMIT)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Stop sending events to ``queue`` (a no-op if it was dropped)."""
        self._subscribers.discard(queue)

    def close(self, last: dict[str, Any]) -> None:
        """Give every subscriber ``last`` (shutdown: their streams end) and forget them."""
        for queue in self._subscribers:
            if queue.full():
                _drop(queue)
            else:
                queue.put_nowait(last)
        self._subscribers.clear()

    @property
    def subscribers(self) -> int:
        """How many queues receive events now."""
        return len(self._subscribers)


def _drop(queue: asyncio.Queue[dict[str, Any]]) -> None:
    """Empty a full queue and leave :data:`LOST` as its only item."""
    while not queue.empty():
        queue.get_nowait()
    queue.put_nowait(LOST)

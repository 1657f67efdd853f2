"""The console's live page across instances: this instance's :class:`~.hub.CallHub` told
of the calls of the others, and they of its own. Shell: does I/O (the registry, the bus).

Only when PostgreSQL is shared (``Cluster.shared``); on SQLite (one instance) the hub is
left as it is. :func:`connect_hub` (from ``web.cluster_api.cluster_context``):

- the calls of this instance that start and end are published on :data:`~.bus.LIVE`
  (numbers masked to their last 4 digits, ``cluster.mask_number``); their transcript lines
  already go on :data:`~.bus.TRANSCRIPT` (``bus.transcript_publisher``);
- what the other instances publish there becomes ``CallHub.remote_started`` /
  ``remote_line`` / ``remote_ended``, so the console's SSE stream carries their calls too;
- :meth:`HubFeed.refresh` (each live page and SSE stream opening, and once at start-up)
  reads the registry (``GET /calls/live``'s list) and syncs the hub with it: calls started
  before this instance listened, and calls of an instance that died.

A call of another instance shows the transcript lines published since this instance knew of
it (NOTIFY is not stored: lines sent before it listened are not replayed).

Sources: https://www.postgresql.org/docs/current/sql-notify.html
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from aiohttp import web

from . import bus as bus_mod
from .bus import Bus
from .cluster import LiveCallRow, LiveRegistry, mask_number
from .core.events import TranscriptEntry
from .errors import StoreUnavailable
from .hub import CallHub, LiveView

log = logging.getLogger(__name__)

MAX_REASON = 200
"""End reasons on the bus are cut to this many characters."""


class HubFeed:
    """The link between one instance's hub and the others (see the module docstring)."""

    def __init__(self, hub: CallHub, bus: Bus, registry: LiveRegistry) -> None:
        self.hub = hub
        self.bus = bus
        self.registry = registry
        self.instance_id = registry.instance_id

    def connect(self) -> None:
        """Subscribe to the bus and hook the hub (once)."""
        self.bus.subscribe(bus_mod.LIVE, self.on_live)
        self.bus.subscribe(bus_mod.TRANSCRIPT, self.on_transcript)
        self.hub.on_start = self.publish_start
        self.hub.on_end = self.publish_end

    # ------------------------------------------------------------ this instance's calls

    def publish_start(self, view: LiveView) -> None:
        """Tell the other instances that this instance's call started (numbers masked)."""
        call = {
            "call_uuid": view.call_uuid,
            "front_door": view.front_door,
            "direction": view.direction,
            "from": mask_number(view.from_number),
            "to": mask_number(view.to_number),
            "started_at": view.started_at.isoformat(),
            "assistant": (view.assistant or "")[:128] or None,
        }
        message = {"type": "start", "instance_id": self.instance_id, "call": call}
        self.bus.publish_soon(bus_mod.LIVE, message)

    def publish_end(self, call_uuid: str, reason: str) -> None:
        """Tell the other instances that this instance's call ended (reason cut to
        :data:`MAX_REASON`)."""
        message = {
            "type": "end",
            "instance_id": self.instance_id,
            "call_uuid": call_uuid,
            "reason": reason[:MAX_REASON],
        }
        self.bus.publish_soon(bus_mod.LIVE, message)

    # ------------------------------------------------------------ the other instances'

    def on_live(self, payload: dict[str, Any]) -> None:
        """A ``start``/``end`` message of another instance -> the hub; own or malformed ones are
        ignored."""
        instance_id = payload.get("instance_id")
        if not isinstance(instance_id, str) or instance_id == self.instance_id:
            return
        if payload.get("type") == "start":
            view = _view(payload.get("call"), instance_id)
            if view is not None:
                self.hub.remote_started(view)
        elif payload.get("type") == "end":
            call_uuid, reason = payload.get("call_uuid"), payload.get("reason")
            if isinstance(call_uuid, str):
                text = reason[:MAX_REASON] if isinstance(reason, str) else "ended"
                self.hub.remote_ended(call_uuid, text)

    def on_transcript(self, payload: dict[str, Any]) -> None:
        """A transcript line of another instance's call -> the hub; own or malformed ones are
        ignored."""
        if payload.get("instance_id") == self.instance_id:
            return
        call_uuid, role, text = payload.get("call_uuid"), payload.get("role"), payload.get("text")
        if not (isinstance(call_uuid, str) and isinstance(role, str) and isinstance(text, str)):
            return
        self.hub.remote_line(call_uuid, TranscriptEntry(role, text, _when(payload.get("at"))))

    async def refresh(self) -> None:
        """Sync the hub's calls of the other instances with the registry; a database that
        is down leaves them as they are (logged)."""
        try:
            rows = await self.registry.live()
        except StoreUnavailable as exc:
            log.warning("console: the other instances' calls are unavailable: %s", exc.message)
            return
        self.hub.remote_sync([_row_view(r) for r in rows if r.instance_id != self.instance_id])


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def _text(value: object, limit: int = 64) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _view(call: object, instance_id: str) -> LiveView | None:
    """A :data:`~.bus.LIVE` ``start`` payload's call as a view; None if it is malformed."""
    if not isinstance(call, dict):
        return None
    call_uuid, started_at = _text(call.get("call_uuid"), 128), _when(call.get("started_at"))
    front_door, direction = _text(call.get("front_door"), 16), _text(call.get("direction"), 16)
    if call_uuid is None or started_at is None or front_door is None or direction is None:
        return None
    return LiveView(
        call_uuid,
        front_door,
        direction,
        _text(call.get("from"), 32),
        _text(call.get("to"), 32),
        started_at=started_at,
        assistant=_text(call.get("assistant"), 128),
        instance_id=instance_id,
    )


def _row_view(row: LiveCallRow) -> LiveView:
    return LiveView(
        row.call_uuid,
        row.front_door,
        row.direction,
        row.from_masked,
        row.to_masked,
        started_at=row.started_at,
        instance_id=row.instance_id,
    )


HUB_FEED = web.AppKey("hub_feed", HubFeed)
"""The app's :class:`HubFeed`, present with a shared PostgreSQL and the console's hub."""


async def connect_hub(app: web.Application, hub: CallHub, bus: Bus, registry: LiveRegistry) -> None:
    """Build, connect and keep (:data:`HUB_FEED`) the feed; first sync from the registry."""
    feed = app[HUB_FEED] = HubFeed(hub, bus, registry)
    feed.connect()
    await feed.refresh()


__all__ = ["HUB_FEED", "HubFeed", "connect_hub"]

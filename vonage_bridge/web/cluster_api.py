"""Several instances as one service: the shared tables and the bus, mounted on the app, and
``GET /calls/live`` and ``POST /calls/{call_uuid}/hangup``. Shell.

:func:`setup_cluster` adds a cleanup context that, once the call store is open, builds this
instance's :class:`~..cluster.Cluster` (once-only claims), :class:`~..cluster.LiveRegistry`
(live calls, ONE heartbeat task) and :class:`~..bus.Bus` (``LISTEN``/``NOTIFY`` on
PostgreSQL, one listening task; local on SQLite), and removes the instance at exit. Without a
store (PostgreSQL unreachable at start-up) none of them exists: the instance keeps its own
in-memory guards, ``/calls/live`` answers 503.

Routes (the ``X-API-Key`` of ``POST /connect``; 401/403/503 as ``GET /calls``):

- ``GET /calls/live``: 200 ``{"calls": [{"call_uuid", "instance_id", "front_door",
  "direction", "from", "to", "started_at"}], "instance_id"}``: every live call of every
  instance alive, numbers masked (last 4 digits), oldest first; ``instance_id`` is the one
  that answered.
- ``POST /calls/{call_uuid}/hangup``: a call of this instance is hung up at once (REST
  hang-up, socket closed with 1001; end reason :data:`HANGUP_REASON`): 200 ``{"status":
  "hung_up", "instance_id"}``; a call of another instance is handed to it on the bus
  (:data:`~..bus.HANGUP`), which does the same: 202 ``{"status": "requested",
  "instance_id"}``; 404 ``call_not_live`` when no instance alive holds it.

With PostgreSQL shared and the operator console mounted, the console's hub is fed the calls
of every instance (``hub_feed.connect_hub``), and its Hang up takes the same path
(:func:`hang_up_anywhere`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSCloseCode, web

from .. import bus as bus_mod
from ..bus import Bus
from ..calls import close_socket
from ..cluster import Cluster, LiveRegistry, new_instance_id
from ..errors import FeatureDisabled
from ..hub_feed import MAX_REASON, connect_hub
from ..logs import call_context
from ..store import SqlCallStore
from .auth import require_api_key
from .calls_api import known_params
from .keys import BUS, CALLS, CLUSTER, HUB, REGISTRY, SETTINGS, SIP, STORE
from .lifecycle import SHUTDOWN_HANGUP_S

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

HANGUP_REASON = "hung up on request (POST /calls/{call_uuid}/hangup)"
"""End reason (record, summary line, close frame) of a call hung up through the API."""


def setup_cluster(app: web.Application) -> None:
    """Mount the routes (before ``GET /calls/{call_uuid}``, which would match
    ``/calls/live``); append :func:`cluster_context` after the store's cleanup context."""
    app.router.add_routes(routes)


async def cluster_context(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: the instance's claims, registry and bus, once the store is open."""
    store = app.get(STORE)
    if not isinstance(store, SqlCallStore):
        yield
        return
    settings = app[SETTINGS]
    cluster = Cluster(store, new_instance_id(settings.scale.fly_machine_id))
    registry = LiveRegistry(cluster)
    bus = Bus(store.engine, settings.store.database_url if store.dialect == "postgresql" else None)
    app[CLUSTER], app[REGISTRY], app[BUS] = cluster, registry, bus
    pending: set[asyncio.Task[Any]] = set()

    def on_hangup(payload: dict[str, Any]) -> None:
        """A bus ``hangup`` for this instance: end the call in the background; others' are
        ignored."""
        if payload.get("instance_id") != cluster.instance_id:
            return
        call_uuid = str(payload.get("call_uuid", ""))[:128]
        reason = payload.get("reason")
        reason = reason[:MAX_REASON] if isinstance(reason, str) and reason else HANGUP_REASON
        task = asyncio.create_task(end_call(app, call_uuid, reason))
        pending.add(task)
        task.add_done_callback(pending.discard)

    bus.subscribe(bus_mod.HANGUP, on_hangup)
    hub = app.get(HUB)
    if hub is not None and cluster.shared:  # the console lists every instance's calls
        await connect_hub(app, hub, bus, registry)
    await registry.heartbeat()  # listed at once, before the first call
    tasks = [
        asyncio.create_task(registry.run(), name="live-registry"),
        asyncio.create_task(bus.run(), name="bus"),
    ]
    log.info("instance %s: live calls shared through the call store", cluster.instance_id)
    try:
        yield
    finally:
        for task in [*tasks, *pending]:
            task.cancel()
        await asyncio.gather(*tasks, *pending, return_exceptions=True)
        await registry.leave()


async def end_call(app: web.Application, call_uuid: str, reason: str) -> bool:
    """Hang up a call of this instance now: a media call over REST (within
    :data:`~.lifecycle.SHUTDOWN_HANGUP_S`) and its socket closed with 1001 (its own cleanup
    writes the record with ``reason``); an OpenAI SIP call's task is cancelled. False if
    this instance does not hold the call."""
    with call_context(call_uuid[:64]):
        live = app[CALLS].get(call_uuid)
        if live is not None:
            log.info("hanging up: %s", reason)
            live.ending = reason
            await live.hang_up_within(reason, SHUTDOWN_HANGUP_S)
            await close_socket(live.ws, WSCloseCode.GOING_AWAY, reason)
            return True
        sip = app.get(SIP)
        task = sip.calls.get(call_uuid) if sip is not None else None
        if task is not None:
            log.info("hanging up the SIP call: %s", reason)
            task.cancel()
            return True
    return False


def _registry(request: web.Request) -> LiveRegistry:
    require_api_key(request, feature="GET /calls", disabled_code="calls_api_disabled")
    registry = request.app.get(REGISTRY)
    if registry is None:
        raise FeatureDisabled(
            "live calls are unavailable: the database could not be reached at start-up",
            code="call_records_unavailable",
        )
    return registry


@routes.get("/calls/live")
async def live_calls(request: web.Request) -> web.Response:
    """Every live call of every instance alive; a query parameter is a 400
    ``unknown_parameter`` (this list takes none), as on ``GET /calls``."""
    registry = _registry(request)
    known_params(request, ())
    rows = await registry.live()
    return web.json_response(
        {"calls": [r.to_json() for r in rows], "instance_id": registry.instance_id}
    )


async def hang_up_anywhere(
    app: web.Application, registry: LiveRegistry, call_uuid: str, reason: str
) -> tuple[str, str] | None:
    """Hang ``call_uuid`` up on whichever instance holds it, with end reason ``reason``:
    ``("hung_up", this instance)`` when it is held here (:func:`end_call`),
    ``("requested", holder)`` when the request went to the holder on the bus
    (:data:`~..bus.HANGUP`); None when no instance alive holds it. The path of
    ``POST /calls/{call_uuid}/hangup`` and of the console's Hang up.

    Raises:
        StoreUnavailable: the registry could not be read.
        FeatureDisabled: the request could not be sent on the bus (503).
    """
    me = registry.instance_id
    if await end_call(app, call_uuid, reason):
        return "hung_up", me
    holder = await registry.holder(call_uuid)
    if holder is None or holder == me:
        return None
    message = {"call_uuid": call_uuid, "instance_id": holder, "reason": reason[:MAX_REASON]}
    if not await app[BUS].publish(bus_mod.HANGUP, message):
        raise FeatureDisabled("the hang-up could not be sent", code="call_records_unavailable")
    with call_context(call_uuid[:64]):
        log.info("hang-up requested from instance %s", holder)
    return "requested", holder


@routes.post("/calls/{call_uuid}/hangup")
async def hang_up(request: web.Request) -> web.Response:
    """Hang a live call up, on whichever instance holds it."""
    registry = _registry(request)
    call_uuid = request.match_info["call_uuid"][:128]
    done = await hang_up_anywhere(request.app, registry, call_uuid, HANGUP_REASON)
    if done is None:
        return web.json_response(
            {"error": {"code": "call_not_live", "message": "no instance holds this call"}},
            status=404,
        )
    status, instance_id = done
    return web.json_response(
        {"status": status, "instance_id": instance_id}, status=200 if status == "hung_up" else 202
    )

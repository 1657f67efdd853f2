"""The operator console's pages and APIs (every one needs a console session, see ``auth``).

=====================================  =========================================================
``GET /console`` / ``/console/live``   live calls, transcripts growing live (every
                                       instance's with a shared PostgreSQL, ``hub_feed``)
``GET /console/api/events``            server-sent events of the live calls (``hub`` events;
                                       first a ``snapshot`` of what is live now)
``POST /console/calls/{id}/hangup``    hang a live call up (REST when the door has it, and
                                       the socket closed; a call of another instance
                                       through ``POST /calls/{uuid}/hangup``'s path), 303
                                       back to the live page
``GET /console/history``               call records, newest first, paged and filtered
``GET /console/calls/{id}``            one record: transcript timeline and figures
``GET|POST /console/dial``             the outbound form: the same code as ``POST /connect``
``GET /console/phone``                 "Talk to the assistant" (the browser phone)
``GET /console/static/{name}``         CSS and JS (only ``console.css`` without a session)
=====================================  =========================================================

Pages without a session answer 303 to the login page; APIs, assets and the phone socket 401.
Every POST needs the session's CSRF token (403 without it).

Server-sent events: https://html.spec.whatwg.org/multipage/server-sent-events.html
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime, time, timedelta
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from aiohttp import WSCloseCode, web

from ..calls import close_socket
from ..errors import BridgeError, InvalidRequest
from ..hub import LOST, CallHub
from ..hub_feed import HUB_FEED
from ..logs import call_context
from ..store import DIRECTIONS, FRONT_DOORS, CallFilter, CallRecord, CallStore
from ..vonage.dial import place_call
from ..web.cluster_api import hang_up_anywhere
from ..web.keys import CALLS, HUB, REGISTRY, SETTINGS, STORE
from .auth import (
    check_csrf,
    current_session,
    require_api,
    require_page,
)
from .render import PREFIX, ROLE_LABELS, render

log = logging.getLogger(__name__)

PAGE_SIZE = 25
HANGUP_REST_S = 5.0
"""Bound on the REST hang-up from the console before the socket is closed anyway."""
BYE: dict[str, Any] = {"type": "bye"}
"""Ends the SSE streams at shutdown."""
KEEPALIVE_S = 15.0
"""An SSE comment this often keeps proxies from closing an idle stream."""
PUBLIC_ASSETS = frozenset({"console.css"})
ASSETS = {
    "console.css": "text/css",
    "live.js": "text/javascript",
    "phone.js": "text/javascript",
    "capture-worklet.js": "text/javascript",
    "player-worklet.js": "text/javascript",
}


# ------------------------------------------------------------------ live calls


async def index(request: web.Request) -> web.Response:
    await require_page(request)
    raise web.HTTPSeeOther(f"{PREFIX}/live")


async def live(request: web.Request) -> web.Response:
    """The live calls, rendered now; ``live.js`` keeps them current over SSE."""
    await require_page(request)
    hub = request.app[HUB]
    await _refresh(request.app)
    return render(request, "live.html", calls=hub.every_call(), now=datetime.now(UTC))


async def _refresh(app: web.Application) -> None:
    """With several instances: the other instances' calls as the registry lists them now."""
    feed = app.get(HUB_FEED)
    if feed is not None:
        await feed.refresh()


async def events(request: web.Request) -> web.StreamResponse:
    """``text/event-stream``: a ``snapshot`` event, then every hub event as it happens."""
    await require_api(request)
    hub: CallHub = request.app[HUB]
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await _refresh(request.app)
    queue = hub.subscribe()
    try:
        await response.prepare(request)
        snapshot = {"type": "snapshot", "calls": [v.to_json() for v in hub.every_call()]}
        await response.write(_sse(snapshot))
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if event is BYE or event is LOST:
                break
            await response.write(_sse(event))
    except ConnectionResetError:
        pass  # the page went away
    finally:
        hub.unsubscribe(queue)
    return response


def _sse(event: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


async def hang_up(request: web.Request) -> web.Response:
    """End a live call: REST hang-up when its door has one, then its socket closed."""
    session = await require_page(request)
    check_csrf(request, session, await request.post())
    call_id = request.match_info["call_id"]
    reason = f"hung up from the console by {session.operator}"
    live_call = request.app[CALLS].get(call_id)
    view = request.app[HUB].calls.get(call_id)
    if live_call is not None:
        live_call.ending = reason
        await live_call.hang_up_within(reason, HANGUP_REST_S)
        await close_socket(live_call.ws, WSCloseCode.OK, reason)
    elif view is not None and view.hang_up is not None:  # OpenAI SIP: no socket of ours
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(HANGUP_REST_S):
                await view.hang_up(reason)
    elif (registry := request.app.get(REGISTRY)) is not None and HUB_FEED in request.app:
        # Held by another instance: the path of POST /calls/{uuid}/hangup (the bus).
        if await hang_up_anywhere(request.app, registry, call_id[:128], reason) is None:
            raise web.HTTPSeeOther(f"{PREFIX}/live")
    else:
        raise web.HTTPSeeOther(f"{PREFIX}/live")
    with call_context(call_id[:64]):
        log.info("hung up from the console by operator %r", session.operator)
    raise web.HTTPSeeOther(f"{PREFIX}/live")


async def shutdown(app: web.Application) -> None:
    """``on_shutdown``: end the SSE streams (they would hold the shutdown otherwise)."""
    app[HUB].close(BYE)


def _records(request: web.Request) -> CallStore:
    """The call-record store.

    Raises:
        web.HTTPServiceUnavailable: the database was unreachable at start-up (503).
    """
    store = request.app.get(STORE)
    if store is None:
        raise web.HTTPServiceUnavailable(text="the call-record database is unavailable")
    return store


# ------------------------------------------------------------------ history and detail


def _text(query: Any, name: str, limit: int = 64) -> str | None:
    value = (query.get(name) or "").strip()
    return value[:limit] or None


def _date(query: Any, name: str) -> datetime | None:
    raw = _text(query, name, 10)
    if raw is None:
        return None
    try:
        day = datetime.strptime(raw, "%Y-%m-%d").date()
    except ValueError:
        raise InvalidRequest(f"{name}: {raw!r} is not a date (YYYY-MM-DD)") from None
    return datetime.combine(day, time(0), UTC)


def parse_filter(query: Any) -> tuple[str | None, CallFilter]:
    """The history page's query: ``front_door``, ``direction``, ``number``, ``since`` and
    ``until`` (dates, UTC, both included), ``end_reason``, ``words``.

    Raises:
        InvalidRequest: an unknown front door or direction, or a malformed date (400).
    """
    door = _text(query, "front_door")
    if door is not None and door not in FRONT_DOORS:
        raise InvalidRequest(f"front_door: one of {', '.join(FRONT_DOORS)}")
    direction = _text(query, "direction")
    if direction is not None and direction not in DIRECTIONS:
        raise InvalidRequest(f"direction: one of {', '.join(DIRECTIONS)}")
    until = _date(query, "until")
    words = tuple((_text(query, "words", 200) or "").split())[:8]
    return door, CallFilter(
        direction=direction,
        number=_text(query, "number"),
        since=_date(query, "since"),
        until=until + timedelta(days=1) if until is not None else None,
        end_reason=_text(query, "end_reason"),
        words=words,
    )


async def history(request: web.Request) -> web.Response:
    await require_page(request)
    store = _records(request)
    query = request.query
    try:
        door, where = parse_filter(query)
    except InvalidRequest as exc:
        return render(
            request,
            "history.html",
            status=400,
            error=exc.message,
            page=None,
            q=query,
            front_doors=FRONT_DOORS,
            directions=DIRECTIONS,
            prev_url=None,
            next_url=None,
        )
    try:
        offset = max(0, min(int(query.get("offset", "0")), 1_000_000))
    except ValueError:
        offset = 0
    page = await store.page(limit=PAGE_SIZE, offset=offset, front_door=door, where=where)
    kept = {k: v for k, v in query.items() if k != "offset" and v}
    prev_url = next_url = None
    if offset > 0:
        prev_url = f"?{urlencode({**kept, 'offset': max(0, offset - PAGE_SIZE)})}"
    if page.next_offset is not None:
        next_url = f"?{urlencode({**kept, 'offset': page.next_offset})}"
    return render(
        request,
        "history.html",
        page=page,
        q=query,
        error=None,
        front_doors=FRONT_DOORS,
        directions=DIRECTIONS,
        prev_url=prev_url,
        next_url=next_url,
    )


def figures(record: CallRecord) -> dict[str, Any]:
    """What the detail page sums up: duration and counts by role."""
    counts = {role: 0 for role in ROLE_LABELS}
    for entry in record.transcript:
        counts[entry.role] = counts.get(entry.role, 0) + 1
    return {"duration_s": record.duration_s, "counts": counts}


async def detail(request: web.Request) -> web.Response:
    await require_page(request)
    record = await _records(request).get(request.match_info["call_id"])
    if record is None:
        return render(request, "not_found.html", status=404)
    return render(request, "detail.html", record=record, figures=figures(record))


# ------------------------------------------------------------------ dial


async def dial_form(request: web.Request) -> web.Response:
    session = await require_page(request)
    return render(request, "dial.html", csrf=session.csrf, result=None, error=None, form={})


async def dial(request: web.Request) -> web.Response:
    """The Dial form: ``to`` and ``from``, through ``POST /connect``'s own code."""
    session = await require_page(request)
    form = await request.post()
    check_csrf(request, session, form)
    body = {k: str(form[k]).strip() for k in ("to", "from") if str(form.get(k) or "").strip()}

    async def read_body() -> dict[str, Any]:
        return body

    try:
        response = await place_call(request.app, read_body)
    except BridgeError as exc:
        return render(
            request,
            "dial.html",
            status=exc.http_status,
            csrf=session.csrf,
            result=None,
            error=exc.message,
            form=body,
        )
    assert response.text is not None
    doc = json.loads(response.text)
    if response.status >= 400:
        error = doc.get("error", {}).get("message", "the call could not be placed")
        return render(
            request,
            "dial.html",
            status=response.status,
            csrf=session.csrf,
            result=None,
            error=error,
            form=body,
        )
    with call_context(str(doc.get("uuid"))[:64]):
        log.info("outbound call placed from the console by operator %r", session.operator)
    return render(request, "dial.html", csrf=session.csrf, result=doc, error=None, form={})


# ------------------------------------------------------------------ phone, assets


async def phone(request: web.Request) -> web.Response:
    session = await require_page(request)
    return render(
        request, "phone.html", csrf=session.csrf, model=request.app[SETTINGS].openai.model
    )


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound()
    if name not in PUBLIC_ASSETS and await current_session(request) is None:
        raise web.HTTPUnauthorized(text="console session required")
    body = resources.files("vonage_bridge.console").joinpath("static", name).read_bytes()
    return web.Response(body=body, content_type=ASSETS[name], headers={"Cache-Control": "no-cache"})

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
``GET /console/history``               call records, newest first, paged and filtered (also by
                                       a minimum cost), with the total cost of the filtered calls
``GET /console/calls/{id}``            one record: transcript timeline, figures, tokens and
                                       cost, and the recording player (``<audio>`` on
                                       ``GET /calls/{id}/recording``, which takes the session)
``GET|POST /console/dial``             the outbound form with ``POST /connect``'s fields,
                                       through its own code
``GET /console/phone``                 "Talk to the assistant" (the browser phone)
``/console/assistants...``             the Assistants pages (module ``assistants``)
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
from urllib.parse import quote, urlencode

from aiohttp import WSCloseCode, web

from ..calls import close_socket
from ..core.assistant import DEFAULT_NAME
from ..core.jsonbody import JsonTooDeep, loads_bounded
from ..errors import BridgeError, InvalidField, InvalidRequest, StoreUnavailable
from ..hub import LOST, CallHub
from ..hub_feed import HUB_FEED
from ..logs import call_context
from ..recording.recorder import STATUS_COMPLETE, STATUS_FAILED
from ..store import (
    DIRECTIONS,
    FRONT_DOOR_OPENAI_SIP,
    FRONT_DOORS,
    CallFilter,
    CallPage,
    CallRecord,
    CallStore,
)
from ..vonage.dial import place_call
from ..web.calls_api import min_cost_value
from ..web.cluster_api import hang_up_anywhere
from ..web.keys import ASSISTANTS, CALLS, HUB, REGISTRY, SETTINGS, STORE
from .assistants import list_all as list_assistants
from .auth import (
    current_session,
    require_api,
    require_form,
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
    """``GET /console``: 303 to the live page (to the login page without a session)."""
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
    session, _ = await require_form(request)
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


def parse_min_cost(query: Any) -> float | None:
    """The history page's ``min_cost``: USD, a number >= 0, or None when empty.

    Raises:
        InvalidRequest: anything else (400).
    """
    return min_cost_value(_text(query, "min_cost", 32))


async def history(request: web.Request) -> web.Response:
    """``GET /console/history``: call records, newest first, :data:`PAGE_SIZE` a page.

    Query: the filter fields (``parse_filter``), ``min_cost`` (USD) and ``offset``. Answers the
    page (200), the page with the error for a bad filter (400), or 303 to the login page without
    a session.
    """
    await require_page(request)
    store = _records(request)
    query = request.query
    try:
        door, where = parse_filter(query)
        min_cost = parse_min_cost(query)
    except InvalidRequest as exc:
        return _history_page(request, status=400, error=exc.message)
    try:
        offset = max(0, min(int(query.get("offset", "0")), 1_000_000))
    except ValueError:
        offset = 0
    page = await store.page(
        limit=PAGE_SIZE, offset=offset, front_door=door, where=where, min_cost=min_cost
    )
    kept = {k: v for k, v in query.items() if k != "offset" and v}
    prev_url = next_url = None
    if offset > 0:
        prev_url = f"?{urlencode({**kept, 'offset': max(0, offset - PAGE_SIZE)})}"
    if page.next_offset is not None:
        next_url = f"?{urlencode({**kept, 'offset': page.next_offset})}"
    return _history_page(request, page=page, prev_url=prev_url, next_url=next_url)


def _history_page(
    request: web.Request,
    *,
    status: int = 200,
    error: str | None = None,
    page: CallPage | None = None,
    prev_url: str | None = None,
    next_url: str | None = None,
) -> web.Response:
    """The history page: the filter form (as queried) with ``page`` or the ``error``."""
    return render(
        request,
        "history.html",
        status=status,
        page=page,
        q=request.query,
        error=error,
        front_doors=FRONT_DOORS,
        directions=DIRECTIONS,
        prev_url=prev_url,
        next_url=next_url,
    )


def figures(record: CallRecord) -> dict[str, Any]:
    """What the detail page sums up: duration, counts by role, and the record's figures
    (``records.call_figures``: reply latency median/p95, underruns, barge-ins; ``{}`` on a
    record written before them)."""
    counts = {role: 0 for role in ROLE_LABELS}
    for entry in record.transcript:
        counts[entry.role] = counts.get(entry.role, 0) + 1
    return {"duration_s": record.duration_s, "counts": counts, "call": record.figures or {}}


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def tokens(record: CallRecord) -> dict[str, int] | None:
    """The detail page's token counts from the record's ``usage`` (OpenAI's shape summed,
    ``core.usage``): ``input``, ``output``, ``input_text``, ``input_audio``, ``input_cached``,
    ``output_text``, ``output_audio``, ``transcription_input``, ``transcription_output``;
    None when the record has no usage (written before it). A missing count is 0."""
    usage = record.usage
    if not isinstance(usage, dict):
        return None
    details = usage.get("input_token_details") or {}
    out = usage.get("output_token_details") or {}
    transcription = usage.get("transcription") or {}
    return {
        "input": _count(usage.get("input_tokens")),
        "output": _count(usage.get("output_tokens")),
        "input_text": _count(details.get("text_tokens")),
        "input_audio": _count(details.get("audio_tokens")),
        "input_cached": _count(details.get("cached_tokens")),
        "output_text": _count(out.get("text_tokens")),
        "output_audio": _count(out.get("audio_tokens")),
        "transcription_input": _count(transcription.get("input_tokens")),
        "transcription_output": _count(transcription.get("output_tokens")),
    }


def recording_view(record: CallRecord) -> dict[str, Any]:
    """What the detail page shows of the recording: ``{"url": "/calls/{id}/recording",
    "seconds", "bytes", "rate_hz"}`` when it is complete (the player's source, on this
    host: the session cookie goes with it), else ``{"url": None, "reason": "..."}``: not
    recorded, failed (with the error), or not available on the front door."""
    rec = record.recording
    if not isinstance(rec, dict):
        if record.front_door == FRONT_DOOR_OPENAI_SIP:
            return {"url": None, "reason": "No recording: not available on OpenAI SIP calls."}
        return {
            "url": None,
            "reason": "Not recorded (RECORD_CALLS is off and the assistant does not ask for it).",
        }
    status, error = rec.get("status"), rec.get("error")
    if status == STATUS_COMPLETE and rec.get("url"):
        return {
            "url": f"/calls/{quote(record.call_uuid, safe='')}/recording",
            "seconds": rec.get("seconds") or 0.0,
            "bytes": rec.get("bytes") or 0,
            "rate_hz": rec.get("rate_hz"),
        }
    if status == STATUS_FAILED:
        return {"url": None, "reason": f"The recording failed: {error or 'unknown error'}."}
    if record.front_door == FRONT_DOOR_OPENAI_SIP:
        return {"url": None, "reason": "No recording: not available on OpenAI SIP calls."}
    return {"url": None, "reason": f"No recording: {error or status}."}


async def detail(request: web.Request) -> web.Response:
    """``GET /console/calls/{call_id}``: one record's page (200), ``not_found.html`` (404), or 303
    to the login page without a session."""
    await require_page(request)
    record = await _records(request).get(request.match_info["call_id"])
    if record is None:
        return render(request, "not_found.html", status=404)
    return render(
        request,
        "detail.html",
        record=record,
        figures=figures(record),
        tokens=tokens(record),
        recording=recording_view(record),
    )


# ------------------------------------------------------------------ dial

DIAL_TEXT_FIELDS = ("to", "from", "region", "via", "assistant", "instructions", "status_url")
"""Form fields copied as they are (trimmed; empty ones left out) into the ``/connect`` body."""


def dial_body(form: Any) -> dict[str, Any]:
    """The Dial form as a ``POST /connect`` body (``core.connect_request.FIELDS``).

    Text fields are copied as given; ``variables`` is ``name=value`` lines (blank lines
    skipped; the value may contain ``=``), ``metadata`` a JSON object, and
    ``on_machine`` (``hangup`` / ``leave_message``) with ``machine_message`` make
    ``machine_detection``. The values are then checked by ``/connect``'s own code.

    Raises:
        InvalidField: a ``variables`` line without ``=``, a name given twice, or
            ``metadata`` that is not JSON (the ``/connect`` check never sees those).
    """
    body: dict[str, Any] = {}
    for name in DIAL_TEXT_FIELDS:
        value = str(form.get(name) or "").strip()
        if value:
            body[name] = value
    lines = str(form.get("variables") or "").splitlines()
    variables: dict[str, str] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        key, eq, value = line.partition("=")
        key = key.strip()
        if not eq or not key:
            raise InvalidField("variables", f"line {n}: write name=value")
        if key in variables:
            raise InvalidField("variables", f"line {n}: {key[:64]!r} is given twice")
        variables[key] = value.strip()
    if variables:
        body["variables"] = variables
    metadata = str(form.get("metadata") or "").strip()
    if metadata:
        try:
            body["metadata"] = loads_bounded(metadata)
        except (JsonTooDeep, ValueError):
            raise InvalidField("metadata", 'must be a JSON object, e.g. {"crm_id": 42}') from None
    on_machine = str(form.get("on_machine") or "").strip()
    if on_machine:
        detection: dict[str, Any] = {"on_machine": on_machine}
        message = str(form.get("machine_message") or "").strip()
        if message:
            detection["message"] = message
        body["machine_detection"] = detection
    return body


async def _dial_page(
    request: web.Request,
    csrf: str,
    *,
    status: int = 200,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    field: str | None = None,
    form: Any = None,
) -> web.Response:
    """The Dial page, with the assistants to pick from (none listed when the database is
    down: the default answers)."""
    try:
        names = [a.name for a in await list_assistants(request.app[ASSISTANTS])]
    except StoreUnavailable:
        names = []
    return render(
        request,
        "dial.html",
        status=status,
        csrf=csrf,
        result=result,
        error=error,
        field=field,
        form=form if form is not None else {},
        assistants=names,
        default_assistant=DEFAULT_NAME,
    )


async def dial_form(request: web.Request) -> web.Response:
    """``GET /console/dial``: the empty Dial form (303 to the login page without a session)."""
    session = await require_page(request)
    return await _dial_page(request, session.csrf)


async def dial(request: web.Request) -> web.Response:
    """The Dial form: ``to``, ``from`` and the per-call fields, through ``POST /connect``'s
    own code (``vonage.dial.place_call``); a refusal is shown next to the form with
    ``/connect``'s status and message."""
    session, form = await require_form(request)
    kept = {k: str(v) for k, v in form.items() if k != "csrf"}
    try:
        body = dial_body(form)
    except InvalidField as exc:
        return await _dial_page(
            request,
            session.csrf,
            status=exc.http_status,
            error=exc.message,
            field=exc.field,
            form=kept,
        )

    async def read_body() -> dict[str, Any]:
        """The Dial form's ``/connect`` body, already built."""
        return body

    try:
        response = await place_call(request.app, read_body)
    except BridgeError as exc:
        return await _dial_page(
            request, session.csrf, status=exc.http_status, error=exc.message, form=kept
        )
    assert response.text is not None
    doc = json.loads(response.text)
    if response.status >= 400:
        err = doc.get("error", {})
        return await _dial_page(
            request,
            session.csrf,
            status=response.status,
            error=err.get("message", "the call could not be placed"),
            field=err.get("field"),
            form=kept,
        )
    with call_context(str(doc.get("uuid"))[:64]):
        log.info("outbound call placed from the console by operator %r", session.operator)
    return await _dial_page(request, session.csrf, result=doc)


# ------------------------------------------------------------------ phone, assets


async def phone(request: web.Request) -> web.Response:
    """``GET /console/phone``: the browser phone page (303 to the login page without a session)."""
    session = await require_page(request)
    return render(
        request, "phone.html", csrf=session.csrf, model=request.app[SETTINGS].openai.model
    )


async def asset(request: web.Request) -> web.Response:
    """``GET /console/static/{name}``: a console CSS or JS file; 404 for an unknown name, 401
    without a session (except :data:`PUBLIC_ASSETS`)."""
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound()
    if name not in PUBLIC_ASSETS and await current_session(request) is None:
        raise web.HTTPUnauthorized(text="console session required")
    body = resources.files("vonage_bridge.console").joinpath("static", name).read_bytes()
    return web.Response(body=body, content_type=ASSETS[name], headers={"Cache-Control": "no-cache"})

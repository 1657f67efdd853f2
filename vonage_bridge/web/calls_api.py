"""``GET /calls`` and ``GET /calls/{call_uuid}``: the call records, as JSON.

Guarded like ``POST /connect``: ``X-API-Key`` must equal ``CONNECT_API_KEY`` (compared in
constant time). Responses:

- ``GET /calls?limit=20&offset=0``: 200 ``{"calls": [...], "limit", "offset",
  "next_offset"}``, newest first, without transcripts; ``next_offset`` is null on the last
  page. ``limit`` is 1-100 (default 20), ``offset`` 0-1000000 (default 0); anything else is a
  400 ``invalid_paging`` naming the parameter. ``front_door=vonage|twilio|openai-sip|browser`` keeps
  only the calls that came through that front door (paging counts only those); any other
  value is a 400 ``invalid_filter`` naming the parameter. Any other query parameter
  (``?from=...``) is a 400 ``unknown_parameter`` naming it and the known ones, rather than
  a page that silently ignores the filter.
  ``min_cost=0.05`` keeps only the calls that cost at least that many USD (calls without a
  cost are left out); anything but a number >= 0 is a 400 ``invalid_filter``.
  ``total_cost_usd`` is the sum of ``cost_usd`` over every call the filters keep (all pages).
- ``GET /calls/{call_uuid}``: 200 with the record and its transcript, 404 ``call_not_found``.
- Every record says ``front_door``: ``vonage``, ``twilio``, ``openai-sip`` or ``browser``
  (the operator console's browser phone); ``usage`` (token usage in OpenAI's shape),
  ``cost_usd`` (null: a model without a price) and ``recording`` (null: not recorded; else
  ``url``, ``seconds``, ``bytes``, ``format``, ``channels``, ``rate_hz``, ``status``); the file
  is ``GET /calls/{call_uuid}/recording`` (``web/recordings.py``).
- 401 ``api_key_missing``, 403 ``api_key_invalid``, 503 ``calls_api_disabled``
  (``CONNECT_API_KEY`` unset) or ``call_records_unavailable`` (the database was unreachable
  at start-up, or is down now).
"""

from __future__ import annotations

from aiohttp import web

from ..errors import FeatureDisabled, InvalidRequest
from ..store import FRONT_DOORS, CallStore
from .auth import require_api_key
from .keys import STORE

routes = web.RouteTableDef()

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_OFFSET = 1_000_000
LIST_PARAMETERS = ("limit", "offset", "front_door", "min_cost")
"""The query parameters ``GET /calls`` knows."""


def known_params(request: web.Request, known: tuple[str, ...]) -> None:
    """Raises :class:`InvalidRequest` (400 ``unknown_parameter``) naming the first query
    parameter not in ``known``."""
    for name in request.query:
        if name not in known:
            msg = f"unknown query parameter {name[:32]!r}; known: {', '.join(known) or 'none'}"
            raise InvalidRequest(msg, code="unknown_parameter")


def _authorised_store(request: web.Request) -> CallStore:
    """The store, once the request's ``X-API-Key`` is checked.

    Raises:
        FeatureDisabled: ``CONNECT_API_KEY`` unset, or no store (503).
        Unauthorized / Forbidden: key missing (401) / wrong (403).
    """
    require_api_key(request, feature="GET /calls", disabled_code="calls_api_disabled")
    store = request.app.get(STORE)
    if store is None:
        raise FeatureDisabled(
            "call records are unavailable: the database could not be reached at start-up",
            code="call_records_unavailable",
        )
    return store


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        msg = f"{name}: {raw[:32]!r} is not an integer"
        raise InvalidRequest(msg, code="invalid_paging") from None
    if not lo <= value <= hi:
        raise InvalidRequest(f"{name}: must be between {lo} and {hi}", code="invalid_paging")
    return value


def _front_door_param(request: web.Request) -> str | None:
    raw = request.query.get("front_door")
    if raw is None:
        return None
    if raw not in FRONT_DOORS:
        msg = f"front_door: {raw[:32]!r} is not one of {', '.join(FRONT_DOORS)}"
        raise InvalidRequest(msg, code="invalid_filter")
    return raw


def min_cost_value(raw: str | None) -> float | None:
    """A ``min_cost`` filter (``GET /calls``, the console's history): USD, a finite number
    >= 0; None when ``raw`` is None.

    Raises:
        InvalidRequest: anything else, NaN and infinity included (400 ``invalid_filter``).
    """
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < float("inf"):  # also refuses nan
        msg = f"min_cost: {raw[:32]!r} is not a number >= 0 (USD)"
        raise InvalidRequest(msg, code="invalid_filter")
    return value


@routes.get("/calls")
async def list_calls(request: web.Request) -> web.Response:
    """A page of call records, newest first."""
    store = _authorised_store(request)
    known_params(request, LIST_PARAMETERS)
    limit = _int_param(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _int_param(request, "offset", 0, 0, MAX_OFFSET)
    front_door = _front_door_param(request)
    min_cost = min_cost_value(request.query.get("min_cost"))
    page = await store.page(limit=limit, offset=offset, front_door=front_door, min_cost=min_cost)
    return web.json_response(
        {
            "calls": [r.to_json(with_transcript=False) for r in page.records],
            "limit": page.limit,
            "offset": page.offset,
            "next_offset": page.next_offset,
            "total_cost_usd": page.total_cost_usd,
        }
    )


@routes.get("/calls/{call_uuid}")
async def get_call(request: web.Request) -> web.Response:
    """One call record with its transcript."""
    store = _authorised_store(request)
    call_uuid = request.match_info["call_uuid"]
    record = await store.get(call_uuid[:128])
    if record is None:
        return web.json_response(
            {"error": {"code": "call_not_found", "message": "no record of this call"}},
            status=404,
        )
    return web.json_response(record.to_json())

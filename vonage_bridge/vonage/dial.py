"""``POST /connect``: place an outbound call that is bridged like an inbound one.

Guarded by ``X-API-Key`` (``CONNECT_API_KEY``, compared in constant time). Body
``{"to": "+818012345678", "from": "+815031023332"}``; ``from`` defaults to
``VONAGE_OUTBOUND_FROM``. The call is created with Vonage's ``answer_url`` set to our
``/answer``, so when the callee picks up Vonage fetches the same NCCO an inbound caller gets.

Responses (JSON):

- 201 ``{"uuid", "status", "direction", "conversation_uuid"}`` from Vonage;
- 400 ``invalid_json``, or ``missing_field`` / ``invalid_number`` with ``field`` naming
  ``to`` or ``from``;
- 401 ``api_key_missing``, 403 ``api_key_invalid``;
- 503 ``connect_disabled`` (``CONNECT_API_KEY`` unset) or ``vonage_not_configured`` (the
  message names the missing variables);
- 502 ``vonage_api_error`` (``vonage`` holds Vonage's status, title and detail; all None
  and the message "... Vonage API unreachable" when it could not be reached), 504
  ``upstream_timeout``.

Source: Vonage Voice API reference (https://developer.vonage.com/en/api/voice, "Create an
outbound call"); answer webhook (https://developer.vonage.com/en/voice/voice-api/webhook-reference).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..core.jsonbody import JsonTooDeep, loads_bounded
from ..errors import FeatureDisabled, InvalidRequest, VonageApiError
from ..logs import call_context
from ..phone import e164_digits
from ..web.auth import require_api_key
from ..web.keys import SETTINGS, VOICE_API

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

CONNECT_PATH = "/connect"
MAX_BODY_BYTES = 4096


@routes.post(CONNECT_PATH)
async def connect(request: web.Request) -> web.Response:
    """Dial ``to`` from ``from`` and bridge the call to a Realtime session when answered."""
    require_api_key(request, feature="POST /connect", disabled_code="connect_disabled")
    return await place_call(request.app, lambda: _json_object(request))


async def place_call(
    app: web.Application, read_body: Callable[[], Awaitable[dict[str, Any]]]
) -> web.Response:
    """What ``POST /connect`` does once its caller is authorised (the operator console's
    Dial form calls it too): the responses of the module docstring, except 401/403.

    Args:
        app: the application (settings, Vonage REST client).
        read_body: the request body as a JSON object; raises ``InvalidRequest``.
    Raises:
        FeatureDisabled: Vonage REST credentials missing (503 ``vonage_not_configured``).
        InvalidRequest: from ``read_body`` (400 ``invalid_json``).
    """
    settings = app[SETTINGS]
    vonage = settings.vonage
    api = app.get(VOICE_API)
    if api is None:
        missing = " and ".join(vonage.missing_for_rest)
        raise FeatureDisabled(
            f"POST /connect needs Vonage credentials: {missing} not set",
            code="vonage_not_configured",
        )

    body = await read_body()
    to = _number(body, "to", None)
    from_ = _number(body, "from", vonage.outbound_from)
    if isinstance(to, web.Response):
        return to
    if isinstance(from_, web.Response):
        return from_

    base = settings.server.public_url.http
    try:
        created = await api.create_call(
            to=to, from_=from_, answer_url=f"{base}/answer", event_url=f"{base}/event"
        )
    except VonageApiError as exc:
        # Not the numbers; the network error behind "unreachable", for the operator only.
        cause = exc.__cause__
        log.warning(
            "POST /connect -> %d %s: %s%s",
            exc.http_status,
            exc.code,
            exc.message,
            f" ({type(cause).__name__}: {cause})" if cause is not None else "",
        )
        return web.json_response(
            {
                "error": {
                    "code": exc.code,
                    "message": exc.message,
                    "vonage": {"status": exc.status, "title": exc.title, "detail": exc.detail},
                }
            },
            status=exc.http_status,
        )
    with call_context(created.uuid):
        log.info("outbound call to %s from %s: %s", to, from_, created.status)
    return web.json_response(
        {
            "uuid": created.uuid,
            "status": created.status,
            "direction": created.direction,
            "conversation_uuid": created.conversation_uuid,
        },
        status=201,
    )


async def _json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object.

    Raises:
        InvalidRequest: ``invalid_json`` if it is too large, not JSON (nested deeper than 32
            levels included) or not an object.
    """
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise InvalidRequest(f"body is larger than {MAX_BODY_BYTES} bytes", code="invalid_json")
    raw = await request.read()  # bounded by aiohttp's client_max_size even when chunked
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidRequest(f"body is larger than {MAX_BODY_BYTES} bytes", code="invalid_json")
    try:
        body = loads_bounded(raw) if raw.strip() else None
    except JsonTooDeep as exc:
        raise InvalidRequest(exc.message, code="invalid_json") from None
    except ValueError:
        raise InvalidRequest("body is not JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest(
            'body must be a JSON object like {"to": "+14155550100"}', code="invalid_json"
        )
    return body


def _number(body: dict[str, Any], name: str, default: str | None) -> str | web.Response:
    """Field ``name`` as E.164 digits, ``default`` when absent, or a 400 response naming it."""
    value = body.get(name)
    if value is None:
        if default is not None:
            return default
        hint = " (or set VONAGE_OUTBOUND_FROM)" if name == "from" else ""
        return _field_error(name, f"{name}: is required{hint}", "missing_field")
    try:
        return e164_digits(value)
    except ValueError as exc:
        return _field_error(name, f"{name}: {exc}", "invalid_number")


def _field_error(name: str, message: str, code: str) -> web.Response:
    log.warning("POST /connect -> 400 %s: %s", code, message)
    return web.json_response(
        {"error": {"code": code, "message": message, "field": name}}, status=400
    )

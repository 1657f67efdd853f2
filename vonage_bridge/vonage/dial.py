"""``POST /connect``: place an outbound call that is bridged like an inbound one, through
Vonage (default) or Twilio, with a per-call context, outcome callbacks and voicemail detection.

Guarded by ``X-API-Key`` (``CONNECT_API_KEY``, compared in constant time). Body (only ``to``
is required; the fields are checked by ``core.connect_request``, unknown fields are a 400)::

    {"to": "+81 80-1234-5678", "from": "+815031023332", "region": "JP",
     "via": "vonage" | "twilio", "assistant": "sales",
     "instructions": "Remind {name} of the appointment on {date}.",
     "variables": {"name": "Ann", "date": "Monday"}, "metadata": {"crm_id": 42},
     "status_url": "https://example.com/outcomes",
     "machine_detection": {"on_machine": "hangup" | "leave_message", "message": "..."}}

``from`` defaults to ``VONAGE_OUTBOUND_FROM`` (Vonage) or ``TWILIO_OUTBOUND_FROM`` (Twilio).
Vonage creates the call with ``answer_url`` our ``/answer`` (and Advanced Machine Detection
with ``machine_detection``); Twilio with ``Url`` our Voice webhook and ``StatusCallback`` our
``/twilio/call-status``. The call is then remembered (``outbound.OutboundCalls``) for its
answer, its media socket and its outcomes.

Responses (JSON):

- 201 ``{"uuid", "status", "direction", "conversation_uuid"}`` (Twilio: ``uuid`` is the call
  SID, ``conversation_uuid`` null);
- 400 ``invalid_json``; ``unknown_field`` (``field`` ``body``); ``missing_field`` /
  ``invalid_number`` / ``invalid_field`` with ``field`` naming it; ``callback_secret_missing``
  (``status_url`` without ``CALLBACK_SECRET``);
- 401 ``api_key_missing``, 403 ``api_key_invalid``;
- 503 ``connect_disabled`` (``CONNECT_API_KEY`` unset), ``vonage_not_configured`` or
  ``twilio_not_configured`` (the message names the missing variables);
- 502 ``vonage_api_error`` (``vonage`` holds Vonage's status, title and detail; all None
  and the message "... Vonage API unreachable" when it could not be reached) or
  ``twilio_api_error`` (``twilio`` holds the status and Twilio's code), 504
  ``upstream_timeout``.

Source: Vonage Voice API reference (https://developer.vonage.com/en/api/voice, "Create an
outbound call"); answer webhook (https://developer.vonage.com/en/voice/voice-api/webhook-reference);
Twilio Call resource (https://www.twilio.com/docs/voice/api/call-resource, "Create a Call").
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..config import Settings
from ..core.connect_request import ConnectRequest, InvalidField, parse_connect
from ..errors import FeatureDisabled, NotFound, TwilioApiError, VonageApiError
from ..logs import call_context
from ..outbound import OUTBOUND, OutboundCall
from ..store import FRONT_DOOR_TWILIO, FRONT_DOOR_VONAGE
from ..web.auth import require_api_key
from ..web.body import read_json_object
from ..web.keys import ASSISTANTS, SETTINGS, TWILIO_API, VOICE_API

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

CONNECT_PATH = "/connect"
MAX_BODY_BYTES = 64 * 1024
"""Room for ``instructions`` (8000 characters) and ``variables`` (32 of 1000)."""
TWILIO_ANSWER_PATH = "/twilio/incoming-call"
"""The Twilio Voice webhook (``twilio.routes.ANSWER_PATH``): the outbound call's TwiML URL."""
TWILIO_STATUS_PATH = "/twilio/call-status"
"""The Twilio status callback (``twilio.status.STATUS_PATH``)."""


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
        app: the application (settings, REST clients, outbound registry, assistants).
        read_body: the request body as a JSON object; raises ``InvalidRequest``.
    Raises:
        FeatureDisabled: the carrier's REST credentials missing (503).
        InvalidRequest: from ``read_body`` (400 ``invalid_json``).
    """
    settings = app[SETTINGS]
    body = await read_body()
    try:
        req = parse_connect(body, allow_insecure_urls=settings.webhooks.allow_unsigned)
        await _check_assistant(app, req)
        if req.via == "twilio":
            return await _via_twilio(app, settings, req)
        return await _via_vonage(app, settings, req)
    except InvalidField as exc:
        return _field_error(exc.field, exc.message, exc.code)


async def _check_assistant(app: web.Application, req: ConnectRequest) -> None:
    """An ``assistant`` named at ``/connect`` must exist now (400 ``assistant_not_found``),
    so a typo is refused before the callee's phone rings; a database that is down is a 503
    (``StoreUnavailable``)."""
    name = req.context.assistant
    if name is None:
        return
    try:
        await app[ASSISTANTS].resolve(name, None)
    except NotFound as exc:
        raise InvalidField("assistant", exc.message, code="assistant_not_found") from None


def _check_callbacks(settings: Settings, req: ConnectRequest) -> None:
    if req.status_url is not None and settings.outbound.callback_secret is None:
        raise InvalidField(
            "status_url",
            "needs CALLBACK_SECRET (whsec_...) set on the server to sign the callbacks",
            code="callback_secret_missing",
        )


async def _via_vonage(
    app: web.Application, settings: Settings, req: ConnectRequest
) -> web.Response:
    vonage = settings.vonage
    api = app.get(VOICE_API)
    if api is None:
        missing = " and ".join(vonage.missing_for_rest)
        raise FeatureDisabled(
            f"POST /connect needs Vonage credentials: {missing} not set",
            code="vonage_not_configured",
        )
    from_ = req.from_.lstrip("+") if req.from_ is not None else vonage.outbound_from
    if from_ is None:
        raise InvalidField(
            "from", "is required (or set VONAGE_OUTBOUND_FROM)", code="missing_field"
        )
    _check_callbacks(settings, req)
    to = req.to.lstrip("+")
    base = settings.server.public_url.http
    try:
        created = await api.create_call(
            to=to,
            from_=from_,
            answer_url=f"{base}/answer",
            event_url=f"{base}/event",
            machine_detection=req.machine_detection is not None,
        )
    except VonageApiError as exc:
        _log_refusal(exc)
        vonage_body = {"status": exc.status, "title": exc.title, "detail": exc.detail}
        return _upstream_error(exc, "vonage", vonage_body)
    await _remember(app, req, created.uuid, FRONT_DOOR_VONAGE, to, from_)
    with call_context(created.uuid):
        log.info("outbound call placed via Vonage: %s", created.status)
    return web.json_response(
        {
            "uuid": created.uuid,
            "status": created.status,
            "direction": created.direction,
            "conversation_uuid": created.conversation_uuid,
        },
        status=201,
    )


async def _via_twilio(
    app: web.Application, settings: Settings, req: ConnectRequest
) -> web.Response:
    api = app.get(TWILIO_API)
    if api is None:
        raise FeatureDisabled(
            '"via": "twilio" needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN',
            code="twilio_not_configured",
        )
    md = req.machine_detection
    twilio_from = settings.outbound.twilio_from
    from_ = req.from_ or (f"+{twilio_from}" if twilio_from else None)
    if from_ is None:
        raise InvalidField(
            "from", "is required (or set TWILIO_OUTBOUND_FROM)", code="missing_field"
        )
    _check_callbacks(settings, req)
    base = settings.server.public_url.http
    try:
        created = await api.create_call(
            to=req.to,
            from_=from_,
            url=f"{base}{TWILIO_ANSWER_PATH}",
            status_callback=f"{base}{TWILIO_STATUS_PATH}",
            machine_detection=md is not None,
            message_end=md is not None and md.on_machine == "leave_message",
        )
    except TwilioApiError as exc:
        _log_refusal(exc)
        return _upstream_error(exc, "twilio", {"status": exc.status, "code": exc.twilio_code})
    await _remember(app, req, created.sid, FRONT_DOOR_TWILIO, req.to, from_)
    with call_context(created.sid):
        log.info("outbound call placed via Twilio: %s", created.status)
    return web.json_response(
        {
            "uuid": created.sid,
            "status": created.status,
            "direction": "outbound",
            "conversation_uuid": None,
        },
        status=201,
    )


async def _remember(
    app: web.Application,
    req: ConnectRequest,
    call_id: str,
    front_door: str,
    to: str,
    from_: str,
) -> None:
    await app[OUTBOUND].remember(
        OutboundCall(
            call_id=call_id,
            front_door=front_door,
            to_number=to,
            from_number=from_,
            context=req.context,
            status_url=req.status_url,
            machine_detection=req.machine_detection,
        )
    )


def _log_refusal(exc: VonageApiError | TwilioApiError) -> None:
    # Not the numbers; the network error behind "unreachable", for the operator only.
    cause = exc.__cause__
    log.warning(
        "POST /connect -> %d %s: %s%s",
        exc.http_status,
        exc.code,
        exc.message,
        f" ({type(cause).__name__}: {cause})" if cause is not None else "",
    )


def _upstream_error(
    exc: VonageApiError | TwilioApiError, carrier: str, detail: dict[str, Any]
) -> web.Response:
    return web.json_response(
        {"error": {"code": exc.code, "message": exc.message, carrier: detail}},
        status=exc.http_status,
    )


async def _json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object (``web.body``: 400 ``invalid_json`` otherwise)."""
    return await read_json_object(
        request, max_bytes=MAX_BODY_BYTES, shape='like {"to": "+14155550100"}'
    )


def _field_error(name: str, message: str, code: str) -> web.Response:
    log.warning("POST /connect -> 400 %s: %s", code, message)
    return web.json_response(
        {"error": {"code": code, "message": message, "field": name}}, status=400
    )

"""Vonage routes: answer URL, event URL and the media WebSocket.

When ``VONAGE_SIGNATURE_SECRET`` is set (start-up requires it, unless
``ALLOW_UNSIGNED_WEBHOOKS=true``), the answer and event URLs accept only requests signed by
Vonage (``Authorization: Bearer <JWT>``, checked by ``signing``; 401 JSON otherwise), each
token once (401 ``signature_replayed``), the NCCO asks Vonage to sign the media socket's
handshake too (``"authorization": {"type": "vonage"}``), and the upgrade is refused (401)
without it. Unsigned, the answer URLs mint at most ``UNSIGNED_CALLS_PER_MINUTE`` media
tokens a minute (429). A repeated query parameter is refused (400 ``repeated_parameter``).
The media socket's per-call token is checked either way.

The media socket's call runs on the shared engine (``media_call.serve_media_call``); this module
keeps what is Vonage's: the NCCO answer, the handshake checks, ``websocket:connected``.

Sources: webhooks (https://developer.vonage.com/en/voice/voice-api/webhook-reference), signed
webhooks (https://developer.nexmo.com/voice/voice-api/guides/signed-webhooks), NCCO
(https://developer.vonage.com/en/voice/voice-api/ncco-reference), WebSocket audio
(https://developer.vonage.com/en/voice/voice-api/concepts/websockets).
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import Any
from urllib.parse import urlencode

from aiohttp import WSCloseCode, web

from ..audio.formats import PCM16_24K
from ..audio.path import l16_path
from ..calls import SocketOpening, close_socket, known_call
from ..core.call_data import CallInfo
from ..core.events import CallerConnected
from ..core.frontdoor import CARRIER_SILENT_S, FrontDoor
from ..core.jsonbody import loads_object
from ..errors import Forbidden, InvalidRequest, Unauthorized
from ..logs import call_context
from ..media_call import MediaCall, serve_media_call
from ..outbound import OUTBOUND, note_vonage_event
from ..phone import bounded_headers
from ..store import FRONT_DOOR_VONAGE
from ..tools import ToolContext
from ..web.answer import AnswerWebhook, admit_call
from ..web.claims import spend_shared
from ..web.keys import (
    ASSISTANTS,
    CALLS,
    GUARDS,
    HTTP,
    SETTINGS,
    SIGNER,
    TOOLS,
    VOICE_API,
    WARM_SESSIONS,
    call_deps,
)
from ..web.middleware import CALL_ID, claim_call, count_rejection, error_response
from .ncco import answer_ncco, connect_from_number
from .signing import query_payload, single_values, verify_signed_request
from .voice_api import CallHangUp
from .wire import VONAGE_COMMANDS, parse_text

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

MEDIA_PATH = "/vonage/ws"
MAX_CALLER_MESSAGE_BYTES = 64 * 1024
"""A frame is 320 to 960 bytes (20 ms of L16 at 8 to 24 kHz); anything near this is not audio
we can use (closed with 1009)."""
CONNECTED_TIMEOUT_S = 10.0
ANSWER = AnswerWebhook(
    log,
    "call_uuid",
    "answer URL without a call uuid",
    "answer URL: call from {from} to {to} (conversation {conversation_uuid})",
)
OPENING = SocketOpening("media socket", "websocket:connected", CONNECTED_TIMEOUT_S, parse_text, log)
OUTBOUND_ANSWER_PATH = "/answer"
"""``POST /connect`` gives Vonage this answer URL; ``/incoming-call`` is for inbound calls."""
_FAILED_STATUSES = frozenset({"failed", "rejected", "unanswered", "busy", "timeout", "cancelled"})


async def webhook_body(request: web.Request) -> bytes:
    """The raw body of a POST webhook, ``b""`` for a GET: read once, then handed to both the
    signature check (which hashes it) and :func:`webhook_fields` (which parses it)."""
    return await request.read() if request.method == "POST" else b""


def webhook_fields(request: web.Request, raw: bytes) -> dict[str, Any]:
    """Fields of a Vonage webhook: the query string (GET) or the JSON body ``raw`` (POST, from
    :func:`webhook_body`).

    Raises:
        InvalidRequest: ``repeated_parameter`` if a query parameter is repeated;
            ``invalid_json`` if a POST body is present but is not a JSON object.
    """
    fields: dict[str, Any] = single_values(request.query.items())
    if raw.strip():
        fields.update(loads_object(raw, partial(InvalidRequest, code="invalid_json"), "body"))
    return fields


async def check_signature(
    request: web.Request, body: bytes = b"", *, handshake: bool = False
) -> None:
    """Refuse a request Vonage did not sign, when ``VONAGE_SIGNATURE_SECRET`` is set.

    The hashed payload is the raw ``body`` of a POST (from :func:`webhook_body`), or the
    query parameters as JSON for a GET
    (https://api.support.vonage.com/hc/en-us/articles/19033783342876); for the media
    handshake (``handshake=True``) only the token itself is checked. Each token is good once
    (per instance): its second use is refused as a replay.

    Raises:
        Unauthorized: the signature is missing, invalid or replayed (logged with the reason).
        InvalidRequest: ``repeated_parameter``, a GET's query parameter is repeated.
    """
    secret = request.app[SETTINGS].vonage.signature_secret
    if secret is None:
        return
    payload: bytes | None = None
    if not handshake:
        if request.method == "POST":
            payload = body
        else:
            payload = query_payload(single_values(request.query.items()).items())
    try:
        verify_signed_request(
            request.headers.get("Authorization"),
            secret.get_secret_value(),
            time.time(),
            payload=payload,
            seen=request.app[GUARDS].seen_jwts,
        )
    except Unauthorized:
        claim_call(request, request.get(CALL_ID))  # logged once, by the middleware
        raise


async def verified_fields(request: web.Request) -> dict[str, Any]:
    """Read a webhook once, parse it (:func:`webhook_fields`) and check its signature
    (:func:`check_signature`): its fields. Each refusal is logged once, by the middleware, with
    the call id the request claims (its ``uuid``, at most 64 characters; ``-`` when none).

    Raises:
        InvalidRequest: a repeated query parameter, or a POST body that is not a JSON object.
        Unauthorized: a missing, invalid or replayed signature.
    """
    body = await webhook_body(request)
    claim_call(request, _text(request.query.get("uuid")))
    fields = webhook_fields(request, body)
    claim_call(request, _claimed_call(fields))
    await check_signature(request, body)
    return fields


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _claimed_call(fields: dict[str, Any]) -> str:
    """The call id a webhook names, for its log lines: at most 64 characters, or ``-``."""
    return (_text(fields.get("uuid")) or _text(fields.get("call_uuid")) or "-")[:64]


@routes.route("GET", "/incoming-call")
@routes.route("POST", "/incoming-call")
@routes.route("GET", "/answer")
@routes.route("POST", "/answer")
async def answer(request: web.Request) -> web.Response:
    """Answer URL: a greeting, then ``connect`` to our media socket with a per-call token;
    meanwhile the call's Realtime session opens in the background (``realtime.prewarm``).
    Unsigned (``ALLOW_UNSIGNED_WEBHOOKS=true``), at most ``UNSIGNED_CALLS_PER_MINUTE`` tokens
    a minute are minted; past that, 429 ``too_many_calls``."""
    settings = request.app[SETTINGS]
    fields = await verified_fields(request)
    headers = bounded_headers(
        {
            "call_uuid": _text(fields.get("uuid")),
            "conversation_uuid": _text(fields.get("conversation_uuid")),
            "from": _text(fields.get("from")) or _text(fields.get("from_user")),
            "to": _text(fields.get("to")),
        }
    )
    signed = settings.vonage.signature_secret is not None
    token = admit_call(request, ANSWER, headers, signed=signed)
    if isinstance(token, web.Response):  # 429: over UNSIGNED_CALLS_PER_MINUTE
        return token
    call_uuid = token.call_uuid
    outbound = request.path == OUTBOUND_ANSWER_PATH
    with call_context(call_uuid):
        # The assistant of our number: the one dialled (inbound), or called from (outbound).
        ours = headers.get("from") if outbound else headers.get("to")
        context = await request.app[OUTBOUND].context_for(call_uuid, request.app[ASSISTANTS], ours)
        assistant = context.assistant
        log.info("answered by assistant %s (version %d)", assistant.name, assistant.version)
        # Verified (signed, or under the unsigned limit): open the call's Realtime session
        # while the greeting plays; the media socket adopts it (media_call.serve_media_call).
        request.app[WARM_SESSIONS].start(
            CallInfo(
                call_uuid,
                headers.get("conversation_uuid"),
                caller=headers.get("from"),
                called=headers.get("to"),
            ),
            PCM16_24K,  # vonage_door's Realtime side, whatever the caller's rate
            http=request.app[HTTP],
            settings=settings,
            tools=request.app[TOOLS].declarations(),
            context=context,
        )
    params = {"call_uuid": call_uuid, "exp": token.exp, "token": token.token}
    if outbound:
        params["direction"] = "outbound"  # for the call record only; not a credential
    query = urlencode(params)
    ncco = answer_ncco(
        websocket_uri=f"{settings.server.public_url.ws}{MEDIA_PATH}?{query}",
        headers=headers,
        greeting_text=assistant.greeting.text,
        greeting_language=assistant.greeting.language,
        from_number=connect_from_number(headers.get("to")),
        sample_rate_hz=settings.vonage.audio_rate_hz,
        signed_handshake=settings.vonage.signature_secret is not None,
    )
    return web.json_response(ncco)


@routes.route("GET", "/event")
@routes.route("POST", "/event")
async def event(request: web.Request) -> web.Response:
    """Event URL: log each status against its call uuid; 204 (no NCCO: the call flow goes on)."""
    fields = await verified_fields(request)
    call_uuid = _text(fields.get("uuid")) or _text(fields.get("call_uuid")) or "-"
    status = _text(fields.get("status")) or "?"
    detail = _text(fields.get("detail")) or _text(fields.get("reason"))
    with call_context(call_uuid[:64]):
        level = logging.WARNING if status in _FAILED_STATUSES else logging.INFO
        log.log(
            level,
            "event %s%s (direction %s, to %s)",
            status,
            f" ({detail})" if detail else "",
            _text(fields.get("direction")) or "?",
            _text(fields.get("to")) or "?",
        )
        note_vonage_event(request.app, fields)  # an outbound call's outcome, if it is one
    return web.Response(status=204)


def vonage_door(sample_rate_hz: int, resample_quality: str) -> FrontDoor:
    """Vonage's media socket for one call: L16 at ``sample_rate_hz`` (from
    ``websocket:connected``; ``VONAGE_AUDIO_RATE`` asked for it) resampled to and from 24 kHz
    PCM16, or passed through at 24 kHz (``audio.path.l16_path``); audio in binary messages,
    one 20 ms frame each way; ``notify`` / ``clear`` commands."""
    return FrontDoor(
        FRONT_DOOR_VONAGE,
        l16_path(sample_rate_hz, resample_quality),
        VONAGE_COMMANDS,
        parse_text,
        silent_limit_s=CARRIER_SILENT_S,
    )


@routes.get(MEDIA_PATH)
async def media(request: web.Request) -> web.StreamResponse:
    """Vonage's media socket. Refused before the upgrade, with no Realtime session: 403 JSON
    without a valid, unused media token (``media_token_missing``, ``_invalid``, ``_expired``,
    ``_used``: a token opens one socket) or while the call already has one (``media_busy``),
    one WARNING line with the call id; 401 JSON without Vonage's signed JWT when
    ``VONAGE_SIGNATURE_SECRET`` is set."""
    app = request.app
    settings = app[SETTINGS]
    signer = app[SIGNER]
    q = request.query
    call_uuid = q.get("call_uuid", "")
    exp, token = q.get("exp", ""), q.get("token", "")
    with call_context(call_uuid[:64] or "-"):
        try:
            signer.verify(call_uuid, exp, token, time.time())
        except Forbidden as exc:
            return _refused(request, exc)
        await check_signature(request, handshake=True)
        if call_uuid in app[CALLS]:
            return _refused(
                request,
                Forbidden("a media socket is already open for this call", code="media_busy"),
            )
        # No ping heartbeat (aiohttp re-arms it on every read): the bridge's watch ends a
        # socket silent for CARRIER_SILENT_S instead.
        ws = web.WebSocketResponse(max_msg_size=MAX_CALLER_MESSAGE_BYTES, heartbeat=None)
        if not ws.can_prepare(request).ok:
            raise InvalidRequest("expected a WebSocket upgrade", code="not_websocket")
        try:  # spent now, before the upgrade: a second socket with it is refused above
            signer.redeem(call_uuid, exp, token, time.time())
            await spend_shared(app, call_uuid, exp, token)  # on every instance
        except Forbidden as exc:  # another upgrade spent it while we checked the signature
            return _refused(request, exc)
        await ws.prepare(request)
        api = app.get(VOICE_API)
        # A call whose answer URL had no uuid cannot be hung up over REST.
        control = CallHangUp(api, call_uuid) if api is not None and known_call(call_uuid) else None
        direction = "outbound" if q.get("direction") == "outbound" else "inbound"
        outbound = direction == "outbound"

        async def opening() -> MediaCall | None:
            """Read ``websocket:connected`` and build the call (L16 at the rate it names).

            Returns:
                The call, or None when the opening failed (the socket was closed with the
                reason).
            """
            connected = await _read_connected(ws)
            if connected is None:
                return None
            info = CallInfo(
                call_uuid=call_uuid,
                conversation_uuid=_text(connected.headers.get("conversation_uuid")),
                caller=_text(connected.headers.get("from")),
                called=_text(connected.headers.get("to")),
            )
            log.info("media socket open (%s)", connected.content_type)
            if control is not None:
                control.called = info.called  # a transfer shows the number they dialled
            ctx = ToolContext(
                call_uuid,
                info.caller,
                transfer=control.transfer if control is not None else None,
                front_door=FRONT_DOOR_VONAGE,
                called=info.called,
            )
            door = vonage_door(connected.sample_rate_hz, settings.call.resample_quality)
            context = None
            if outbound and call_uuid not in app[WARM_SESSIONS]:
                # Its answer URL was served by another instance: its own /connect fields.
                context = await app[OUTBOUND].context_for(call_uuid, app[ASSISTANTS], info.caller)
            return MediaCall(door, info, direction, ctx, context)

        deps = await app[OUTBOUND].deps_for(call_uuid, call_deps(app), outbound=outbound)
        await serve_media_call(
            ws, call_uuid, opening, deps=deps, control=control, warm=app[WARM_SESSIONS]
        )
        return ws


def _refused(request: web.Request, exc: Forbidden) -> web.Response:
    """The media upgrade refused: one WARNING line (in the call's log context, no token),
    counted as a rejected webhook, and the 403 JSON body naming the problem."""
    count_rejection(request, exc)
    log.warning("media socket refused: %s", exc.message)
    return error_response(exc.http_status, exc.code, exc.message)


async def _read_connected(ws: web.WebSocketResponse) -> CallerConnected | None:
    """The first message must be ``websocket:connected``; else close with a reason."""
    event = await OPENING.receive(ws, OPENING.deadline())
    if event is None:
        return None
    if not isinstance(event, CallerConnected):
        await close_socket(
            ws, WSCloseCode.PROTOCOL_ERROR, "first message must be websocket:connected"
        )
        log.warning("media socket closed: first message was not websocket:connected")
        return None
    return event

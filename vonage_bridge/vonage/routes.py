"""Vonage routes: answer URL, event URL and the media WebSocket.

When ``VONAGE_SIGNATURE_SECRET`` is set, the answer and event URLs accept only requests
signed by Vonage (``Authorization: Bearer <JWT>``, checked by ``webhook_auth``; 401 JSON
otherwise), the NCCO asks Vonage to sign the media socket's handshake too
(``"authorization": {"type": "vonage"}``), and the upgrade is refused (401) without it. The
media socket's per-call token is checked either way.

The media socket's call runs on the shared engine (``bridge.serve_media_call``); this module
keeps what is Vonage's: the NCCO answer, the handshake checks, ``websocket:connected``.

Sources: webhooks (https://developer.vonage.com/en/voice/voice-api/webhook-reference), signed
webhooks (https://developer.nexmo.com/voice/voice-api/guides/signed-webhooks), NCCO
(https://developer.vonage.com/en/voice/voice-api/ncco-reference), WebSocket audio
(https://developer.vonage.com/en/voice/voice-api/concepts/websockets).
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from aiohttp import WSCloseCode, WSMsgType, web

from ..audio.path import ResamplingPath
from ..bridge import MediaCall, serve_media_call
from ..calls import UNKNOWN_CALL_PREFIX, close_socket, known_call
from ..core.events import CallerConnected
from ..core.frontdoor import FrontDoor
from ..core.jsonbody import loads_bounded
from ..core.session import CallInfo
from ..errors import Forbidden, InvalidRequest, RemoteProtocolError, Unauthorized
from ..logs import call_context
from ..phone import bounded_headers
from ..store import FRONT_DOOR_VONAGE
from ..tools import ToolContext
from ..web.keys import CALLS, SETTINGS, SIGNER, VOICE_API, call_deps
from .ncco import answer_ncco, connect_from_number
from .signing import query_payload, verify_signed_request
from .voice_api import CallHangUp
from .wire import VONAGE_COMMANDS, parse_text

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

MEDIA_PATH = "/vonage/ws"
CALLER_RATE_HZ = 16_000
MAX_CALLER_MESSAGE_BYTES = 64 * 1024
"""A frame is 640 bytes; anything near this is not audio we can use (closed with 1009)."""
CONNECTED_TIMEOUT_S = 10.0
OUTBOUND_ANSWER_PATH = "/answer"
"""``POST /connect`` gives Vonage this answer URL; ``/incoming-call`` is for inbound calls."""
_FAILED_STATUSES = frozenset({"failed", "rejected", "unanswered", "busy", "timeout", "cancelled"})


async def webhook_fields(request: web.Request) -> dict[str, Any]:
    """Fields of a Vonage webhook: the query string (GET) or the JSON body (POST).

    Raises:
        InvalidRequest: if a POST body is present but is not a JSON object.
    """
    fields: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        raw = await request.read()
        if raw.strip():
            try:
                body = loads_bounded(raw)
            except ValueError:
                raise InvalidRequest("body is not JSON", code="invalid_json") from None
            if not isinstance(body, dict):
                raise InvalidRequest("body is not a JSON object", code="invalid_json")
            fields.update(body)
    return fields


async def check_signature(request: web.Request, *, handshake: bool = False) -> None:
    """Refuse a request Vonage did not sign, when ``VONAGE_SIGNATURE_SECRET`` is set.

    The hashed payload is the raw body of a POST, or the query parameters as JSON for a GET
    (https://api.support.vonage.com/hc/en-us/articles/19033783342876); for the media
    handshake (``handshake=True``) only the token itself is checked.

    Raises:
        Unauthorized: the signature is missing or invalid (logged with the reason).
    """
    secret = request.app[SETTINGS].vonage.signature_secret
    if secret is None:
        return
    payload: bytes | None = None
    if not handshake:
        if request.method == "POST":
            payload = await request.read()
        else:
            payload = query_payload(request.query.items())
    try:
        verify_signed_request(
            request.headers.get("Authorization"),
            secret.get_secret_value(),
            time.time(),
            payload=payload,
        )
    except Unauthorized as exc:
        log.warning("%s %s refused: %s", request.method, request.path, exc.message)
        raise


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@routes.route("GET", "/incoming-call")
@routes.route("POST", "/incoming-call")
@routes.route("GET", "/answer")
@routes.route("POST", "/answer")
async def answer(request: web.Request) -> web.Response:
    """Answer URL: a greeting, then ``connect`` to our media socket with a per-call token."""
    settings = request.app[SETTINGS]
    await check_signature(request)
    fields = await webhook_fields(request)
    headers = bounded_headers(
        {
            "call_uuid": _text(fields.get("uuid")),
            "conversation_uuid": _text(fields.get("conversation_uuid")),
            "from": _text(fields.get("from")) or _text(fields.get("from_user")),
            "to": _text(fields.get("to")),
        }
    )
    call_uuid = headers.get("call_uuid")
    if call_uuid is None:
        call_uuid = headers["call_uuid"] = f"{UNKNOWN_CALL_PREFIX}{uuid.uuid4()}"
        log.warning("answer URL without a call uuid; using %s", call_uuid)
    with call_context(call_uuid):
        log.info(
            "answer URL: call from %s to %s (conversation %s)",
            headers.get("from", "?"),
            headers.get("to", "?"),
            headers.get("conversation_uuid", "?"),
        )
    token = request.app[SIGNER].mint(call_uuid, time.time())
    params = {"call_uuid": call_uuid, "exp": token.exp, "token": token.token}
    if request.path == OUTBOUND_ANSWER_PATH:
        params["direction"] = "outbound"  # for the call record only; not a credential
    query = urlencode(params)
    ncco = answer_ncco(
        websocket_uri=f"{settings.server.public_url.ws}{MEDIA_PATH}?{query}",
        headers=headers,
        greeting_text=settings.call.greeting_text,
        greeting_language=settings.call.greeting_language,
        from_number=connect_from_number(headers.get("to")),
        sample_rate_hz=CALLER_RATE_HZ,
        signed_handshake=settings.vonage.signature_secret is not None,
    )
    return web.json_response(ncco)


@routes.route("GET", "/event")
@routes.route("POST", "/event")
async def event(request: web.Request) -> web.Response:
    """Event URL: log each status against its call uuid; 204 (no NCCO: the call flow goes on)."""
    await check_signature(request)
    fields = await webhook_fields(request)
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
    return web.Response(status=204)


def vonage_door(sample_rate_hz: int, resample_quality: str) -> FrontDoor:
    """Vonage's media socket for one call: L16 at ``sample_rate_hz`` (from
    ``websocket:connected``) resampled to and from 24 kHz PCM16; audio in binary messages, one
    20 ms frame each way; ``notify`` / ``clear`` commands."""
    return FrontDoor(
        FRONT_DOOR_VONAGE,
        ResamplingPath(sample_rate_hz, resample_quality),
        VONAGE_COMMANDS,
        parse_text,
    )


@routes.get(MEDIA_PATH)
async def media(request: web.Request) -> web.StreamResponse:
    """Vonage's media socket. Refused (403 JSON, no Realtime session) without a valid token,
    and (401 JSON) without Vonage's signed JWT when ``VONAGE_SIGNATURE_SECRET`` is set."""
    app = request.app
    settings = app[SETTINGS]
    q = request.query
    call_uuid = q.get("call_uuid", "")
    with call_context(call_uuid[:64] or "-"):
        app[SIGNER].verify(call_uuid, q.get("exp", ""), q.get("token", ""), time.time())
        await check_signature(request, handshake=True)
        if call_uuid in app[CALLS]:
            raise Forbidden("a media socket is already open for this call", code="media_busy")
        ws = web.WebSocketResponse(max_msg_size=MAX_CALLER_MESSAGE_BYTES, heartbeat=30.0)
        if not ws.can_prepare(request).ok:
            raise InvalidRequest("expected a WebSocket upgrade", code="not_websocket")
        await ws.prepare(request)
        api = app.get(VOICE_API)
        # A call whose answer URL had no uuid cannot be hung up over REST.
        control = CallHangUp(api, call_uuid) if api is not None and known_call(call_uuid) else None
        direction = "outbound" if q.get("direction") == "outbound" else "inbound"

        async def opening() -> MediaCall | None:
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
            return MediaCall(door, info, direction, ctx)

        await serve_media_call(ws, call_uuid, opening, deps=call_deps(app), control=control)
        return ws


async def _read_connected(ws: web.WebSocketResponse) -> CallerConnected | None:
    """The first message must be ``websocket:connected``; else close with a reason."""
    try:
        msg = await ws.receive(timeout=CONNECTED_TIMEOUT_S)
    except TimeoutError:
        await close_socket(ws, WSCloseCode.PROTOCOL_ERROR, "no websocket:connected within 10 s")
        log.warning("media socket closed: no websocket:connected within 10 s")
        return None
    if msg.type is not WSMsgType.TEXT:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            log.info("media socket closed before websocket:connected")
        else:
            await close_socket(
                ws, WSCloseCode.PROTOCOL_ERROR, "first message must be websocket:connected"
            )
            log.warning("media socket closed: first message was %s, not text", msg.type.name)
        return None
    try:
        event = parse_text(msg.data)
    except RemoteProtocolError as exc:
        await close_socket(ws, WSCloseCode.UNSUPPORTED_DATA, exc.message)
        log.warning("media socket closed: %s", exc.message)
        return None
    if not isinstance(event, CallerConnected):
        await close_socket(
            ws, WSCloseCode.PROTOCOL_ERROR, "first message must be websocket:connected"
        )
        log.warning("media socket closed: first message was not websocket:connected")
        return None
    return event

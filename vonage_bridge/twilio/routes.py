"""Twilio routes: the Voice webhook (TwiML answer) and the Media Streams WebSocket.

Mounted only when ``TWILIO_ACCOUNT_SID`` is set. When ``TWILIO_AUTH_TOKEN`` is set too, the
webhook and the WebSocket upgrade must carry a valid ``X-Twilio-Signature`` (403 JSON
otherwise), checked against our public URL and the one rebuilt from ``X-Forwarded-Proto`` /
``X-Forwarded-Host`` (``twilio_auth``), and calls are hung up and transferred over Twilio's
REST API.

Twilio's ``<Stream url>`` takes no query string, so the per-call media token travels as
``<Parameter>``s and comes back in the ``start`` message's ``customParameters``: a stream
without a valid token is closed (1008) before any Realtime session is opened.

Audio is 8 kHz mu-law both ways, passed through to OpenAI as ``audio/pcmu`` (no resampling);
barge-in, DTMF, tools, transcripts and records go through the same call core as Vonage's.

Source: protocols.md C (TwiML, Media Streams messages, signature); field-notes.md 1.4, 1.6,
1.7, 2.2.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from aiohttp import WSMsgType, web

from ..audio.path import PassthroughPath
from ..bridge import CallerWire, CallSummary, run_call
from ..core.events import StreamConnected, StreamStarted
from ..core.session import CallInfo, CallSession
from ..errors import Forbidden, InvalidRequest, RemoteProtocolError
from ..logs import call_context
from ..store import FRONT_DOOR_TWILIO
from ..tools import ToolContext
from ..web.keys import CALLS, HTTP, SETTINGS, SIGNER, TOOLS, TWILIO_API, LiveCall
from ..web.records import write_call_record
from .rest import TwilioHangUp
from .signature import candidate_urls, signature_algorithm, verify_twilio_signature
from .twiml import answer_twiml, bounded_parameters, dial_twiml
from .wire import STREAM_ENCODING, STREAM_RATE_HZ, TwilioCommands, parse_message

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

ANSWER_PATH = "/twilio/incoming-call"
MEDIA_PATH = "/twilio/media-stream"
START_TIMEOUT_S = 10.0
"""``connected`` and ``start`` must arrive within this after the upgrade."""
MAX_MESSAGE_BYTES = 64 * 1024
"""A 20 ms ``media`` message is about 400 bytes; anything near this is not one (close 1009)."""
CLOSE_POLICY = 1008
CLOSE_PROTOCOL = 1002
UNKNOWN_CALL_PREFIX = "unknown-"


def _check_signature(request: web.Request, params: Mapping[str, str] | None) -> None:
    """Refuse a request Twilio did not sign, when ``TWILIO_AUTH_TOKEN`` is set.

    Raises:
        Forbidden: the ``X-Twilio-Signature`` header is missing or matches no candidate URL
            (logged with the reason).
    """
    settings = request.app[SETTINGS]
    token = settings.twilio.auth_token
    if token is None:
        return
    headers = request.headers
    urls = candidate_urls(
        public_url=settings.server.public_url,
        path_qs=request.raw_path,
        scheme=request.scheme,
        host=request.host,
        forwarded_proto=headers.get("X-Forwarded-Proto"),
        forwarded_host=headers.get("X-Forwarded-Host"),
        websocket=params is None,
    )
    try:
        verify_twilio_signature(
            token.get_secret_value(),
            urls,
            params,
            headers.get("X-Twilio-Signature"),
            algorithm=signature_algorithm(headers.get("X-Twilio-Webhooks-Signature-Settings")),
        )
    except Forbidden as exc:
        log.warning("%s %s refused: %s", request.method, request.path, exc.message)
        raise


@routes.post(ANSWER_PATH)
async def incoming_call(request: web.Request) -> web.Response:
    """Twilio's Voice webhook (form-encoded): TwiML with the greeting, then
    ``<Connect><Stream>`` to our media socket with the caller, the called number and a
    per-call media token as ``<Parameter>``s."""
    settings = request.app[SETTINGS]
    form = await request.post()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    _check_signature(request, fields)  # Twilio posts text fields only
    parameters = bounded_parameters(fields)
    call_sid = parameters.get("call_sid")
    if call_sid is None:
        call_sid = parameters["call_sid"] = f"{UNKNOWN_CALL_PREFIX}{uuid.uuid4()}"
        log.warning("Twilio webhook without a CallSid; using %s", call_sid)
    with call_context(call_sid):
        log.info(
            "Twilio call from %s to %s (%s)",
            parameters.get("from", "?"),
            parameters.get("to", "?"),
            parameters.get("direction", "?"),
        )
    token = request.app[SIGNER].mint(call_sid, time.time())
    parameters["exp"] = str(token.exp)
    parameters["token"] = token.token
    twiml = answer_twiml(
        stream_url=f"{settings.server.public_url.ws}{MEDIA_PATH}",
        parameters=parameters,
        greeting_text=settings.call.greeting_text,
        greeting_language=settings.call.greeting_language,
    )
    return web.Response(text=twiml, content_type="text/xml")


@routes.get(MEDIA_PATH)
async def media_stream(request: web.Request) -> web.StreamResponse:
    """Twilio's Media Streams socket. The upgrade is refused (403 JSON) without a valid
    signature when ``TWILIO_AUTH_TOKEN`` is set; the stream is closed (1008, no Realtime
    session) when ``start`` carries no valid media token."""
    _check_signature(request, None)
    ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, heartbeat=30.0)
    if not ws.can_prepare(request).ok:
        raise InvalidRequest("expected a WebSocket upgrade", code="not_websocket")
    await ws.prepare(request)
    start = await _read_start(ws)
    if start is None:
        return ws
    call_sid = start.call_sid
    with call_context(call_sid[:64]):
        params = start.custom_parameters
        signer = request.app[SIGNER]
        try:
            if params.get("call_sid") != call_sid:
                raise Forbidden("stream is not for the call its token was minted for")
            signer.verify(call_sid, params.get("exp", ""), params.get("token", ""), time.time())
        except Forbidden as exc:
            log.warning("Twilio stream refused: %s", exc.message)
            await ws.close(code=CLOSE_POLICY, message=b"invalid media token")
            return ws
        calls = request.app[CALLS]
        if call_sid in calls:
            log.warning("Twilio stream refused: a media socket is already open for this call")
            await ws.close(code=CLOSE_POLICY, message=b"a media socket is already open")
            return ws
        await _bridge(request, ws, start)
    return ws


async def _bridge(request: web.Request, ws: web.WebSocketResponse, start: StreamStarted) -> None:
    """Run one accepted Twilio call to its end and write its record."""
    app = request.app
    settings = app[SETTINGS]
    call_sid = start.call_sid
    params = start.custom_parameters
    api = app.get(TWILIO_API)
    known = not call_sid.startswith(UNKNOWN_CALL_PREFIX)
    hang_up = TwilioHangUp(api, call_sid) if api is not None and known else None
    info = CallInfo(call_uuid=call_sid, caller=params.get("from"), called=params.get("to"))
    log.info("Twilio media stream %s open (%s)", start.stream_sid, start.encoding)
    commands = TwilioCommands(start.stream_sid)
    session = CallSession(
        info,
        openai=settings.openai,
        call=settings.call,
        tools=app[TOOLS].declarations(),
        path=PassthroughPath(),
        commands=commands,
    )

    async def transfer(number: str) -> None:
        if api is None:
            raise RuntimeError("Twilio REST is not configured (TWILIO_AUTH_TOKEN)")
        await api.update_twiml(call_sid, dial_twiml(number))

    ctx = ToolContext(
        call_sid, info.caller, transfer=transfer if api is not None else None, front_door="twilio"
    )
    wire = CallerWire("Twilio", parse_message, binary_audio=False, media=commands.media)
    direction = "outbound" if params.get("direction", "").startswith("outbound") else "inbound"
    task = asyncio.current_task()
    assert task is not None
    calls = app[CALLS]
    calls[call_sid] = LiveCall(call_sid, ws, task, hang_up)  # removed in the finally below
    started_at = datetime.now(UTC)
    summary: CallSummary | None = None
    try:
        summary = await run_call(
            ws,
            session,
            http=app[HTTP],
            openai=settings.openai,
            hang_up=hang_up,
            tools=app[TOOLS],
            tool_ctx=ctx,
            wire=wire,
        )
    finally:
        await write_call_record(
            app,
            session,
            summary,
            direction=direction,
            started_at=started_at,
            front_door=FRONT_DOOR_TWILIO,
        )
        calls.pop(call_sid, None)


async def _read_start(ws: web.WebSocketResponse) -> StreamStarted | None:
    """Read ``connected`` (optional) then ``start``; else close with a reason and log."""
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
    for _ in range(2):
        left = deadline - asyncio.get_running_loop().time()
        try:
            msg = await ws.receive(timeout=max(left, 0.001))
        except TimeoutError:
            await ws.close(code=CLOSE_PROTOCOL, message=b"no start message within 10 s")
            log.warning("Twilio stream closed: no start message within 10 s")
            return None
        if msg.type is not WSMsgType.TEXT:
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                log.info("Twilio stream closed before its start message")
            else:
                await ws.close(code=CLOSE_PROTOCOL, message=b"expected a JSON text message")
                log.warning("Twilio stream closed: %s message before start", msg.type.name)
            return None
        try:
            event = parse_message(msg.data)
        except RemoteProtocolError as exc:
            await ws.close(code=1003, message=exc.message.encode()[:123])
            log.warning("Twilio stream closed: %s", exc.message)
            return None
        if isinstance(event, StreamStarted):
            if event.encoding != STREAM_ENCODING or event.sample_rate_hz != STREAM_RATE_HZ:
                fmt = f"{event.encoding} at {event.sample_rate_hz} Hz"
                await ws.close(code=1003, message=f"unsupported media format {fmt}".encode())
                log.warning("Twilio stream closed: unsupported media format %s", fmt)
                return None
            return event
        if not isinstance(event, StreamConnected):
            break
    await ws.close(code=CLOSE_PROTOCOL, message=b"expected connected, then start")
    log.warning("Twilio stream closed: the first messages were not connected and start")
    return None

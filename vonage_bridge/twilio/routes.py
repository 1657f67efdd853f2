"""Twilio routes: the Voice webhook (TwiML answer) and the Media Streams WebSocket.

Mounted only when ``TWILIO_ACCOUNT_SID`` is set; start-up then requires ``TWILIO_AUTH_TOKEN``
unless ``ALLOW_UNSIGNED_WEBHOOKS=true``. With ``TWILIO_AUTH_TOKEN``, the webhook and the
WebSocket upgrade must carry a valid ``X-Twilio-Signature`` (403 JSON otherwise), checked
against our public URL and the one rebuilt from ``X-Forwarded-Proto`` / ``X-Forwarded-Host``
(``signature``), and calls are hung up and transferred over Twilio's REST API.

Twilio's ``<Stream url>`` takes no query string, so the per-call media token travels as
``<Parameter>``s and comes back in the ``start`` message's ``customParameters``: a stream
without a valid token is closed (1008) before any Realtime session is opened.

Audio is 8 kHz mu-law both ways, passed through to OpenAI as ``audio/pcmu`` (no resampling);
the call runs on the shared engine (``media_call.serve_media_call``), so barge-in, DTMF, tools,
transcripts and records are the same as Vonage's. Transfers replace the call's TwiML with
``<Dial>`` (``TwilioHangUp.transfer``).

Sources: TwiML ``<Stream>`` (https://www.twilio.com/docs/voice/twiml/stream), Media Streams
messages (https://www.twilio.com/docs/voice/media-streams/websocket-messages), webhook
signatures (https://www.twilio.com/docs/usage/webhooks/webhooks-security).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from aiohttp import WSCloseCode, web
from multidict import MultiDictProxy

from ..audio.formats import PCMU_8K
from ..audio.path import PassthroughPath
from ..calls import SocketOpening, close_socket, known_call
from ..core.call_data import CallInfo
from ..core.events import StreamConnected, StreamStarted
from ..core.frontdoor import CARRIER_SILENT_S, FrontDoor
from ..core.replay import SeenIds
from ..errors import Forbidden, InvalidRequest
from ..logs import call_context
from ..media_call import MediaCall, serve_media_call
from ..metrics import REJECT_TOKEN
from ..outbound import OUTBOUND
from ..store import FRONT_DOOR_TWILIO
from ..web.answer import AnswerWebhook, admit_call
from ..web.claims import first_stream, spend_shared
from ..web.keys import (
    ASSISTANTS,
    CALLS,
    HTTP,
    SETTINGS,
    SIGNER,
    TOOLS,
    TWILIO_API,
    WARM_SESSIONS,
    call_deps,
)
from ..web.middleware import claim_call, count_refusal
from .rest import TwilioHangUp
from .signature import candidate_urls, signature_algorithm, verify_twilio_signature
from .twiml import answer_twiml, bounded_parameters
from .wire import STREAM_ENCODING, STREAM_RATE_HZ, TwilioCommands, parse_message

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

ANSWER_PATH = "/twilio/incoming-call"
MEDIA_PATH = "/twilio/media-stream"
START_TIMEOUT_S = 10.0
"""``connected`` and ``start`` must arrive within this after the upgrade."""
OPENING = SocketOpening("Twilio stream", "start message", START_TIMEOUT_S, parse_message, log)
ANSWER = AnswerWebhook(
    log,
    "call_sid",
    "Twilio webhook without a CallSid",
    "Twilio call from {from} to {to} ({direction})",
)
MAX_MESSAGE_BYTES = 64 * 1024
"""A 20 ms ``media`` message is about 400 bytes; anything near this is not one (close 1009)."""


STREAM_MEMORY_S = 24 * 3600.0
"""How long a CallSid whose stream started is remembered (refusing another stream for it)."""
MAX_STREAMS_REMEMBERED = 10_000
"""CallSids remembered per instance; past this the oldest is forgotten first. The guard is per
instance; the call store keeps a call's first record either way."""
STREAMS_STARTED = web.AppKey("twilio_streams_started", SeenIds)
"""CallSids whose Media Stream started on this instance (:func:`setup_twilio`)."""


def setup_twilio(app: web.Application) -> None:
    """Mount the Twilio routes and their state (call only with ``TWILIO_ACCOUNT_SID``)."""
    app[STREAMS_STARTED] = SeenIds(MAX_STREAMS_REMEMBERED, ttl_s=STREAM_MEMORY_S)
    app.router.add_routes(routes)


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
    except Forbidden:
        claim_call(request, (params or {}).get("CallSid"))  # logged once, by the middleware
        raise


@routes.post(ANSWER_PATH)
async def incoming_call(request: web.Request) -> web.Response:
    """Twilio's Voice webhook (form-encoded): TwiML with the greeting, then
    ``<Connect><Stream>`` to our media socket with the caller, the called number and a
    per-call media token as ``<Parameter>``s; meanwhile the call's Realtime session opens in
    the background (``realtime.prewarm``). Unsigned (no ``TWILIO_AUTH_TOKEN``, with
    ``ALLOW_UNSIGNED_WEBHOOKS=true``), it shares the Vonage answer URLs' limit of
    ``UNSIGNED_CALLS_PER_MINUTE`` tokens a minute; past that, 429 ``too_many_calls``."""
    settings = request.app[SETTINGS]
    form = await _read_form(request)
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    _check_signature(request, fields)  # Twilio posts text fields only
    parameters = bounded_parameters(fields)
    token = admit_call(request, ANSWER, parameters, signed=settings.twilio.auth_token is not None)
    if isinstance(token, web.Response):  # 429: over UNSIGNED_CALLS_PER_MINUTE
        return token
    call_sid = token.call_uuid
    outbound = parameters.get("direction", "").startswith("outbound")
    with call_context(call_sid):
        # The assistant of our number: the one dialled (inbound), or called from (outbound).
        ours = parameters.get("from") if outbound else parameters.get("to")
        context = await request.app[OUTBOUND].context_for(call_sid, request.app[ASSISTANTS], ours)
        assistant = context.assistant
        log.info("answered by assistant %s (version %d)", assistant.name, assistant.version)
        # Verified (signed, or under the unsigned limit): open the call's Realtime session
        # while the greeting plays; the media stream adopts it (media_call.serve_media_call).
        request.app[WARM_SESSIONS].start(
            CallInfo(call_sid, caller=parameters.get("from"), called=parameters.get("to")),
            PCMU_8K,  # twilio_door's Realtime side: mu-law passed through
            http=request.app[HTTP],
            settings=settings,
            tools=request.app[TOOLS].declarations(),
            context=context,
        )
    parameters["exp"] = str(token.exp)
    parameters["token"] = token.token
    twiml = answer_twiml(
        stream_url=f"{settings.server.public_url.ws}{MEDIA_PATH}",
        parameters=parameters,
        greeting_text=assistant.greeting.text,
        greeting_language=assistant.greeting.language,
    )
    return web.Response(text=twiml, content_type="text/xml")


@routes.get(MEDIA_PATH)
async def media_stream(request: web.Request) -> web.StreamResponse:
    """Twilio's Media Streams socket. The upgrade is refused (403 JSON) without a valid
    signature when ``TWILIO_AUTH_TOKEN`` is set. The stream is closed with 1008 and a reason,
    before any Realtime session and with one WARNING line, when ``start`` carries no valid,
    unused media token (``invalid media token``: a token opens one stream), while the call
    has a stream open, or when a stream for its CallSid already started on this instance
    or, with PostgreSQL, on any other (a replayed webhook mints a new token: Twilio's
    signature has no timestamp), even one that has ended (remembered
    :data:`STREAM_MEMORY_S`)."""
    _check_signature(request, None)
    # No ping heartbeat (aiohttp re-arms it on every read): the bridge's watch ends a
    # socket silent for CARRIER_SILENT_S instead.
    ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, heartbeat=None)
    if not ws.can_prepare(request).ok:
        raise InvalidRequest("expected a WebSocket upgrade", code="not_websocket")
    await ws.prepare(request)
    start = await _read_start(ws)
    if start is None:
        return ws
    call_sid = start.call_sid
    with call_context(call_sid[:64]):
        params = start.custom_parameters
        app = request.app
        signer = app[SIGNER]
        exp, token = params.get("exp", ""), params.get("token", "")
        now = time.time()
        try:
            if params.get("call_sid") != call_sid:
                raise Forbidden("stream is not for the call its token was minted for")
            signer.verify(call_sid, exp, token, now)
        except Forbidden as exc:
            log.warning("Twilio stream refused: %s", exc.message)
            count_refusal(request, REJECT_TOKEN)
            await close_socket(ws, WSCloseCode.POLICY_VIOLATION, "invalid media token")
            return ws
        if call_sid in app[CALLS]:
            log.warning("Twilio stream refused: a media socket is already open for this call")
            count_refusal(request, REJECT_TOKEN)
            await close_socket(ws, WSCloseCode.POLICY_VIOLATION, "a media socket is already open")
            return ws
        started = app[STREAMS_STARTED]
        if started.seen(call_sid, now):
            log.warning("Twilio stream refused: a stream for this call already started")
            count_refusal(request, REJECT_TOKEN)
            await close_socket(
                ws, WSCloseCode.POLICY_VIOLATION, "a stream for this call already started"
            )
            return ws
        # No await since the checks: spend the token and claim the call at once.
        signer.redeem(call_sid, exp, token, now)
        started.check_and_add(call_sid, now)  # remembered STREAM_MEMORY_S
        try:  # then on every instance (web.claims)
            await spend_shared(app, call_sid, exp, token)
            if not await first_stream(app, call_sid, STREAM_MEMORY_S):
                raise Forbidden("a stream for this call already started on another instance")
        except Forbidden as exc:
            log.warning("Twilio stream refused: %s", exc.message)
            await close_socket(ws, WSCloseCode.POLICY_VIOLATION, "invalid media token")
            return ws
        await _bridge(request, ws, start)
    return ws


def twilio_door(stream_sid: str) -> FrontDoor:
    """Twilio's Media Stream for one call: 8 kHz mu-law passed through as ``audio/pcmu``;
    everything in JSON text messages (one ``media`` message per batch of reply frames);
    ``mark`` / ``clear`` commands naming ``stream_sid``."""
    commands = TwilioCommands(stream_sid)
    return FrontDoor(
        FRONT_DOOR_TWILIO,
        PassthroughPath(),
        commands,
        parse_message,
        binary_audio=False,
        media=commands.media,
        silent_limit_s=CARRIER_SILENT_S,
    )


async def _bridge(request: web.Request, ws: web.WebSocketResponse, start: StreamStarted) -> None:
    """Run one accepted Twilio call on the shared engine, to its end and its record."""
    app = request.app
    call_sid = start.call_sid
    params = start.custom_parameters
    api = app.get(TWILIO_API)
    control = TwilioHangUp(api, call_sid) if api is not None and known_call(call_sid) else None
    info = CallInfo(call_uuid=call_sid, caller=params.get("from"), called=params.get("to"))
    log.info("Twilio media stream %s open (%s)", start.stream_sid, start.encoding)
    direction = "outbound" if params.get("direction", "").startswith("outbound") else "inbound"
    outbound = direction == "outbound"
    context = None
    if outbound and call_sid not in app[WARM_SESSIONS]:
        # Its TwiML URL was served by another instance: its own /connect fields.
        context = await app[OUTBOUND].context_for(call_sid, app[ASSISTANTS], info.caller)
    call = MediaCall(twilio_door(start.stream_sid), info, direction, context=context)

    async def opening() -> MediaCall:
        """The call, already built (``connected`` and ``start`` were read before the token
        check)."""
        return call  # connected and start were read before the token check

    deps = await app[OUTBOUND].deps_for(call_sid, call_deps(app), outbound=outbound)
    await serve_media_call(
        ws, call_sid, opening, deps=deps, control=control, warm=app[WARM_SESSIONS]
    )


async def _read_start(ws: web.WebSocketResponse) -> StreamStarted | None:
    """Read ``connected`` (optional) then ``start``; else close with a reason and log."""
    deadline = OPENING.deadline()
    for _ in range(2):
        event = await OPENING.receive(ws, deadline)
        if event is None:
            return None
        if isinstance(event, StreamStarted):
            if event.encoding != STREAM_ENCODING or event.sample_rate_hz != STREAM_RATE_HZ:
                fmt = f"{event.encoding} at {event.sample_rate_hz} Hz"
                await close_socket(
                    ws, WSCloseCode.UNSUPPORTED_DATA, f"unsupported media format {fmt}"
                )
                log.warning("Twilio stream closed: unsupported media format %s", fmt)
                return None
            return event
        if not isinstance(event, StreamConnected):
            break
    await close_socket(ws, WSCloseCode.PROTOCOL_ERROR, "expected connected, then start")
    log.warning("Twilio stream closed: the first messages were not connected and start")
    return None


async def _read_form(
    request: web.Request,
) -> MultiDictProxy[str | bytes | bytearray | web.FileField]:
    """The webhook's form fields (Twilio posts ``application/x-www-form-urlencoded``).

    Raises:
        InvalidRequest: ``invalid_form`` when the body cannot be parsed as a form: bytes that
            are not in its charset, an unknown charset, a broken multipart body (aiohttp
            raises ``UnicodeDecodeError``, ``LookupError``, ``ValueError``,
            ``HttpProcessingError``... for these).
        web.HTTPRequestEntityTooLarge: over the app's ``client_max_size`` (413).
        web.RequestPayloadError: an undecodable ``Content-Encoding`` (400, by the middleware).
    """
    try:
        return await request.post()
    except (web.HTTPException, web.RequestPayloadError):
        raise
    except Exception as exc:  # aiohttp's form and multipart readers, on a hostile body
        raise InvalidRequest(
            f"form body could not be parsed ({type(exc).__name__})", code="invalid_form"
        ) from None

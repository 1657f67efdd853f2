"""The application factory: ``make_app(settings)``. Tests and the simulation use it too.

Sources: aiohttp's application factory, typed ``AppKey``s, ``cleanup_ctx`` and graceful
shutdown (https://docs.aiohttp.org/en/stable/web_advanced.html).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from .. import __version__
from ..assistants import routes as assistants_api
from ..assistants.book import Assistants
from ..assistants.startup import assistants_ctx
from ..calls import LiveCall
from ..config import Settings
from ..console import setup_console
from ..core.assistant import default_assistant
from ..core.media_token import MediaTokenSigner
from ..errors import ConfigError
from ..openai_sip.routes import setup_sip
from ..outbound import setup_outbound
from ..realtime.prewarm import WarmSessions
from ..store import CallStore, SqlCallStore
from ..tools import ToolRegistry, build_registry
from ..twilio import routes as twilio
from ..twilio.rest import TwilioApi
from ..vonage import dial
from ..vonage import routes as vonage
from ..vonage.voice_api import VoiceApi
from . import calls_api, index, recordings
from .cluster_api import cluster_context, setup_cluster
from .guards import WebhookGuards
from .keys import (
    ASSISTANTS,
    CALLS,
    GUARDS,
    HTTP,
    SETTINGS,
    SIGNER,
    SIP,
    STORE,
    TOOLS,
    TWILIO_API,
    VOICE_API,
    WARM_SESSIONS,
)
from .lifecycle import is_draining, setup_lifecycle
from .metrics_site import metrics_site
from .middleware import json_errors

log = logging.getLogger(__name__)


async def health(request: web.Request) -> web.Response:
    """``GET /health``: 200 ``{"status": "ok", "version", "calls"}``; ``calls`` counts every
    live call: media sockets (Vonage, Twilio) and OpenAI SIP calls being accepted or steered
    (``SipState.calls``). While draining (``web.lifecycle``): 503 ``{"status": "draining",
    ...}``, so the balancer sends new calls to another instance."""
    app = request.app
    sip = app.get(SIP)
    calls = len(app[CALLS]) + (len(sip.calls) if sip is not None else 0)
    draining = is_draining(app)
    return web.json_response(
        {"status": "draining" if draining else "ok", "version": __version__, "calls": calls},
        status=503 if draining else 200,
    )


async def _http_client(app: web.Application) -> AsyncIterator[None]:
    # No connection limit: each live call holds one Realtime socket.
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        app[HTTP] = http
        vonage = app[SETTINGS].vonage
        if not vonage.missing_for_rest:
            app[VOICE_API] = VoiceApi(http, vonage)
        tw = app[SETTINGS].twilio
        if tw.enabled and tw.verify:
            app[TWILIO_API] = TwilioApi(http, tw)
        yield


def describe_database(database_url: str) -> str:
    """``DATABASE_URL`` for the log, never with its password: ``SQLite file /abs/calls.db``,
    ``SQLite in memory, lost at exit``, or
    ``PostgreSQL database calls on db.example:5432 as user app``.

    Raises:
        sqlalchemy.exc.ArgumentError: if the value is not a database URL.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = url.database or ""
        if path in ("", ":memory:"):
            return "SQLite in memory, lost at exit"
        return f"SQLite file {os.path.abspath(path)}"
    where = f"{url.host}:{url.port or 5432}" if url.host else "the default host"
    user = f" as user {url.username}" if url.username else ""
    return f"PostgreSQL database {url.database or '(default)'} on {where}{user}"


def _reason(exc: BaseException) -> str:
    """An exception on one line; a driver error without SQLAlchemy's SQL and link lines."""
    inner = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = " ".join(str(inner).split())[:300]
    return f"{inner.__class__.__name__}: {text}" if text else inner.__class__.__name__


async def _call_store(app: web.Application) -> AsyncIterator[None]:
    """Open the call-record store (creating its tables) and close it after the calls.

    SQLite that cannot be opened stops start-up: a :class:`ConfigError` naming
    ``DATABASE_URL`` and the file. PostgreSQL that cannot be reached is an optional part
    missing: one ERROR line, calls are not recorded and ``GET /calls`` answers 503 until a
    restart. Logs which database holds the records (never the password).
    """
    settings = app[SETTINGS].store
    where = describe_database(settings.database_url)
    store: SqlCallStore | None = None
    try:
        store = await SqlCallStore.open(settings.database_url)
    except Exception as exc:
        if not settings.is_postgresql:
            problem = f"DATABASE_URL: cannot open the {where}: {_reason(exc)}"
            raise ConfigError([problem]) from exc
        log.error(
            "call records OFF: %s (DATABASE_URL) unreachable at start-up: %s; "
            "calls are not recorded and GET /calls answers 503",
            where,
            _reason(exc),
        )
    if store is None:
        yield
        return
    app[STORE] = store
    log.info("call records: %s (DATABASE_URL)", where)
    try:
        yield
    finally:
        await store.close()


async def _close_warm_sessions(app: web.Application) -> None:
    """``on_shutdown``: close the Realtime sessions opened by answer URLs and not yet adopted
    (no more are opened)."""
    await app[WARM_SESSIONS].close()


def _startup_report(settings: Settings, tools: ToolRegistry) -> None:
    s = settings.server
    log.info(
        "vonage-bridge %s: answer URL %s/incoming-call, event URL %s/event, model %s",
        __version__,
        s.public_url.http,
        s.public_url.http,
        settings.openai.model,
    )
    for warning in settings.warnings:  # e.g. a missing persona file
        log.warning("%s", warning)
    if s.media_token_secret_is_random:
        log.info(
            "MEDIA_TOKEN_SECRET not set: media tokens are valid on this instance only "
            "(set it when several instances serve one Vonage application)"
        )
    v = settings.vonage
    if v.signature_secret:
        log.info("signed webhooks: answer/event URLs and the media socket require a Vonage JWT")
    else:
        log.warning(
            "VONAGE_SIGNATURE_SECRET not set: webhooks and the media handshake are NOT verified "
            "(the media socket still needs its per-call token)"
        )
    _unsigned_report(settings)
    if v.missing_for_rest:
        half = len(v.missing_for_rest) == 1  # one of the pair is set: likely a mistake
        log.log(
            logging.WARNING if half else logging.INFO,
            "Vonage REST off (%s not set): no outbound calls, no REST hang-up",
            " and ".join(v.missing_for_rest),
        )
    sip = settings.sip
    if sip.webhook_secret:
        target = f"sip:{sip.project_id}@sip.api.openai.com;transport=tls"
        log.info(
            "OpenAI SIP front door ON: webhook URL %s/openai/webhook; SIP URI %s",
            s.public_url.http,
            target if sip.project_id else "sip:<OPENAI_PROJECT_ID>@sip.api.openai.com",
        )
    else:
        log.info("OpenAI SIP front door off (OPENAI_WEBHOOK_SECRET not set)")
    _twilio_report(settings)
    doors = ["Vonage"]
    if settings.twilio.enabled:
        doors.append("Twilio")
    if sip.webhook_secret:
        doors.append("OpenAI SIP")
    log.info("front doors on: %s", ", ".join(doors))
    if v.missing_for_connect:
        log.info(
            "POST /connect is off: %s not set (it answers 503)", ", ".join(v.missing_for_connect)
        )
    else:
        log.info("POST /connect is on (X-API-Key), Vonage API %s", v.api_url)
    module = settings.call.tools_module
    log.info(
        "tools loaded: %s (%s)",
        ", ".join(tools.names),
        f"TOOLS_MODULE={module}" if module else "built-in only, TOOLS_MODULE not set",
    )


def _unsigned_report(settings: Settings) -> None:
    """Say, at WARNING, that the deployer opted out of verification and what is unsigned."""
    if not settings.webhooks.allow_unsigned:
        return  # start-up refused any unsigned front door (Settings.from_env)
    unsigned = [] if settings.vonage.signature_secret else ["Vonage"]
    if settings.twilio.enabled and not settings.twilio.verify:
        unsigned.append("Twilio")
    if not unsigned:
        log.info("ALLOW_UNSIGNED_WEBHOOKS=true has no effect: every front door is verified")
        return
    log.warning(
        "ALLOW_UNSIGNED_WEBHOOKS=true: the %s front door%s take%s unsigned webhooks; their "
        "answer URLs mint at most %d media tokens a minute (UNSIGNED_CALLS_PER_MINUTE, then "
        "429), each a paid Realtime session: for local runs only",
        " and ".join(unsigned),
        "s" if len(unsigned) > 1 else "",
        "" if len(unsigned) > 1 else "s",
        settings.webhooks.unsigned_calls_per_minute,
    )


def _twilio_report(settings: Settings) -> None:
    tw = settings.twilio
    if not tw.enabled:
        log.info("Twilio front door off (TWILIO_ACCOUNT_SID not set)")
        return
    base = settings.server.public_url.http
    log.info(
        "Twilio front door ON: Voice webhook (A call comes in, HTTP POST) %s%s",
        base,
        twilio.ANSWER_PATH,
    )
    if tw.verify:
        log.info("Twilio requests are verified (X-Twilio-Signature); REST API %s", tw.api_url)
    else:
        log.warning(
            "TWILIO_AUTH_TOKEN not set: Twilio requests are NOT verified and calls cannot be "
            "hung up or transferred over REST (the media stream still needs its per-call token)"
        )


def make_app(settings: Settings, *, store: CallStore | None = None) -> web.Application:
    """Build the aiohttp application for ``settings``.

    Routes: ``GET /health``; ``GET /`` (an index, ``web/index.py``); answer URL
    ``/incoming-call`` and ``/answer`` (GET, POST); event URL ``/event`` (GET, POST); media
    WebSocket ``/vonage/ws``; with ``TWILIO_ACCOUNT_SID``,
    the Twilio Voice webhook ``POST /twilio/incoming-call`` and Media Streams socket
    ``/twilio/media-stream``; ``POST /connect`` (outbound
    calls; answers 503 while its settings are missing); ``GET /calls`` and
    ``GET /calls/{uuid}`` (call records); ``GET /assistants``, ``GET/PUT/DELETE
    /assistants/{name}`` (``assistants.routes``); the operator console under ``/console`` (its
    own module, ``console``). With ``METRICS_PORT`` (not 0), ``GET /metrics`` on that port, a
    site of its own (``metrics_site``). ``store`` replaces the store ``DATABASE_URL`` names
    (the caller then owns it and closes it).
    """
    app = web.Application(middlewares=[json_errors])
    app[SETTINGS] = settings
    app[SIGNER] = MediaTokenSigner(
        settings.server.media_token_secret.get_secret_value(), settings.server.media_token_ttl_s
    )
    calls: dict[str, LiveCall] = {}
    app[CALLS] = calls
    app[WARM_SESSIONS] = WarmSessions(calls.__len__)
    app[GUARDS] = WebhookGuards.for_settings(settings)
    app[TOOLS] = build_registry(
        transfer_number=settings.call.transfer_number,
        rest_configured=not settings.vonage.missing_for_rest
        or (settings.twilio.enabled and settings.twilio.verify),
        tools_module=settings.call.tools_module,
    )
    app.router.add_get("/health", health)
    app.router.add_routes(index.routes)
    app.router.add_routes(vonage.routes)
    app.router.add_routes(dial.routes)
    setup_cluster(app)  # GET /calls/live before GET /calls/{call_uuid}
    app.router.add_routes(calls_api.routes)
    app.router.add_routes(assistants_api.routes)
    limits = settings.assistants
    app[ASSISTANTS] = Assistants(
        default_assistant(
            settings.openai,
            settings.call,
            max_call_s=limits.max_call_s,
            inactivity_timeout_s=limits.inactivity_timeout_s,
        )
    )
    app.router.add_routes(recordings.routes)
    if settings.twilio.enabled:
        twilio.setup_twilio(app)
    if settings.sip.webhook_secret:
        setup_sip(app, settings)
    app.cleanup_ctx.append(metrics_site)  # first in, last out: scraped until the end
    setup_console(app)  # /console: operator console and browser phone
    app.cleanup_ctx.append(_http_client)
    app.cleanup_ctx.append(recordings.recording_retention)
    if store is not None:
        app[STORE] = store
    else:
        app.cleanup_ctx.append(_call_store)
    setup_outbound(app)  # after the HTTP client and the store: closed before both
    app.cleanup_ctx.append(assistants_ctx)  # after the store: its tables go beside the calls
    app.cleanup_ctx.append(cluster_context)  # after the store's: needs it open
    app.on_shutdown.append(_close_warm_sessions)
    setup_lifecycle(app)  # drain guard; on_shutdown: the live calls
    _startup_report(settings, app[TOOLS])
    recordings.recording_report(settings)
    return app

"""OpenAI SIP connector routes: ``POST /openai/webhook`` (also ``/webhook``).

Mounted only when ``OPENAI_WEBHOOK_SECRET`` is set. A webhook must carry a valid Standard
Webhooks signature (401 JSON otherwise, nothing accepted); a repeated ``webhook-id`` is
answered 200 and ignored (OpenAI may deliver a webhook more than once), and so is a call
already being handled; with PostgreSQL both are claimed in the shared ``claims`` table
(``cluster.Cluster.claim_once``), so a retry landing on another instance is ignored too. The
answer is quick: accepting or rejecting the call and its sideband (``sideband.serve_sideband``,
on the shared call engine) run in a background task of the app, cancelled on shutdown. An
accept answered 404 means the caller hung up before we answered.

Sources: Realtime SIP guide (https://platform.openai.com/docs/guides/realtime-sip), Standard
Webhooks (https://www.standardwebhooks.com/), OpenAI webhooks
(https://platform.openai.com/docs/guides/webhooks).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ..cluster import SIP_CALL, WEBHOOK
from ..config import Settings
from ..core.assistant import call_instructions_for
from ..core.call_data import CallInfo
from ..core.replay import SeenIds
from ..errors import CallGone, InvalidRequest, Unauthorized, UpstreamError, WebhookRejected
from ..logs import call_context
from ..media_call import call_context_for, tools_for
from ..store import FRONT_DOOR_OPENAI_SIP
from ..tools import ToolRegistry, transfer_tool
from ..web.keys import CLUSTER, HTTP, REGISTRY, SETTINGS, SIP, TOOLS, SipState, call_deps
from .control import SipControl
from .sideband import SipEnding, serve_sideband
from .webhook import (
    DECLINE,
    IncomingCall,
    accept_session,
    greeting_event,
    parse_event,
    screen,
    verify_webhook,
    webhook_verifier,
)

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

MAX_BODY_BYTES = 64 * 1024
SEEN_TTL_S = 24 * 3600.0
"""How long a ``webhook-id`` and a SIP call id stay claimed in the shared table, s (OpenAI
retries a delivery for up to a few hours)."""


def setup_sip(app: web.Application, settings: Settings) -> None:
    """Mount the webhook routes and their state (call only with a webhook secret)."""
    assert settings.sip.webhook_secret is not None
    app[SIP] = SipState(
        verifier=webhook_verifier(settings.sip.webhook_secret.get_secret_value()),
        seen=SeenIds(),
        calls={},
        tasks=set(),
    )
    app.router.add_routes(routes)
    app.on_shutdown.append(_stop_tasks)


async def _stop_tasks(app: web.Application) -> None:
    tasks = list(app[SIP].tasks)
    if not tasks:
        return
    log.info("shutting down: stopping %d SIP task(s)", len(tasks))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def sip_tools(registry: ToolRegistry, transfer_number: str | None) -> ToolRegistry:
    """The shared tools, plus ``transfer_call`` (a SIP refer) when ``TRANSFER_NUMBER`` is set."""
    tools = ToolRegistry()
    for name in registry.names:
        tool = registry.get(name)
        if tool is not None:
            tools.add(tool)
    if transfer_number and tools.get("transfer_call") is None:
        tools.add(transfer_tool(transfer_number))
    return tools


@routes.post("/openai/webhook")
@routes.post("/webhook")
async def openai_webhook(request: web.Request) -> web.Response:
    """A verified OpenAI webhook: 200 quickly; the call is handled in the background."""
    app = request.app
    state = app[SIP]
    body = await request.read()
    if len(body) > MAX_BODY_BYTES:
        raise InvalidRequest("webhook body too large", code="body_too_large")
    try:
        msg_id = verify_webhook(state.verifier, body, request.headers)
    except WebhookRejected as exc:  # logged once, at INFO, by the middleware (a 4xx)
        raise Unauthorized(
            f"webhook not verified: {exc.reason}", code="invalid_signature"
        ) from None
    cluster = app.get(CLUSTER)  # the other instances' deliveries too (cluster.claim_once)
    if state.seen.check_and_add(msg_id, time.time()) or (
        cluster is not None and not await cluster.claim_once(WEBHOOK, msg_id, SEEN_TTL_S)
    ):
        log.info("OpenAI webhook %s already handled (a retry): ignored", msg_id)
        return web.json_response({"status": "duplicate"})
    try:
        event = parse_event(body)
    except WebhookRejected as exc:  # logged once, at INFO, by the middleware (a 4xx)
        raise InvalidRequest(f"{exc.reason} (webhook-id {msg_id})", code="invalid_event") from None
    if event.call is None:
        log.info("OpenAI webhook %s: event type %s not handled", msg_id, event.type)
        return web.json_response({"status": "ignored"})
    call = event.call
    with call_context(call.call_id):
        if call.call_id in state.calls or (
            cluster is not None and not await cluster.claim_once(SIP_CALL, call.call_id, SEEN_TTL_S)
        ):
            log.info("incoming SIP call already being handled: ignored")
            return web.json_response({"status": "duplicate"})
        settings = app[SETTINGS]
        reject = screen(call.caller, settings.sip, len(state.calls))
        log.info(
            "incoming SIP call from %s to %s: %s",
            call.caller or "?",
            call.called or "?",
            f"rejecting with {reject}" if reject else "accepting",
        )
        if reject is not None:
            _track(state, _reject(app, call, reject), call.call_id, counts=False)
            return web.json_response({"status": "rejected", "sip_status": reject})
        _track(state, _handle_call(app, call), call.call_id, counts=True)
    return web.json_response({"status": "accepted"})


def _track(state: SipState, coro: Coroutine[Any, Any, None], call_id: str, *, counts: bool) -> None:
    task = asyncio.create_task(coro, name=f"sip-{call_id}")
    state.tasks.add(task)
    if counts:
        state.calls[call_id] = task

    def done(t: asyncio.Task[None]) -> None:
        """Forget the finished task; log its exception, if any (ERROR)."""
        state.tasks.discard(t)
        if state.calls.get(call_id) is t:
            del state.calls[call_id]
        if not t.cancelled() and (exc := t.exception()) is not None:
            log.error("SIP task of %s failed: %r", call_id, exc)

    task.add_done_callback(done)


async def _reject(app: web.Application, call: IncomingCall, status: int) -> None:
    control = SipControl(app[HTTP], app[SETTINGS].openai)
    with call_context(call.call_id):
        try:
            await control.reject(call.call_id, status)
        except CallGone:
            log.info("reject: the caller had already hung up")
        except UpstreamError as exc:
            log.error("reject failed: %s", exc.message)


async def _handle_call(app: web.Application, call: IncomingCall) -> None:
    settings = app[SETTINGS]
    control = SipControl(app[HTTP], settings.openai)
    with call_context(call.call_id):
        deps = call_deps(app)
        # The assistant of the number dialled (the SIP To / Request-URI), else the default.
        called = CallInfo(call.call_id, caller=call.caller, called=call.called)
        context = await call_context_for(deps, called, "inbound")
        assistant = context.assistant
        log.info("answered by assistant %s (version %d)", assistant.name, assistant.version)
        tools = tools_for(sip_tools(app[TOOLS], settings.call.transfer_number), context)
        instructions = call_instructions_for(context, caller=call.caller, called=call.called)
        session = accept_session(assistant, instructions, tools.declarations())
        try:
            await control.accept(call.call_id, session)
        except CallGone:
            log.info("accept: 404, the caller hung up before we answered")
            return
        except UpstreamError as exc:
            log.error("accept failed: %s; rejecting the call (603)", exc.message)
            await _reject(app, call, DECLINE)  # do not leave the caller ringing
            return
        started_at = datetime.now(UTC)
        log.info("SIP call accepted")
        registry = app.get(REGISTRY)
        if registry is not None:  # listed on every instance until it ends
            registry.register(
                call.call_id,
                front_door=FRONT_DOOR_OPENAI_SIP,
                direction="inbound",
                caller=call.caller,
                called=call.called,
            )
        info = CallInfo(
            call_uuid=call.call_id,
            caller=call.caller or (call.sip_headers.get("from", "")[:64] or None),
            called=call.called or (call.sip_headers.get("to", "")[:64] or None),
        )
        ending = SipEnding()
        polite = app[SIP].polite
        polite[call.call_id] = ending.end_politely
        try:
            await serve_sideband(
                deps,
                info,
                control,
                tools,
                greeting=greeting_event(assistant.greeting.text),
                started_at=started_at,
                context=context,
                ending=ending,
            )
        finally:
            polite.pop(call.call_id, None)
            if registry is not None:
                registry.unregister(call.call_id)

"""How the service stops: the one home of draining and shutdown. Shell.

Rolling deploys drop no call (``__main__.serve`` drives this on signals):

1. **Drain** (the first SIGTERM or SIGINT, :func:`drain`): the instance stops taking calls at
   once. ``GET /health`` answers 503 ``{"status": "draining"}`` so the balancer sends new
   calls elsewhere; a request that would start a call and still arrives (answer URLs, media
   sockets, ``POST /connect``, the OpenAI SIP webhook; :data:`CALL_STARTING_PATHS`) is
   refused by :func:`drain_guard` with 503 ``draining`` before any Realtime session is
   opened (OpenAI retries its webhook, which the next instance takes). Live calls run to
   their end for up to ``DRAIN_TIMEOUT_S``; then each call still live ends politely
   (:meth:`~..calls.LiveCall.end_politely`, and for OpenAI SIP calls
   ``openai_sip.sideband.SipEnding``: the assistant says goodbye, the call is hung up over
   REST, its record written; end reason :data:`~..calls.DRAIN_REASON`).
2. **Shutdown** (when the drain is over, or at once on a second signal, :func:`close_calls`
   from ``on_shutdown``): whatever call is still live is hung up over REST and its socket
   closed with 1001 within :data:`SHUTDOWN_DEADLINE_S` (end reason
   :data:`~..calls.SHUTDOWN_REASON`), then aiohttp closes the connections left and the
   cleanup contexts (HTTP client, store) run.

``fly.toml``'s ``kill_timeout`` (300 s, the most Fly allows) covers ``DRAIN_TIMEOUT_S``
(default 240), a goodbye (``bridge.DRAIN_GOODBYE_TIMEOUT_S``) and the shutdown deadline.

Sources: https://fly.io/docs/reference/configuration/#kill_signal (``kill_signal``,
``kill_timeout``), https://fly.io/docs/launch/deploy/#deployment-strategy (rolling deploys),
https://docs.aiohttp.org/en/stable/web_advanced.html#graceful-shutdown
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiohttp import WSCloseCode, web
from aiohttp.typedefs import Handler

from ..bridge import DRAIN_GOODBYE_TIMEOUT_S
from ..calls import DRAIN_REASON, SHUTDOWN_REASON, LiveCall, close_socket
from .keys import CALLS, SIP
from .middleware import error_response

log = logging.getLogger(__name__)

SHUTDOWN_DEADLINE_S = 8.0
"""Bound on ending the live calls at shutdown, s: REST hang-ups, sockets closed with 1001,
and each call's own cleanup (Realtime closed, summary logged, record written)."""
SHUTDOWN_HANGUP_S = 5.0
"""Part of :data:`SHUTDOWN_DEADLINE_S` given to the REST hang-ups (all at once); one that
has no answer by then is left unfinished (logged) instead of waiting for the REST timeout."""
SHUTDOWN_CANCEL_S = 1.0
"""Last part of :data:`SHUTDOWN_DEADLINE_S`: calls still running then are cancelled and get
this long to finish their cleanup."""
POLITE_END_S = DRAIN_GOODBYE_TIMEOUT_S + SHUTDOWN_HANGUP_S + 2.0
"""Bound on the polite end of the calls left when a drain runs out of time, s: the goodbye,
the REST hang-up and the call's cleanup; calls still live then get the shutdown's treatment."""
CALL_STARTING_PATHS = frozenset(
    {
        "/incoming-call",  # Vonage answer URL (vonage.applications.ANSWER_PATH)
        "/answer",  # Vonage answer URL of outbound calls
        "/vonage/ws",  # Vonage media socket
        "/twilio/incoming-call",  # Twilio Voice webhook
        "/twilio/media-stream",  # Twilio Media Streams socket
        "/connect",  # outbound calls
        "/openai/webhook",  # OpenAI SIP connector
        "/webhook",
    }
)
"""Requests that start a call: refused while draining."""
DRAINING_MESSAGE = "this instance is draining (shutting down): the call goes to another instance"


@dataclass(slots=True)
class Lifecycle:
    """Whether the instance is draining, and since when (event-loop time, s)."""

    draining: bool = False
    since: float | None = None


LIFECYCLE = web.AppKey("lifecycle", Lifecycle)


def setup_lifecycle(app: web.Application) -> None:
    """Mount the drain state, :func:`drain_guard` and the shutdown of the live calls."""
    app[LIFECYCLE] = Lifecycle()
    app.middlewares.append(drain_guard)
    app.on_shutdown.append(close_calls)


def is_draining(app: web.Application) -> bool:
    """Whether the app is draining (no lifecycle mounted: False)."""
    state = app.get(LIFECYCLE)
    return state is not None and state.draining


@web.middleware
async def drain_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """While draining, a request of :data:`CALL_STARTING_PATHS` gets 503 ``draining`` (one
    INFO line), before its handler runs: no token, no Realtime session, no dedupe entry."""
    if request.path in CALL_STARTING_PATHS and is_draining(request.app):
        log.info(
            "draining: refused %s %s (new calls go to another instance)",
            request.method,
            request.path,
        )
        response = error_response(503, "draining", DRAINING_MESSAGE)
        response.headers["Retry-After"] = "1"
        return response
    return await handler(request)


def live_tasks(app: web.Application) -> set[asyncio.Task[object]]:
    """The tasks of every live call: media sockets and OpenAI SIP calls."""
    tasks: set[asyncio.Task[object]] = {c.task for c in app[CALLS].values()}
    sip = app.get(SIP)
    if sip is not None:
        tasks.update(sip.calls.values())
    return tasks


async def drain(app: web.Application, timeout_s: float) -> None:
    """Stop taking calls, let the live ones end for up to ``timeout_s`` seconds, then end the
    media calls left politely (see the module docstring). Returns when no call is live, or
    when the polite ends are over (:data:`POLITE_END_S`; what is left is for
    :func:`close_calls`). Idempotent: a second drain waits as the first does."""
    state = app[LIFECYCLE]
    loop = asyncio.get_running_loop()
    if not state.draining:
        state.draining, state.since = True, loop.time()
        log.info(
            "draining: no new calls; %d live call(s) may run for up to %.0f s (DRAIN_TIMEOUT_S)",
            len(live_tasks(app)),
            timeout_s,
        )
    assert state.since is not None
    deadline = state.since + timeout_s
    while (tasks := live_tasks(app)) and loop.time() < deadline:
        await asyncio.wait(tasks, timeout=deadline - loop.time())
    left: list[LiveCall] = list(app[CALLS].values())
    sip = app.get(SIP)
    sip_left = dict(sip.polite) if sip is not None else {}
    if left or sip_left:
        log.info(
            "draining: DRAIN_TIMEOUT_S is over; ending %d call(s) politely",
            len(left) + len(sip_left),
        )
        for call in left:
            call.end_politely(DRAIN_REASON)
        for end_politely in sip_left.values():
            end_politely(DRAIN_REASON)
        tasks = {c.task for c in left}
        if sip is not None:
            tasks.update(t for i, t in sip.calls.items() if i in sip_left)
        if tasks:
            await asyncio.wait(tasks, timeout=POLITE_END_S)
    log.info("drained: no call left to wait for")


async def close_calls(app: web.Application) -> None:
    """``on_shutdown``: end every live media call within :data:`SHUTDOWN_DEADLINE_S`.

    Each call is marked as ended by the shutdown (its record and summary line say
    :data:`~..calls.SHUTDOWN_REASON`), hung up over REST (all at once, within
    :data:`SHUTDOWN_HANGUP_S`, each line tagged with its call id), then its socket is closed
    with 1001 and its own cleanup runs; calls still running near the deadline are cancelled.
    """
    calls: dict[str, LiveCall] = app[CALLS]
    if not calls:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SHUTDOWN_DEADLINE_S
    live = list(calls.values())
    log.info("shutting down: ending %d live call(s)", len(live))
    for call in live:
        call.ending = SHUTDOWN_REASON
    # End the calls on the carrier's side too, not only their sockets (a Vonage socket that
    # only drops runs the rest of the NCCO). The call's own cleanup then finds it done.
    await asyncio.gather(
        *(c.hang_up_within(SHUTDOWN_REASON, SHUTDOWN_HANGUP_S) for c in live),
        return_exceptions=True,
    )
    closing = [
        asyncio.create_task(close_socket(c.ws, WSCloseCode.GOING_AWAY, SHUTDOWN_REASON))
        for c in live
    ]
    tasks = {c.task for c in live}
    cancel_at = deadline - SHUTDOWN_CANCEL_S
    _, pending = await asyncio.wait(tasks | set(closing), timeout=max(cancel_at - loop.time(), 0))
    if pending:
        log.warning("shutting down: cancelling %d call task(s) still running", len(pending))
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=max(deadline - loop.time(), 0))

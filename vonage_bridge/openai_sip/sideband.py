"""The sideband of an accepted OpenAI SIP call, on the shared call engine. Shell: does I/O.

The sideband carries JSON events only (the audio stays on SIP), so the call is a
:class:`~..core.session.CallSession` fed Realtime events and nothing else: transcripts, tool
calls and response tracking work as on the media doors, with the same tool runner
(``bridge.ToolRunner``), transcript entries, summary line and record writer. The socket is
opened by ``realtime.connection.open_realtime`` with the call's ``call_id`` (so
``OPENAI_API_VERSION`` applies here too).

What is the sideband's own: we send the greeting as ``response.create``; ``end_call`` hangs
the call up (REST ``hangup``) once the goodbye has played (``output_audio_buffer.stopped``)
or after :data:`HANGUP_GRACE_S`; ``transfer_call`` refers the caller to ``TRANSFER_NUMBER``
(:class:`SipCallControl`). The call ends when the socket closes, or when the assistant's call
limits end it (``core.limits``, checked by one timer: "wrap up" before ``max_call_s``, a
goodbye and a hang-up at it; after ``inactivity_timeout_s`` with no caller speech as the
server VAD reports it and no assistant audio (``output_audio_buffer.started`` to
``stopped``), "still there?", then a goodbye and a hang-up). When a drain runs out of time
(``web.lifecycle``), a live call ends as the media calls do (:class:`SipEnding`): the reply in
progress finishes, the assistant says a short goodbye (``response.create`` with
``bridge.DRAIN_GOODBYE_INSTRUCTIONS``), and once it has played the call is hung up, all
within ``bridge.DRAIN_GOODBYE_TIMEOUT_S``; the record's end reason is the drain's.

Sources: OpenAI Realtime SIP guide (https://platform.openai.com/docs/guides/realtime-sip),
Realtime server events (https://platform.openai.com/docs/api-reference/realtime-server-events).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import WSMsgType

from ..audio.path import PassthroughPath
from ..bridge import DRAIN_GOODBYE_INSTRUCTIONS, DRAIN_GOODBYE_TIMEOUT_S, DRAIN_GOODBYE_WAIT_S
from ..calls import CallDeps, transcript_listener
from ..core.assistant import CallContext
from ..core.call_data import CallInfo
from ..core.events import AudioDelta, AudioDone, OtherServerEvent
from ..core.limits import (
    END_INACTIVITY,
    END_MAX_DURATION,
    GOODBYE_TIMEOUT_S,
    CallLimits,
)
from ..core.session import CallSession
from ..errors import (
    CallGone,
    LocalProtocolError,
    RealtimeConnectError,
    RemoteProtocolError,
    UpstreamError,
)
from ..hub import LiveView
from ..metrics import METRICS
from ..realtime.connection import open_realtime
from ..realtime.protocol import client_event, parse_server_event
from ..recording.recorder import RecordingResult
from ..records import Pricing, log_notes, log_summary, summarize, write_call_record
from ..store import FRONT_DOOR_OPENAI_SIP
from ..tool_runner import ToolRunner
from ..tools import ToolContext, ToolRegistry
from .control import SipControl

log = logging.getLogger(__name__)

HANGUP_GRACE_S = 8.0
"""After ``end_call``, hang up when the goodbye has played (``output_audio_buffer.stopped``)
or after this long, whichever is first."""
LIMIT_REASONS = (END_MAX_DURATION, END_INACTIVITY)
SHUTDOWN_HANGUP_S = 3.0
"""Bound on hanging the call up at OpenAI when the server shuts down."""
NOT_RECORDED = RecordingResult.unavailable(
    "recording is not available on the openai-sip front door: its audio goes to OpenAI "
    "directly, never through this service"
)
"""The record's ``recording`` of a SIP call when ``RECORD_CALLS`` is on."""


_GOODBYE_CREATE = {
    "type": "response.create",
    "response": {"instructions": DRAIN_GOODBYE_INSTRUCTIONS},
}


@dataclass(slots=True)
class SipEnding:
    """How the drain ends a live SIP call politely (``SipState.polite`` holds
    :meth:`end_politely`): the media calls' ``LiveCall.end_politely`` for the sideband."""

    reason: str | None = None
    wind_down: asyncio.Event = field(default_factory=asyncio.Event)

    def end_politely(self, reason: str) -> None:
        """Ask the call to say goodbye and hang up; ``reason`` is its end reason (record,
        summary line). Returns at once."""
        if self.reason is None:
            self.reason = reason
        self.wind_down.set()


async def _until(condition: Callable[[], bool], timeout_s: float, tick_s: float = 0.05) -> None:
    """Return once ``condition()`` holds (checked every ``tick_s``: a rare path) or after
    ``timeout_s``."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            while not condition():
                await asyncio.sleep(tick_s)


class SipCallControl:
    """``bridge.CallControl`` of one SIP call: REST ``hangup`` and ``refer``.

    ``end_reason`` is what the call's record says if the sideband simply closes: a transfer
    sets it to ``transferred`` before the refer (the socket may close before refer returns).
    """

    def __init__(self, control: SipControl, call_id: str) -> None:
        self.control = control
        self.call_id = call_id
        self.end_reason: str | None = None

    async def hang_up(self, reason: str) -> bool:
        """Hang up at OpenAI; False (logged) if that failed. A call already gone is fine."""
        try:
            await self.control.hangup(self.call_id)
        except CallGone:
            log.info("hang-up (%s): the call had already ended", reason)
        except UpstreamError as exc:
            log.error("hang-up (%s) failed: %s", reason, exc.message)
            return False
        return True

    async def transfer(self, number: str) -> None:
        """SIP REFER to ``tel:+<number>`` (``number``: E.164 digits).

        Raises:
            CallGone, UpstreamError: OpenAI refused it (the record's end reason is restored).
        """
        before, self.end_reason = self.end_reason, "transferred"
        try:
            await self.control.refer(self.call_id, f"tel:+{number}")
        except Exception:  # not cancelled: the transfer failed
            self.end_reason = before
            raise


class _NoPlayback:
    """The sideband plays nothing (the audio stays on SIP): no marker or clear is ever due.
    Reaching one is a bug on our side."""

    __slots__ = ()

    def clear(self) -> str:
        """Never due on the sideband. Raises :class:`LocalProtocolError` (our bug)."""
        raise LocalProtocolError("no playback on the SIP sideband")

    def mark(self, item: str, ms: int) -> str:
        """Never due on the sideband. Raises :class:`LocalProtocolError` (our bug)."""
        raise LocalProtocolError("no playback on the SIP sideband")


class _Sideband:
    """One accepted call's sideband loop around its session."""

    def __init__(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        session: CallSession,
        control: SipCallControl,
        tools: ToolRegistry,
        ctx: ToolContext,
        ending: SipEnding | None = None,
    ) -> None:
        self.ws = ws
        self.ending = ending
        self.session = session
        self.control = control
        self.runner = ToolRunner(session, tools, ctx, self.flush)
        self.audio_stopped = asyncio.Event()
        self.audio_stopped.set()  # nothing is playing yet
        self.end_reason: str | None = None  # set when our side ended the call
        self.warned_audio = False
        assistant = session.context.assistant
        self.loop = asyncio.get_running_loop()
        self.limits = CallLimits(
            assistant.max_call_s, assistant.inactivity_timeout_s, self.loop.time()
        )

    async def run(self, greeting: dict[str, Any]) -> str:
        """Send the greeting, then handle events until the socket closes; the end reason."""
        ws = self.ws
        ender = asyncio.create_task(self.end_after_goodbye(), name="sip-end")
        watch = asyncio.create_task(self.watch(), name="sip-watch")
        goodbye = asyncio.create_task(self.goodbye(), name="sip-goodbye")
        try:
            await ws.send_str(client_event(greeting))
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self.on_text(msg.data)
                elif msg.type is WSMsgType.ERROR:
                    return self.end_reason or f"sideband error: {ws.exception()!r}"
            return (
                self.end_reason or self.control.end_reason or f"sideband closed ({ws.close_code})"
            )
        finally:
            ender.cancel()
            watch.cancel()
            goodbye.cancel()
            await asyncio.gather(ender, watch, goodbye, self.runner.stop(), return_exceptions=True)
            log_notes(self.session)
            await ws.close()

    async def on_text(self, data: str) -> None:
        """One Realtime server event -> the session, then send what it queued.

        A bad event is logged and skipped; audio events are ignored (the audio stays on SIP, one
        warning); ``output_audio_buffer.started``/``stopped`` track whether the caller hears the
        model.
        """
        session = self.session
        try:
            event = parse_server_event(data)
        except RemoteProtocolError as exc:
            log.warning("sideband: %s", exc.message)
            return
        if isinstance(event, AudioDelta | AudioDone):  # not expected: the audio is on SIP
            if not self.warned_audio:
                self.warned_audio = True
                log.warning("sideband: ignoring audio events (the audio stays on SIP)")
            return
        if isinstance(event, OtherServerEvent):
            if event.type == "output_audio_buffer.started":
                self.audio_stopped.clear()
            elif event.type == "output_audio_buffer.stopped":
                self.audio_stopped.set()
        session.now = time.time()
        session.realtime_event(event)
        if session.has_output:
            await self.flush()

    async def flush(self) -> None:
        """Send the session's queued client events, start queued tool calls, log notes."""
        for message in self.session.drain_realtime():
            await self.ws.send_str(message)
        self.runner.start()
        log_notes(self.session)

    async def end_after_goodbye(self) -> None:
        """Once a call-ending tool ran: hang up when the goodbye has played (or after
        :data:`HANGUP_GRACE_S`)."""
        await self.runner.end_requested.wait()
        self.end_reason = f"{self.runner.ended_by} tool"
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(HANGUP_GRACE_S):
                await self.audio_stopped.wait()
        await self.control.hang_up(self.end_reason)

    async def goodbye(self) -> None:
        """Once :attr:`ending` asks for it: let the reply in progress finish, ask for the
        goodbye, hang up once it has played (all within ``DRAIN_GOODBYE_TIMEOUT_S``)."""
        ending = self.ending
        if ending is None:
            return
        await ending.wind_down.wait()
        reason = ending.reason or "call ended by the service"
        session, stats = self.session, self.session.stats
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_GOODBYE_TIMEOUT_S):
                await _until(lambda: session.active_response is None, DRAIN_GOODBYE_WAIT_S)
                responses = stats.responses
                await self.ws.send_str(client_event(_GOODBYE_CREATE))
                log.info("asked the assistant to say goodbye (%s)", reason)
                await _until(
                    lambda: (
                        stats.responses > responses
                        and session.active_response is None
                        and self.audio_stopped.is_set()
                    ),
                    DRAIN_GOODBYE_TIMEOUT_S,
                )
        self.end_reason = reason
        await self.control.hang_up(reason)

    async def watch(self) -> None:
        """The call limits, on one timer: what to tell the model, and the hang-up after a
        limit's goodbye has played (``output_audio_buffer.stopped``) or after
        :data:`GOODBYE_TIMEOUT_S`."""
        limits, session, clock = self.limits, self.session, self.loop.time
        tick = limits.tick_s()
        while True:
            await asyncio.sleep(tick)
            now = clock()
            busy = (
                session.caller_speaking
                or session.active_response is not None
                or not self.audio_stopped.is_set()
            )
            action = limits.step(session, now, busy=busy)
            if action is None:
                continue
            log.info("call limit: %s (%.0f s into the call)", action.value, now - limits.started_at)
            await self.flush()
            if action.ends_call:
                break
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(GOODBYE_TIMEOUT_S):
                # no audio reaches the sideband: played out once OpenAI's buffer stopped
                while not (limits.goodbye_said(session) and self.audio_stopped.is_set()):
                    await asyncio.sleep(tick)
        self.end_reason = limits.ending
        await self.control.hang_up(limits.ending or "limit")


async def serve_sideband(
    deps: CallDeps,
    info: CallInfo,
    control: SipControl,
    tools: ToolRegistry,
    *,
    greeting: dict[str, Any],
    started_at: datetime,
    context: CallContext | None = None,
    ending: SipEnding | None = None,
) -> None:
    """Run an accepted SIP call's sideband to its end, then log its summary, count it
    (``metrics``) and write its record (``front_door="openai-sip"``, end reason
    ``openai-sip: <why>``).

    Args:
        deps: the application's parts (``calls`` is not used: SIP calls have no media socket).
        info: the call (``call_uuid`` is OpenAI's ``call_id``).
        control: OpenAI's call-control REST client.
        tools: the tools of SIP calls (``transfer_call`` refers).
        greeting: the ``response.create`` sent first.
        started_at: when the call was accepted (aware UTC).
        context: the call's assistant (its limits apply); None: the default.
        ending: how a drain ends the call politely (:class:`SipEnding`); None: never.
    Raises:
        asyncio.CancelledError: the server is shutting down (the call is hung up at OpenAI,
            bounded by :data:`SHUTDOWN_HANGUP_S`, and recorded first).
    """
    settings = deps.settings
    session = CallSession(
        info,
        openai=settings.openai,
        call=settings.call,
        path=PassthroughPath(),  # never used: no audio reaches the sideband
        commands=_NoPlayback(),
        tools=tools.declarations(),
        context=context,
    )
    session.flush_held()  # nothing held: straight to BRIDGING (the session was set on accept)
    sip = SipCallControl(control, info.call_uuid)
    ctx = ToolContext(
        info.call_uuid, info.caller, transfer=sip.transfer, front_door=FRONT_DOOR_OPENAI_SIP
    )
    loop = asyncio.get_running_loop()
    began = loop.time()
    reason = "sideband not opened"
    METRICS.call_started(FRONT_DOOR_OPENAI_SIP)
    hub = deps.hub
    if hub is not None:  # the operator console's live page
        view = LiveView(info.call_uuid, FRONT_DOOR_OPENAI_SIP, "inbound", info.caller, info.called)
        view.assistant = session.context.assistant.name
        view.assistant_version = session.context.assistant.version
        view.started_at, view.transcript, view.hang_up = (
            started_at,
            session.stats.transcript,
            sip.hang_up,
        )
        hub.started(view)
    session.on_transcript = transcript_listener(deps, info.call_uuid)
    try:
        ws = await open_realtime(deps.http, settings.openai, call_id=info.call_uuid)
        reason = await _Sideband(ws, session, sip, tools, ctx, ending).run(greeting)
    except RealtimeConnectError as exc:
        log.error("sideband: %s", exc.message)
        reason = "sideband failed"
    except asyncio.CancelledError:
        reason = "server shutting down"
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SHUTDOWN_HANGUP_S):
                await sip.hang_up(reason)
        raise
    finally:
        summary = summarize(
            session,
            front_door=FRONT_DOOR_OPENAI_SIP,
            duration_s=loop.time() - began,
            # the limits' reasons are the same on every door; the others say the door
            end_reason=(
                reason
                if reason in LIMIT_REASONS or (ending is not None and reason == ending.reason)
                else f"{FRONT_DOOR_OPENAI_SIP}: {reason}"
            ),
        )
        log_summary(summary)
        METRICS.call_finished(FRONT_DOOR_OPENAI_SIP)
        METRICS.call_ended(
            FRONT_DOOR_OPENAI_SIP, "inbound", summary.end_reason, summary, session.stats
        )
        await write_call_record(
            deps.store,
            session,
            front_door=FRONT_DOOR_OPENAI_SIP,
            direction="inbound",
            started_at=started_at,
            end_reason=summary.end_reason,
            pricing=Pricing.of(settings),
            recording=NOT_RECORDED if settings.recording.record_calls else None,
            summary=summary,
        )
        if hub is not None:
            hub.ended(info.call_uuid, summary.end_reason)

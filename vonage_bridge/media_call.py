"""A media socket's whole call, for every WebSocket front door (Vonage, Twilio). Shell.

:func:`serve_media_call`: register the :class:`~.calls.LiveCall` -> read the door's opening
messages -> take the call's warm Realtime session, if any -> the call's assistant (the one the
warm session was opened for; else the call's own context; else the one bound to the number
dialled) -> build the session -> :func:`~.bridge.run_call` -> write the record and count the
call (``metrics``) -> unregister,
in ``finally``. With a hub
(``CallDeps.hub``: the operator console's live page) the call is published there from its
start to its end, with each transcript entry as the session adds it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from aiohttp import web

from .bridge import run_call
from .calls import CallControl, CallDeps, LiveCall, transcript_listener
from .config import Settings
from .core.assistant import Assistant, CallContext, default_assistant
from .core.call_data import CallInfo
from .core.frontdoor import FrontDoor
from .core.session import CallSession
from .hub import LiveView
from .metrics import METRICS
from .realtime.prewarm import WarmSessions
from .recording.recorder import CallRecorder, RecordingResult
from .records import CallSummary, Pricing, write_call_record
from .tools import ToolContext, ToolRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MediaCall:
    """A media socket's call once its opening messages were read.

    Attributes:
        door: its wire format, audio path and playback commands.
        info: who and what the call is.
        direction: ``inbound`` or ``outbound`` (for the record).
        tool_ctx: what tools see of the call; None: :func:`run_call`'s default.
        context: the call's assistant and what the call adds to it (an outbound call's
            ``POST /connect`` fields); None: the assistant bound to ``info.called``.
    """

    door: FrontDoor
    info: CallInfo
    direction: str = "inbound"
    tool_ctx: ToolContext | None = None
    context: CallContext | None = None


async def call_context_for(deps: CallDeps, info: CallInfo, direction: str) -> CallContext:
    """A call's context without one of its own: the assistant bound to our number (the
    number dialled, inbound; the number we call from, outbound), else the default (never an
    error: a database that is down gives the built-in default)."""
    if deps.assistants is None:
        return CallContext(_default(deps))
    ours = info.caller if direction == "outbound" else info.called
    return await deps.assistants.context(ours)


def _default(deps: CallDeps) -> Assistant:
    s = deps.settings
    limits = s.assistants
    return default_assistant(
        s.openai,
        s.call,
        max_call_s=limits.max_call_s,
        inactivity_timeout_s=limits.inactivity_timeout_s,
    )


def tools_for(registry: ToolRegistry, context: CallContext) -> ToolRegistry:
    """The tools of ``registry`` that the call's assistant may use (all when its ``tools``
    is null)."""
    allowed = context.assistant.tool_names
    if allowed is None:
        return registry
    return ToolRegistry(t for n in registry.names if n in allowed and (t := registry.get(n)))


async def serve_media_call(
    ws: web.WebSocketResponse,
    call_id: str,
    opening: Callable[[], Awaitable[MediaCall | None]],
    *,
    deps: CallDeps,
    control: CallControl | None = None,
    warm: WarmSessions | None = None,
    record: bool | None = None,
) -> CallSummary | None:
    """One media call, from its prepared socket to its record, for any media door.

    The call is live (``deps.calls[call_id]``: shutdown hangs it up and closes it) from the
    start to the end of this coroutine, whatever happens in between.

    Args:
        ws: the prepared media socket (token and signature already checked).
        call_id: the door's call id.
        opening: reads the door's opening messages and returns the call, or None after it
            closed ``ws`` with a reason (nothing is recorded then).
        deps: the application's parts.
        control: the call's carrier-side controls, if configured.
        warm: the app's warm Realtime sessions: the call's, if its answer URL opened one, is
            taken once the opening succeeded (one log line either way).
        record: record the call (``recording``: a stereo WAV in ``RECORDINGS_DIR``, in the
            record as ``recording``); None: when ``RECORD_CALLS`` is on or the call's
            assistant says ``record: true``.
    Returns:
        The summary, or None when the opening failed.
    """
    calls = deps.calls
    opened_at = asyncio.get_running_loop().time()  # a recording's time 0
    task = asyncio.current_task()
    assert task is not None
    live = calls[call_id] = LiveCall(call_id, ws, task, control)
    end_reason = "call handler stopped"
    try:
        call = await opening()
        if call is None:
            return None
        settings = deps.settings
        adopted = warm.take(call_id) if warm is not None else None
        # The call's own context (outbound), else the one its warm session was opened
        # with at the answer URL (the same assistant and version), else the number's.
        context = call.context or (adopted.context if adopted is not None else None)
        if context is None:
            context = await call_context_for(deps, call.info, call.direction)
        tools = tools_for(deps.tools, context)
        session = CallSession(
            call.info,
            openai=settings.openai,
            call=settings.call,
            path=call.door.path,
            commands=call.door.commands,
            tools=tools.declarations(),
            context=context,
        )
        started_at = datetime.now(UTC)
        if deps.registry is not None:  # listed on every instance (cluster.LiveRegistry)
            deps.registry.register(
                call_id,
                front_door=call.door.name,
                direction=call.direction,
                caller=call.info.caller,
                called=call.info.called,
            )
        summary: CallSummary | None = None
        METRICS.call_started(call.door.name)
        if deps.hub is not None:
            deps.hub.started(_view(call_id, call, started_at, session))
        session.on_transcript = transcript_listener(deps, call_id)
        if record is None:  # every call (RECORD_CALLS), or this assistant's calls
            record = settings.recording.record_calls or context.assistant.record
        recorder = _recorder(settings, call_id, session, record, opened_at)
        recording: RecordingResult | None = None
        try:
            summary = await run_call(
                ws,
                session,
                call.door,
                http=deps.http,
                openai=settings.openai,
                control=control,
                tools=tools,
                tool_ctx=call.tool_ctx,
                live=live,
                warm=adopted,
                recorder=recorder,
            )
        finally:  # run_call closed both sockets: off the audio path
            if recorder is not None:
                recording = await recorder.close()
                _log_recording(recording)
            METRICS.call_finished(call.door.name)
            end_reason = (
                summary.end_reason if summary is not None else live.ending or "call handler stopped"
            )
            METRICS.call_ended(call.door.name, call.direction, end_reason, summary, session.stats)
            await write_call_record(
                deps.store,
                session,
                front_door=call.door.name,
                direction=call.direction,
                started_at=started_at,
                end_reason=end_reason,
                duration_s=summary.duration_s if summary is not None else None,
                pricing=Pricing.of(settings),
                recording=recording,
                summary=summary,
            )
        return summary
    finally:
        calls.pop(call_id, None)
        if deps.registry is not None:
            deps.registry.unregister(call_id)
        if deps.hub is not None:
            deps.hub.ended(call_id, end_reason)


def _view(call_id: str, call: MediaCall, started_at: datetime, session: CallSession) -> LiveView:
    """The call as the live page shows it (its transcript list shared with the session)."""
    return LiveView(
        call_id,
        call.door.name,
        call.direction,
        call.info.caller,
        call.info.called,
        started_at,
        assistant=session.context.assistant.name,
        assistant_version=session.context.assistant.version,
        transcript=session.stats.transcript,
    )


def _recorder(
    settings: Settings, call_id: str, session: CallSession, record: bool | None, opened_at: float
) -> CallRecorder | None:
    """The call's recorder when it is recorded (``record``, default ``RECORD_CALLS``); its
    time 0 is ``opened_at`` (loop clock), when the media socket opened: every caller frame
    came after it, so each can take its place on the timeline."""
    if not (settings.recording.record_calls if record is None else record):
        return None
    url = f"{settings.server.public_url.http}/calls/{quote(call_id, safe='')}/recording"
    return CallRecorder(
        settings.recording.recordings_dir,
        call_id,
        session.caller_format,
        url=url,
        now=opened_at,
    )


def _log_recording(result: RecordingResult) -> None:
    """One line: where the recording is and how long (INFO), or why it failed (WARNING)."""
    name = result.path.name if result.path is not None else "no file"
    if result.status == "complete":
        log.info("recording saved: %s (%.1f s, %d bytes)", name, result.seconds, result.bytes)
    else:
        log.warning("recording %s: %s (%s)", result.status, result.error, name)

"""A media socket's whole call, for every WebSocket front door (Vonage, Twilio). Shell.

:func:`serve_media_call`: register the :class:`~.calls.LiveCall` -> read the door's opening
messages -> build the session (adopting the call's warm Realtime session, if any) ->
:func:`~.bridge.run_call` -> write the record -> unregister, in ``finally``.
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
from .calls import CallControl, CallDeps, LiveCall
from .config import Settings
from .core.call_data import CallInfo
from .core.frontdoor import FrontDoor
from .core.session import CallSession
from .realtime.prewarm import WarmSessions
from .recording.recorder import CallRecorder, RecordingResult
from .records import CallSummary, Pricing, write_call_record
from .tools import ToolContext

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MediaCall:
    """A media socket's call once its opening messages were read.

    Attributes:
        door: its wire format, audio path and playback commands.
        info: who and what the call is.
        direction: ``inbound`` or ``outbound`` (for the record).
        tool_ctx: what tools see of the call; None: :func:`run_call`'s default.
    """

    door: FrontDoor
    info: CallInfo
    direction: str = "inbound"
    tool_ctx: ToolContext | None = None


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
            record as ``recording``); None: as ``RECORD_CALLS`` says.
    Returns:
        The summary, or None when the opening failed.
    """
    calls = deps.calls
    opened_at = asyncio.get_running_loop().time()  # a recording's time 0
    task = asyncio.current_task()
    assert task is not None
    live = calls[call_id] = LiveCall(call_id, ws, task, control)
    try:
        call = await opening()
        if call is None:
            return None
        settings = deps.settings
        session = CallSession(
            call.info,
            openai=settings.openai,
            call=settings.call,
            path=call.door.path,
            commands=call.door.commands,
            tools=deps.tools.declarations(),
        )
        started_at = datetime.now(UTC)
        adopted = warm.take(call_id) if warm is not None else None
        summary: CallSummary | None = None
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
                tools=deps.tools,
                tool_ctx=call.tool_ctx,
                live=live,
                warm=adopted,
                recorder=recorder,
            )
        finally:  # run_call closed both sockets: off the audio path
            if recorder is not None:
                recording = await recorder.close()
                _log_recording(recording)
            await write_call_record(
                deps.store,
                session,
                front_door=call.door.name,
                direction=call.direction,
                started_at=started_at,
                end_reason=(
                    summary.end_reason
                    if summary is not None
                    else live.ending or "call handler stopped"
                ),
                duration_s=summary.duration_s if summary is not None else None,
                pricing=Pricing.of(settings),
                recording=recording,
            )
        return summary
    finally:
        calls.pop(call_id, None)


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

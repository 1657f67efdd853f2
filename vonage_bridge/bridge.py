"""The call engine shared by every front door. Shell: does I/O.

One call, whatever door it came through, is a :class:`CallSession` (the pure core) plus this:

- :func:`serve_media_call`: a media socket's whole life (Vonage, Twilio): register the
  :class:`LiveCall` -> read the door's opening messages -> build the session -> :func:`run_call`
  -> write the record -> unregister, in ``finally``;
- :func:`run_call`: one media call's tasks around its session, each a few lines of
  receive -> parse (pure) -> feed -> drain -> send:

  - caller pump: caller socket -> session (frames up to Realtime as they come);
  - Realtime pump: opens the Realtime socket, sends ``session.update`` and the held audio,
    then Realtime events -> session;
  - playout pump: session's playout -> caller socket, paced to absolute deadlines with a
    bounded look-ahead (``audio.playout``);
  - end pump: ends the call once a call-ending tool ran and its reply has been heard;

- :class:`ToolRunner`: the model's tool calls as tasks of the call, results back through
  the session (media calls and the OpenAI SIP sideband alike);
- :func:`summarize` / :func:`log_summary`: the one summary line per call (every door);
- :func:`write_call_record`: the one record writer (every door).

The media door is a :class:`~.core.frontdoor.FrontDoor` (wire format, audio path, playback
commands); the carrier-side controls that do I/O are a :class:`CallControl` (REST hang-up and
transfer: ``vonage.voice_api.CallHangUp``, ``twilio.rest.TwilioHangUp``, and the SIP
sideband's refer / hangup).

The first task to end ends a media call: the others are cancelled and awaited, both sockets
are closed with a code and a reason, and one summary line is logged. Nothing is logged per
frame. When our side ended the call (Realtime failed or closed, an internal error, shutdown)
and the door has a :class:`CallControl`, the call is also hung up over REST before the caller
socket is closed, so the carrier ends it instead of only seeing the socket drop (on Vonage a
dropped socket otherwise runs the rest of the NCCO).

Sources: Vonage WebSockets (https://developer.vonage.com/en/voice/voice-api/concepts/websockets),
Twilio Media Streams (https://www.twilio.com/docs/voice/media-streams/websocket-messages),
OpenAI Realtime events (https://platform.openai.com/docs/api-reference/realtime-server-events),
WebSocket close frames (RFC 6455, section 5.5.1).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Protocol

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web

from .config import OpenAISettings, Settings
from .core.events import RunTool, SpeechStopped, StreamStopped, TranscriptEntry
from .core.frontdoor import FrontDoor
from .core.session import CallInfo, CallSession, Phase
from .errors import RealtimeConnectError, RemoteProtocolError
from .realtime.connection import open_realtime
from .realtime.protocol import parse_server_event
from .store import CallRecord, CallStore
from .tools import ToolContext, ToolRegistry

log = logging.getLogger(__name__)

END_MARGIN_S = 0.3
"""After a call-ending tool, wait this long past our estimate of the caller's playback
position before hanging up (network and jitter-buffer delay on the carrier's side)."""
UNKNOWN_CALL_PREFIX = "unknown-"
"""Call ids we made up because the answer webhook carried none: such a call cannot be hung
up or transferred over REST."""
MAX_CLOSE_REASON_BYTES = 123
"""A close frame's reason fits in 123 bytes of UTF-8 (RFC 6455 5.5: 125-byte control payload
minus the 2-byte code)."""
RECORD_WRITE_TIMEOUT_S = 5.0
"""Bound on writing a call record (a slow database must not hold a handler for long)."""


def known_call(call_id: str) -> bool:
    """Whether ``call_id`` is the carrier's (not one we made up with
    :data:`UNKNOWN_CALL_PREFIX`)."""
    return not call_id.startswith(UNKNOWN_CALL_PREFIX)


# ------------------------------------------------------------------ carrier controls


class CallControl(Protocol):
    """The carrier-side controls of one call that do I/O (REST or SIP)."""

    async def hang_up(self, reason: str) -> object:
        """End the call on the carrier's side, at most once; ``reason`` is for the log.
        Failures are logged, never raised."""
        ...

    async def transfer(self, number: str) -> None:
        """Connect the caller to ``number`` (E.164 digits); our leg of the call ends.

        Raises:
            Exception: the carrier refused it (the tool reports the error to the model).
        """
        ...


@dataclass(slots=True)
class LiveCall:
    """A call with an open media socket (Vonage or Twilio): hung up over its
    :class:`CallControl` (when there is one) and closed with 1001 on shutdown.
    ``call_uuid`` is the door's call id (Vonage call UUID, Twilio call SID)."""

    call_uuid: str
    ws: web.WebSocketResponse
    task: asyncio.Task[object]
    control: CallControl | None = None


@dataclass(frozen=True, slots=True)
class CallDeps:
    """What every call needs from the application (built by ``web.keys.call_deps``).

    Attributes:
        settings: the settings.
        http: the shared client session (Realtime sockets, REST).
        tools: the tools the model may call.
        store: the call-record store; None when records are off.
        calls: the live media calls by call id (shutdown closes them).
    """

    settings: Settings
    http: aiohttp.ClientSession
    tools: ToolRegistry
    store: CallStore | None
    calls: dict[str, LiveCall]


# ------------------------------------------------------------------ closing sockets


def close_reason(text: str) -> bytes:
    """``text`` as a close reason: UTF-8 cut to :data:`MAX_CLOSE_REASON_BYTES`, never inside
    a character (RFC 6455 5.5.1: the reason must be valid UTF-8)."""
    raw = text.encode("utf-8")
    if len(raw) <= MAX_CLOSE_REASON_BYTES:
        return raw
    return raw[:MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore").encode("utf-8")


async def close_socket(
    ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    code: WSCloseCode,
    reason: str,
) -> None:
    """Close ``ws`` with ``code`` and ``reason`` (cut by :func:`close_reason`)."""
    await ws.close(code=code, message=close_reason(reason))


# ------------------------------------------------------------------ summaries and records


@dataclass(slots=True)
class CallEnd:
    """Why a media call ended: which side, the close code we sent the caller, and a reason."""

    reason: str
    caller_code: WSCloseCode = WSCloseCode.OK
    error: bool = False

    @property
    def by_us(self) -> bool:
        """Our side ended the call (we close the caller socket with 1001 or 1011), not the
        caller hanging up or their socket dropping."""
        return self.caller_code is not WSCloseCode.OK


@dataclass(slots=True)
class CallSummary:
    """What the summary line says; returned for tests and the simulation.

    Durations are seconds, audio amounts ms; the frame counters stay 0 on the SIP sideband
    (its audio never reaches us)."""

    call_uuid: str
    front_door: str
    duration_s: float
    end_reason: str
    frames_in: int
    frames_out: int
    bad_frames: int
    underruns: int
    responses: int
    held_ms: float
    ms_to_realtime: float
    ms_from_realtime: float
    reply_latency_ms: list[float] = field(default_factory=list)
    barge_ins: int = 0
    dtmf: int = 0
    caller_close_code: int | None = None
    realtime_close_code: int | None = None
    transcript: list[TranscriptEntry] = field(default_factory=list)


def summarize(
    session: CallSession,
    *,
    front_door: str,
    duration_s: float,
    end_reason: str,
    reply_latency_ms: list[float] | None = None,
    caller_close_code: int | None = None,
    realtime_close_code: int | None = None,
) -> CallSummary:
    """The summary of a call from its session's counters (any door)."""
    stats = session.stats
    return CallSummary(
        call_uuid=session.info.call_uuid,
        front_door=front_door,
        duration_s=round(duration_s, 3),
        end_reason=end_reason,
        frames_in=stats.frames_in,
        frames_out=session.playout.frames_out,
        bad_frames=stats.bad_frames,
        underruns=session.playout.underruns,
        responses=stats.responses,
        held_ms=round(stats.held_ms, 1),
        ms_to_realtime=round(stats.ms_to_realtime, 1),
        ms_from_realtime=round(stats.ms_from_realtime, 1),
        reply_latency_ms=[round(x, 1) for x in reply_latency_ms or ()],
        barge_ins=stats.barge_ins,
        dtmf=stats.dtmf,
        caller_close_code=caller_close_code,
        realtime_close_code=realtime_close_code,
        transcript=list(stats.transcript),
    )


def log_summary(s: CallSummary) -> None:
    """The one summary line of a call (INFO): ``call summary k=v ... end_reason='...'``, with
    the fields (not the transcript) as ``extra={"summary": {...}}`` for JSON logs."""
    values: dict[str, Any] = {f.name: getattr(s, f.name) for f in fields(s)}
    values.pop("transcript")
    text = " ".join(f"{k}={v}" for k, v in values.items() if k != "end_reason")
    log.info("call summary %s end_reason=%r", text, s.end_reason, extra={"summary": values})


async def write_call_record(
    store: CallStore | None,
    session: CallSession,
    *,
    front_door: str,
    direction: str,
    started_at: datetime,
    end_reason: str,
    duration_s: float | None = None,
) -> None:
    """Write the call's record, off the audio path (both sockets closed); a failure is
    logged, never raised.

    Args:
        store: where records go; None writes nothing.
        session: the call's session: identity and transcript.
        front_door: one of ``store.FRONT_DOORS``.
        direction: ``inbound`` or ``outbound``.
        started_at: when the call started (aware UTC).
        end_reason: as in the summary line.
        duration_s: as in the summary line; None measures it from ``started_at``.
    """
    if store is None:
        return
    info = session.info
    ended_at = datetime.now(UTC)
    if duration_s is None:
        duration_s = round((ended_at - started_at).total_seconds(), 3)
    record = CallRecord(
        call_uuid=info.call_uuid,
        conversation_uuid=info.conversation_uuid,
        direction=direction,
        front_door=front_door,
        from_number=info.caller,
        to_number=info.called,
        started_at=started_at,
        ended_at=ended_at,
        duration_s=duration_s,
        end_reason=end_reason,
        transcript=tuple(session.stats.transcript),
    )
    try:
        async with asyncio.timeout(RECORD_WRITE_TIMEOUT_S):
            await store.add(record)
    except Exception:
        log.exception("call record of %s not written", info.call_uuid)


def log_notes(session: CallSession) -> None:
    """Log what the session asked to log, in order."""
    for note in session.drain_notes():
        log.log(logging.getLevelName(note.level.upper()), "%s", note.message)


# ------------------------------------------------------------------ tools


class ToolRunner:
    """Runs the session's tool calls as tasks of the call (every door).

    Each :class:`RunTool` the session emits (:meth:`start`) runs its handler with a timeout;
    the output (or ``{"error": ...}``: a failing tool is reported to the model, never fatal)
    goes back through ``session.tool_result`` and ``flush`` sends it. A call-ending tool sets
    :attr:`end_requested` (and :attr:`ended_by` to its name). The tasks die with the call
    (:meth:`stop`).

    Args:
        session: the call's session.
        tools: the tools the model may call; None refuses every call.
        ctx: what tools see of the call.
        flush: sends what the session queued (and starts the tools it asked for).
    """

    def __init__(
        self,
        session: CallSession,
        tools: ToolRegistry | None,
        ctx: ToolContext,
        flush: Callable[[], Awaitable[None]],
    ) -> None:
        self.session = session
        self.tools = tools
        self.ctx = ctx
        self.flush = flush
        self.tasks: set[asyncio.Task[None]] = set()
        self.end_requested = asyncio.Event()
        self.ended_by: str | None = None
        self._warned: set[str] = set()

    def start(self) -> None:
        """Start a task for each tool call the session asked for."""
        for run in self.session.drain_tool_calls():
            task = asyncio.create_task(self.run(run), name=f"tool-{run.name}")
            self.tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # only sending its result can fail here (a socket closing at the end of the call)
            log.debug("%s: result not delivered: %r", task.get_name(), exc)

    async def run(self, run: RunTool) -> None:
        """Run one tool call to its result and send that back."""
        tool = self.tools.get(run.name) if self.tools is not None else None
        ends_call = False
        if tool is None:
            output = json.dumps({"error": f"unknown tool {run.name!r}"})
            if run.name not in self._warned:
                self._warned.add(run.name)
                log.warning("the model called unknown tool %r", run.name)
        else:
            try:
                args = json.loads(run.arguments) if run.arguments.strip() else {}
                if not isinstance(args, dict):
                    raise ValueError("arguments are not a JSON object")
                async with asyncio.timeout(tool.timeout_s):
                    result = await tool.handler(args, self.ctx)
                output = result if isinstance(result, str) else json.dumps(result, default=str)
                ends_call = tool.ends_call
            except Exception as exc:  # a failing tool is reported to the model, never fatal
                log.warning("tool %s failed: %r", run.name, exc)
                output = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
        self.session.now = time.time()
        self.session.tool_result(run.call_id, output, end_call=ends_call)
        if ends_call:
            self.ended_by = run.name
            self.end_requested.set()
        await self.flush()

    async def stop(self) -> None:
        """Cancel the tools still running and wait for them (the call is ending)."""
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# ------------------------------------------------------------------ media calls


class _CallBridge:
    def __init__(
        self,
        caller: web.WebSocketResponse,
        session: CallSession,
        door: FrontDoor,
        http: aiohttp.ClientSession,
        openai: OpenAISettings,
        tools: ToolRegistry | None,
        tool_ctx: ToolContext,
    ) -> None:
        self.caller = caller
        self.session = session
        self.door = door
        self.http = http
        self.openai = openai
        self.runner = ToolRunner(session, tools, tool_ctx, self.flush)
        self.rt: aiohttp.ClientWebSocketResponse | None = None
        self.audio_ready = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.stopped_at: float | None = None
        self.reply_latency_ms: list[float] = []
        self.warned: set[str] = set()
        self.rt_close_sent: int | None = None  # set when we closed the Realtime socket

    # -------------------------------------------------------------- pumps

    async def caller_pump(self) -> CallEnd:
        session, caller, door = self.session, self.caller, self.door
        parse, binary_audio = door.parse, door.binary_audio
        async for msg in caller:
            if msg.type is WSMsgType.TEXT:
                try:
                    parsed = parse(msg.data)
                except RemoteProtocolError as exc:
                    session.caller_message_invalid(exc.message)
                    log_notes(session)
                    continue
                if isinstance(parsed, bytes):  # Twilio media (hot path)
                    await self.caller_audio(parsed)
                    continue
                if isinstance(parsed, StreamStopped):
                    return CallEnd(f"caller hung up ({door.name} stream stopped)")
                session.now = time.time()
                session.caller_event(parsed)
                await self.flush()
            elif msg.type is WSMsgType.BINARY:
                if binary_audio:  # Vonage audio (hot path)
                    await self.caller_audio(msg.data)
                else:
                    session.caller_message_invalid("binary message (audio comes in media)")
                    log_notes(session)
            elif msg.type is WSMsgType.ERROR:
                return CallEnd(f"caller socket error: {caller.exception()}", error=True)
        return CallEnd(f"caller hung up (close {caller.close_code})")

    async def caller_audio(self, frame: bytes) -> None:
        session = self.session
        out = session.caller_frame(frame)
        if out is not None:
            assert self.rt is not None  # BRIDGING implies an open socket
            await self.rt.send_str(out)
        elif session.has_notes:
            log_notes(session)

    async def realtime_pump(self) -> CallEnd:
        session = self.session
        rt = self.rt = await open_realtime(self.http, self.openai)
        await rt.send_str(session.realtime_opened())
        while held := session.flush_held():
            for message in held:
                await rt.send_str(message)
        log.info(
            "Realtime session open (model %s); sent %.0f ms of audio held while connecting",
            self.openai.model,
            session.stats.held_ms,
        )
        frame_bytes = session.frame_bytes
        async for msg in rt:
            if msg.type is WSMsgType.TEXT:
                try:
                    event = parse_server_event(msg.data)
                except RemoteProtocolError as exc:
                    self.warn_once("rt-text", f"bad Realtime event: {exc.message}")
                    continue
                session.now = time.time()
                session.realtime_event(event)
                if session.playout.buffered_bytes >= frame_bytes:
                    self.audio_ready.set()
                if isinstance(event, SpeechStopped):
                    self.stopped_at = self.loop.time()
                if session.has_output:
                    await self.flush()
            elif msg.type is WSMsgType.BINARY:
                self.warn_once("rt-binary", "ignoring binary message from Realtime")
            elif msg.type is WSMsgType.ERROR:
                return CallEnd(
                    f"Realtime socket error: {rt.exception()}", WSCloseCode.INTERNAL_ERROR, True
                )
        code = rt.close_code
        return CallEnd(
            f"Realtime closed the session (close {code})",
            WSCloseCode.INTERNAL_ERROR,
            code != WSCloseCode.OK,
        )

    async def playout_pump(self) -> CallEnd:
        session, caller, loop = self.session, self.caller, self.loop
        media = self.door.media
        while True:
            playout = session.playout
            epoch = session.playback_epoch
            frames = playout.take(loop.time())
            if frames:
                if self.stopped_at is not None:
                    self.reply_latency_ms.append((loop.time() - self.stopped_at) * 1000.0)
                    self.stopped_at = None
                if media is not None:  # Twilio: the batch in one media message
                    await caller.send_str(media(b"".join(frames)))
                else:
                    for frame in frames:
                        if session.playback_epoch != epoch:
                            break  # barge-in while sending: the rest of the batch is cut off
                        await caller.send_bytes(frame)
                # A playback marker after the batch: its echo says what has been heard.
                marker = session.frames_sent(len(frames), epoch)
                if marker is not None:
                    await caller.send_str(marker)
            wake = playout.wakeup_at(loop.time())
            if wake is None:
                self.audio_ready.clear()
                await self.audio_ready.wait()
            else:
                await asyncio.sleep(wake - loop.time())

    async def end_pump(self) -> CallEnd:
        """Ends the call once a call-ending tool ran and its reply has been heard."""
        await self.runner.end_requested.wait()
        session, loop = self.session, self.loop
        while True:
            if session.reply_finished:
                ahead = session.playout.ahead_s(loop.time())
                await asyncio.sleep(ahead + END_MARGIN_S)
                if session.reply_finished and session.playout.ahead_s(loop.time()) <= 0:
                    return CallEnd("the assistant ended the call", WSCloseCode.GOING_AWAY)
            else:
                await asyncio.sleep(0.05)  # the goodbye is still streaming (rare path)

    # -------------------------------------------------------------- helpers

    async def flush(self) -> None:
        session = self.session
        for command in session.drain_caller():  # clear first: stop the caller hearing
            await self.caller.send_str(command)
        if self.rt is not None and session.phase is Phase.BRIDGING:
            for message in session.drain_realtime():
                await self.rt.send_str(message)
        self.runner.start()
        log_notes(session)

    def warn_once(self, key: str, message: str) -> None:
        if key not in self.warned:
            self.warned.add(key)
            log.warning("%s", message)

    async def run(self) -> CallEnd:
        tasks = [
            asyncio.create_task(self.caller_pump(), name="caller-pump"),
            asyncio.create_task(self.realtime_pump(), name="realtime-pump"),
            asyncio.create_task(self.playout_pump(), name="playout-pump"),
            asyncio.create_task(self.end_pump(), name="end-pump"),
        ]
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, self.runner.stop(), return_exceptions=True)
        first = next(t for t in tasks if t in done)
        return self.outcome(first)

    def outcome(self, task: asyncio.Task[CallEnd]) -> CallEnd:
        if task.cancelled():
            return CallEnd("call task cancelled", WSCloseCode.GOING_AWAY)
        exc = task.exception()
        if exc is None:
            return task.result()
        if isinstance(exc, RealtimeConnectError):
            return CallEnd(exc.message, WSCloseCode.INTERNAL_ERROR, True)
        if isinstance(exc, aiohttp.ClientConnectionResetError | ConnectionResetError):
            return CallEnd(f"socket closed while sending ({task.get_name()})")
        log.error("call failed in %s", task.get_name(), exc_info=exc)
        return CallEnd(
            f"internal error in {task.get_name()}: {exc!r}", WSCloseCode.INTERNAL_ERROR, True
        )

    async def close(self, end: CallEnd, control: CallControl | None) -> None:
        if self.rt is not None and not self.rt.closed:
            self.rt_close_sent = WSCloseCode.OK
            await close_socket(self.rt, WSCloseCode.OK, "call ended")
        if control is not None and end.by_us:
            # Hang up before closing the socket: on Vonage that ends the call instead of
            # raising a "disconnected" event and running the rest of the NCCO.
            try:
                await control.hang_up(end.reason)
            except Exception:  # a failed hang-up never breaks the call's cleanup
                log.exception("%s hang-up raised", self.door.name)
        if not self.caller.closed:
            await close_socket(self.caller, end.caller_code, end.reason)


async def run_call(
    caller: web.WebSocketResponse,
    session: CallSession,
    door: FrontDoor,
    *,
    http: aiohttp.ClientSession,
    openai: OpenAISettings,
    control: CallControl | None = None,
    tools: ToolRegistry | None = None,
    tool_ctx: ToolContext | None = None,
) -> CallSummary:
    """Bridge an accepted media socket to a new Realtime session until either ends.

    Args:
        caller: the prepared media WebSocket, after its opening messages were read (Vonage
            ``websocket:connected``; Twilio ``connected`` and ``start``).
        session: the call's session, built with ``door.path`` and ``door.commands``.
        door: the media socket's wire format.
        http: the app's shared client session (used to open the Realtime socket).
        openai: Realtime settings.
        control: hangs the call up when our side ended it; None when the door's REST API is
            not configured (or the call id is not the carrier's).
        tools: the tools the model may call (declared through the session); each call runs
            as a task of the call, cancelled when the call ends.
        tool_ctx: what tools see of the call; default: its id and caller, ``control``'s
            transfer, ``door.name``.
    Returns:
        The call's summary (also logged as one INFO line, and the end as ERROR when we ended
        it by fault).
    """
    info = session.info
    ctx = tool_ctx or ToolContext(
        info.call_uuid,
        info.caller,
        transfer=control.transfer if control is not None else None,
        front_door=door.name,
        called=info.called,
    )
    bridge = _CallBridge(caller, session, door, http, openai, tools, ctx)
    started = bridge.loop.time()
    end = CallEnd("call task cancelled", WSCloseCode.GOING_AWAY)
    try:
        end = await bridge.run()
        if end.error:
            log.error("call ending: %s", end.reason)
    finally:
        log_notes(session)
        await asyncio.shield(bridge.close(end, control))
        summary = summarize(
            session,
            front_door=door.name,
            duration_s=bridge.loop.time() - started,
            end_reason=end.reason,
            reply_latency_ms=bridge.reply_latency_ms,
            caller_close_code=caller.close_code,
            realtime_close_code=(
                bridge.rt_close_sent
                if bridge.rt_close_sent is not None
                else (bridge.rt.close_code if bridge.rt is not None else None)
            ),
        )
        log_summary(summary)
    return summary


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
    Returns:
        The summary, or None when the opening failed.
    """
    calls = deps.calls
    task = asyncio.current_task()
    assert task is not None
    calls[call_id] = LiveCall(call_id, ws, task, control)
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
        summary: CallSummary | None = None
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
            )
        finally:  # run_call closed both sockets: off the audio path
            await write_call_record(
                deps.store,
                session,
                front_door=call.door.name,
                direction=call.direction,
                started_at=started_at,
                end_reason=summary.end_reason if summary is not None else "call handler stopped",
                duration_s=summary.duration_s if summary is not None else None,
            )
        return summary
    finally:
        calls.pop(call_id, None)

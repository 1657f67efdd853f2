"""``run_call``: one bridged call's tasks around a :class:`CallSession`. Shell: does I/O.

Three tasks per call, each a few lines of receive -> parse (pure) -> feed -> drain -> send:

- caller pump: caller socket -> session (frames up to Realtime as they come);
- Realtime pump: opens the Realtime socket, sends ``session.update`` and the held audio, then
  Realtime events -> session;
- playout pump: session's playout -> caller socket, paced to absolute deadlines with a
  bounded look-ahead (``audio.playout``).

The front door is a :class:`CallerWire`: how caller messages parse and how reply frames are
sent (Vonage: one binary message per 20 ms L16 frame; Twilio: one JSON ``media`` message per
batch). Everything else is shared.

The first task to end ends the call: the others are cancelled and awaited, both sockets are
closed with a code and a reason, and one summary line is logged. Nothing is logged per frame.
When our side ended the call (Realtime failed or closed, an internal error, shutdown) and the
front door's REST API is configured, the call is also hung up over REST before the caller
socket is closed, so the carrier ends it instead of only seeing the socket drop.

Source: style.md 7.4; protocols.md A3 (Vonage socket, "Ending the call"), C (Twilio Media
Streams), B1-B3 (Realtime).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

from .config import OpenAISettings
from .core.events import CallerEvent, RunTool, SpeechStopped, StreamStopped
from .core.session import CallSession, Phase
from .errors import RealtimeConnectError, RemoteProtocolError
from .realtime.connection import open_realtime
from .realtime.protocol import parse_server_event
from .tools import ToolContext, ToolRegistry
from .vonage.voice_api import VoiceApi
from .vonage.wire import parse_text

log = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED = 1003
CLOSE_INTERNAL = 1011
END_MARGIN_S = 0.3
"""After a call-ending tool, wait this long past our estimate of the caller's playback
position before hanging up (network and jitter-buffer delay on Vonage's side)."""


HangUp = Callable[[str], Awaitable[object]]
"""Ends the call on the carrier's side over REST, given the reason; logs its own failures."""


@dataclass(frozen=True, slots=True)
class CallerWire:
    """How one front door's media socket carries audio.

    Attributes:
        name: ``"Vonage"`` or ``"Twilio"``, for logs.
        parse: one text message -> caller audio (``bytes``, Twilio ``media``) or an event.
        binary_audio: caller audio arrives as binary messages (Vonage), else inside text.
        media: renders a batch of reply frames as one text message (Twilio); ``None`` sends
            each frame as its own binary message (Vonage: exactly one frame per message).
    """

    name: str
    parse: Callable[[str], bytes | CallerEvent]
    binary_audio: bool = True
    media: Callable[[bytes], str] | None = None


VONAGE_WIRE = CallerWire("Vonage", parse_text)


@dataclass(slots=True)
class CallEnd:
    """Why a call ended: which side, the close code we sent the caller, and a reason."""

    reason: str
    caller_code: int = CLOSE_NORMAL
    error: bool = False

    @property
    def by_us(self) -> bool:
        """Our side ended the call (we close the caller socket with 1001 or 1011), not the
        caller hanging up or their socket dropping."""
        return self.caller_code != CLOSE_NORMAL


@dataclass(slots=True)
class CallSummary:
    """What the summary line says; returned for tests and the simulation."""

    call_uuid: str
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
    transcript: list[tuple[str, str, float]] = field(default_factory=list)


class _CallBridge:
    def __init__(
        self,
        caller: web.WebSocketResponse,
        session: CallSession,
        http: aiohttp.ClientSession,
        openai: OpenAISettings,
        tools: ToolRegistry | None = None,
        tool_ctx: ToolContext | None = None,
        wire: CallerWire = VONAGE_WIRE,
    ) -> None:
        self.caller = caller
        self.session = session
        self.http = http
        self.openai = openai
        self.tools = tools
        self.wire = wire
        info = session.info
        self.tool_ctx = tool_ctx or ToolContext(info.call_uuid, info.caller)
        self.tool_tasks: set[asyncio.Task[None]] = set()
        self.end_requested = asyncio.Event()
        self.rt: aiohttp.ClientWebSocketResponse | None = None
        self.audio_ready = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.stopped_at: float | None = None
        self.reply_latency_ms: list[float] = []
        self.warned: set[str] = set()
        self.rt_close_sent: int | None = None  # set when we closed the Realtime socket

    # -------------------------------------------------------------- pumps

    async def caller_pump(self) -> CallEnd:
        session, caller, wire = self.session, self.caller, self.wire
        async for msg in caller:
            if msg.type is WSMsgType.TEXT:
                try:
                    parsed = wire.parse(msg.data)
                except RemoteProtocolError as exc:
                    session.caller_message_invalid(exc.message)
                    self.log_notes()
                    continue
                if isinstance(parsed, bytes):  # Twilio media (hot path)
                    await self.caller_audio(parsed)
                    continue
                if isinstance(parsed, StreamStopped):
                    return CallEnd(f"caller hung up ({wire.name} stream stopped)")
                session.now = time.time()
                session.caller_event(parsed)
                await self.flush()
            elif msg.type is WSMsgType.BINARY:
                if wire.binary_audio:  # Vonage audio (hot path)
                    await self.caller_audio(msg.data)
                else:
                    session.caller_message_invalid("binary message (audio comes in media)")
                    self.log_notes()
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
            self.log_notes()

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
                return CallEnd(f"Realtime socket error: {rt.exception()}", CLOSE_INTERNAL, True)
        code = rt.close_code
        return CallEnd(f"Realtime closed the session (close {code})", CLOSE_INTERNAL, code != 1000)

    async def playout_pump(self) -> CallEnd:
        session, caller, loop = self.session, self.caller, self.loop
        media = self.wire.media
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
        await self.end_requested.wait()
        session, loop = self.session, self.loop
        while True:
            if session.reply_finished:
                ahead = session.playout.ahead_s(loop.time())
                await asyncio.sleep(ahead + END_MARGIN_S)
                if session.reply_finished and session.playout.ahead_s(loop.time()) <= 0:
                    return CallEnd("the assistant ended the call", CLOSE_GOING_AWAY)
            else:
                await asyncio.sleep(0.05)  # the goodbye is still streaming (rare path)

    # -------------------------------------------------------------- tools

    def start_tools(self) -> None:
        for run in self.session.drain_tool_calls():
            task = asyncio.create_task(self.run_tool(run), name=f"tool-{run.name}")
            self.tool_tasks.add(task)
            task.add_done_callback(self.tool_done)

    def tool_done(self, task: asyncio.Task[None]) -> None:
        self.tool_tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            # only sending its result can fail here (a socket closing at the end of the call)
            log.debug("%s: result not delivered: %r", task.get_name(), exc)

    async def run_tool(self, run: RunTool) -> None:
        tool = self.tools.get(run.name) if self.tools is not None else None
        ends_call = False
        if tool is None:
            output = json.dumps({"error": f"unknown tool {run.name!r}"})
            self.warn_once(f"tool:{run.name}", f"the model called unknown tool {run.name!r}")
        else:
            try:
                args = json.loads(run.arguments) if run.arguments.strip() else {}
                if not isinstance(args, dict):
                    raise ValueError("arguments are not a JSON object")
                async with asyncio.timeout(tool.timeout_s):
                    result = await tool.handler(args, self.tool_ctx)
                output = result if isinstance(result, str) else json.dumps(result, default=str)
                ends_call = tool.ends_call
            except Exception as exc:  # a failing tool is reported to the model, never fatal
                log.warning("tool %s failed: %r", run.name, exc)
                output = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
        self.session.now = time.time()
        self.session.tool_result(run.call_id, output, end_call=ends_call)
        if ends_call:
            self.end_requested.set()
        await self.flush()

    # -------------------------------------------------------------- helpers

    async def flush(self) -> None:
        session = self.session
        for command in session.drain_caller():  # clear first: stop the caller hearing
            await self.caller.send_str(command)
        if self.rt is not None and session.phase is Phase.BRIDGING:
            for message in session.drain_realtime():
                await self.rt.send_str(message)
        self.start_tools()
        self.log_notes()

    def log_notes(self) -> None:
        for note in self.session.drain_notes():
            log.log(logging.getLevelName(note.level.upper()), "%s", note.message)

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
            tool_tasks = list(self.tool_tasks)  # tools still running die with the call
            for task in tasks + tool_tasks:
                task.cancel()
            await asyncio.gather(*tasks, *tool_tasks, return_exceptions=True)
        first = next(t for t in tasks if t in done)
        return self.outcome(first)

    def outcome(self, task: asyncio.Task[CallEnd]) -> CallEnd:
        if task.cancelled():
            return CallEnd("call task cancelled", CLOSE_GOING_AWAY)
        exc = task.exception()
        if exc is None:
            return task.result()
        if isinstance(exc, RealtimeConnectError):
            return CallEnd(exc.message, CLOSE_INTERNAL, True)
        if isinstance(exc, aiohttp.ClientConnectionResetError | ConnectionResetError):
            return CallEnd(f"socket closed while sending ({task.get_name()})")
        log.error("call failed in %s", task.get_name(), exc_info=exc)
        return CallEnd(f"internal error in {task.get_name()}: {exc!r}", CLOSE_INTERNAL, True)

    async def close(self, end: CallEnd, hang_up: HangUp | None) -> None:
        if self.rt is not None and not self.rt.closed:
            self.rt_close_sent = CLOSE_NORMAL
            await self.rt.close(code=CLOSE_NORMAL, message=b"call ended")
        if hang_up is not None and end.by_us:
            # Hang up before closing the socket: that ends the call instead of raising a
            # "disconnected" event and running the rest of the NCCO [V-WSG].
            try:
                await hang_up(end.reason)
            except Exception:  # a failed hang-up never breaks the call's cleanup
                log.exception("%s hang-up raised", self.wire.name)
        if not self.caller.closed:
            await self.caller.close(code=end.caller_code, message=_reason(end.reason))


def _reason(text: str) -> bytes:
    """A close reason fits in 123 bytes (RFC 6455 5.5)."""
    return text.encode("utf-8")[:123].decode("utf-8", "ignore").encode("utf-8")


async def run_call(
    caller: web.WebSocketResponse,
    session: CallSession,
    *,
    http: aiohttp.ClientSession,
    openai: OpenAISettings,
    hang_up: HangUp | None = None,
    tools: ToolRegistry | None = None,
    voice_api: VoiceApi | None = None,
    tool_ctx: ToolContext | None = None,
    wire: CallerWire = VONAGE_WIRE,
) -> CallSummary:
    """Bridge an accepted media socket to a new Realtime session until either ends.

    Args:
        caller: the prepared media WebSocket, after its opening messages were read (Vonage
            ``websocket:connected``; Twilio ``connected`` and ``start``).
        session: the call's session (already told the caller's format).
        http: the app's shared client session (used to open the Realtime socket).
        openai: Realtime settings.
        hang_up: ends the call over the front door's REST API (``calls.CallHangUp``,
            ``twilio_api.TwilioHangUp``), called when our side ended the call; None when
            its credentials are not configured.
        tools: the tools the model may call (declared through the session); each call runs
            as a task of the call, cancelled when the call ends.
        voice_api: Vonage REST for tools (``transfer_call``); None when not configured.
        tool_ctx: what tools see of the call; default built from the session and
            ``voice_api``.
        wire: the front door's media socket format (default Vonage).
    Returns:
        The call's summary (also logged as one INFO line, or ERROR when we ended it by fault).
    """
    info = session.info
    ctx = tool_ctx or ToolContext(info.call_uuid, info.caller, voice_api, called=info.called)
    bridge = _CallBridge(caller, session, http, openai, tools, ctx, wire)
    started = bridge.loop.time()
    end = CallEnd("call task cancelled", CLOSE_GOING_AWAY)
    try:
        end = await bridge.run()
        if end.error:
            log.error("call ending: %s", end.reason)
    finally:
        bridge.log_notes()
        await asyncio.shield(bridge.close(end, hang_up))
        stats = session.stats
        summary = CallSummary(
            call_uuid=session.info.call_uuid,
            duration_s=round(bridge.loop.time() - started, 3),
            end_reason=end.reason,
            frames_in=stats.frames_in,
            frames_out=session.playout.frames_out,
            bad_frames=stats.bad_frames,
            underruns=session.playout.underruns,
            responses=stats.responses,
            held_ms=round(stats.held_ms, 1),
            ms_to_realtime=round(stats.ms_to_realtime, 1),
            ms_from_realtime=round(stats.ms_from_realtime, 1),
            reply_latency_ms=[round(x, 1) for x in bridge.reply_latency_ms],
            barge_ins=stats.barge_ins,
            dtmf=stats.dtmf,
            caller_close_code=caller.close_code,
            realtime_close_code=(
                bridge.rt_close_sent
                if bridge.rt_close_sent is not None
                else (bridge.rt.close_code if bridge.rt is not None else None)
            ),
            transcript=list(stats.transcript),
        )
        _log_summary(summary)
    return summary


def _log_summary(s: CallSummary) -> None:
    fields: dict[str, Any] = asdict(s)
    fields.pop("transcript")
    text = " ".join(f"{k}={v}" for k, v in fields.items() if k != "end_reason")
    log.info("call summary %s end_reason=%r", text, s.end_reason, extra={"summary": fields})

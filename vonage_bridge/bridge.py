"""The call engine shared by every front door. Shell: does I/O.

One call, whatever door it came through, is a :class:`CallSession` (the pure core) plus this:

- ``media_call.serve_media_call`` (its own module): a media socket's whole life (Vonage,
  Twilio), around :func:`run_call`;
- :func:`run_call`: one media call's tasks around its session, each a few lines of
  receive -> parse (pure) -> feed -> drain -> send:

  - caller pump: caller socket -> session (frames up to Realtime as they come; frames that
    were already read together, when the loop ran late, go up in one append), policed at
    real time (``core.ratelimit``): frames more than :data:`CALLER_BURST_S` ahead are dropped
    and counted, and past :data:`CALLER_EXCESS_LIMIT_S` of them the caller is closed with 1008;
  - Realtime pump: adopts the call's warm session (``realtime.prewarm``: opened by the answer
    URL, waiting for it while it still opens) or opens the Realtime socket and sends
    ``session.update``; sends the held audio, replays the events the warm session's reader
    read (up to ``session.updated``), then Realtime events -> session. A warm session
    that is ready when the call starts is adopted before any caller frame is read, so nothing
    is held;
  - playout pump: session's playout -> caller socket, paced to absolute deadlines with a
    bounded look-ahead (``audio.playout``); each batch, with a playback marker after every
    100 ms of it, goes out in one transport write (``wsbatch``: one ``send()`` a batch);
  - end pump: ends the call once a call-ending tool ran and its reply has been heard;
  - watch (the call's one timer): ends the call when Realtime sends nothing for
    ``REALTIME_STALL_TIMEOUT_S`` while a reply is expected (a response is active, or the
    caller's turn ended or we sent ``response.create``, and no ``response.created`` came
    yet); and applies the assistant's call limits (``core.limits``): told to wrap up before
    ``max_call_s``, a goodbye and the end at it (``max_duration``); after
    ``inactivity_timeout_s`` of silence a "still there?", after the same again a goodbye and
    the end (``inactivity``);
  - goodbye (registered calls only): when a drain runs out of time
    (``LiveCall.end_politely``), lets the reply in progress finish, asks the model for a
    short goodbye (``response.create`` with :data:`DRAIN_GOODBYE_INSTRUCTIONS`), waits for it to be
    heard, then ends the call (REST hang-up, 1001), all within :data:`DRAIN_GOODBYE_TIMEOUT_S`.
    Outbound voicemail goes through it too: while a machine's greeting plays
    (``LiveCall.hold_replies``) every reply is cancelled and cleared
    (``CallSession.hold_replies``); at the beep (``LiveCall.leave_message``) the model is asked
    to say the message word for word (:data:`VOICEMAIL_INSTRUCTIONS`), and once it has been
    heard the call ends the same way, within :func:`voicemail_timeout_s`;

- a recorded call's :class:`~.recording.recorder.CallRecorder` (``recorder``): fed each
  caller frame, each batch of reply frames handed to the caller (with when it plays) and
  each barge-in, one cheap call each; its writer thread does the rest;
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
import contextlib
import logging
import time
from collections.abc import Callable

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web

from .audio.formats import FRAME_MS
from .calls import CallControl, LiveCall, close_socket
from .config import OpenAISettings
from .core.events import (
    ResponseCreated,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    StreamStopped,
)
from .core.frontdoor import FrontDoor
from .core.ledger import NOTIFY_EVERY_MS
from .core.limits import GOODBYE_TIMEOUT_S, CallLimits, LimitAction
from .core.ratelimit import TokenBucket
from .core.session import CallSession, Phase
from .errors import RealtimeConnectError, RemoteProtocolError
from .metrics import METRICS
from .realtime.connection import open_realtime
from .realtime.prewarm import UNUSED_REASON, WarmSession
from .realtime.protocol import client_event, parse_server_event
from .recording.recorder import CallRecorder
from .records import CallEnd, CallSummary, log_notes, log_summary, summarize
from .tool_runner import ToolRunner
from .tools import ToolContext, ToolRegistry
from .wsbatch import BatchSender, inbox

log = logging.getLogger(__name__)

END_MARGIN_S = 0.3
"""After a call-ending tool, wait this long past our estimate of the caller's playback
position before hanging up (network and jitter-buffer delay on the carrier's side)."""
CALLER_BURST_S = 1.0
"""Caller audio may run this far (s of audio) ahead of real time before frames are dropped:
room for a network hiccup delivering held-up frames at once. Vonage and Twilio send one
20 ms frame every 20 ms, so more than this is not a phone line."""
CALLER_EXCESS_LIMIT_S = 5.0
"""Once more than this much caller audio (s) was dropped for coming faster than real time,
the call ends: caller socket closed with 1008 (:data:`TOO_FAST_REASON`), hung up over REST."""
TOO_FAST_REASON = "audio faster than real time"
STALL_TICK_S = 1.0
"""The watch (stall check, call limits) runs this often at most (a quarter of the stall
timeout or of the shortest call limit when that is shorter): one timer per call, nothing per
event."""
_RESPONSE_CREATE = client_event({"type": "response.create"})
DRAIN_GOODBYE_INSTRUCTIONS = (
    "The line has to close now for maintenance. In one short sentence, apologise, say the "
    "caller can call back in a minute, and say goodbye. Do not ask anything."
)
"""The instructions of the goodbye ``response.create`` (Realtime ``response.instructions``:
https://platform.openai.com/docs/api-reference/realtime-client-events/response/create)."""
DRAIN_GOODBYE_TIMEOUT_S = 8.0
"""Bound on a goodbye, s: the reply in progress finishing, the goodbye spoken and heard."""
DRAIN_GOODBYE_WAIT_S = 3.0
"""Part of :data:`DRAIN_GOODBYE_TIMEOUT_S` the reply in progress gets to finish before the goodbye
is asked for anyway (Realtime refuses a second active response)."""
_DRAIN_GOODBYE_CREATE = client_event(
    {"type": "response.create", "response": {"instructions": DRAIN_GOODBYE_INSTRUCTIONS}}
)
COMBINE_FRAMES = 10
"""At most this many caller frames (200 ms) that were already waiting together go up in one
``input_audio_buffer.append``: one resampler call, one base64 and one write instead of one
each per frame when the loop runs late (under load)."""
VOICEMAIL_INSTRUCTIONS = (
    "You are leaving a voicemail: the beep has sounded and you are being recorded. Say the "
    "following message exactly as written, word for word, in the language it is written in, "
    "then stop. Add nothing before or after it and ask nothing.\n\nMessage:\n{message}"
)
"""The instructions of the voicemail ``response.create`` (``{message}``: the message of
``POST /connect``'s ``machine_detection``)."""
VOICEMAIL_S_PER_CHAR = 0.1
"""Bound on saying a voicemail message, s per character (speech is about 15 characters a
second), on top of :data:`DRAIN_GOODBYE_TIMEOUT_S`."""


def voicemail_timeout_s(message: str) -> float:
    """Bound on a voicemail message being said and heard, s: :data:`DRAIN_GOODBYE_TIMEOUT_S`
    plus :data:`VOICEMAIL_S_PER_CHAR` a character of ``message``."""
    return DRAIN_GOODBYE_TIMEOUT_S + VOICEMAIL_S_PER_CHAR * len(message)


MARK_FRAMES = max(1, NOTIFY_EVERY_MS // FRAME_MS)
"""Frames between two playback markers inside a batch (100 ms): a deep look-ahead sends
large batches, and the caller's acknowledged position must keep its 100 ms grain."""

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
        warm: WarmSession | None = None,
        live: LiveCall | None = None,
        recorder: CallRecorder | None = None,
    ) -> None:
        self.caller = caller
        self.live = live
        self.recorder = recorder  # the call's recording (hooks: caller, played, cleared)
        self.warm = warm  # the call's warm Realtime session until adopted (or discarded)
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
        self.reply_latency = METRICS.reply_latency_for(door.name)  # observed once a reply
        self.connect_began: float | None = None  # loop time the Realtime upgrade began
        self.adopted_warm: WarmSession | None = None  # its reader's events: replay_early
        self.warned: set[str] = set()
        self.rt_close_sent: int | None = None  # set when we closed the Realtime socket
        # caller audio policed at real time (hot path: one take() per frame)
        self.clock = self.loop.time
        self.audio_bucket = TokenBucket(1.0, CALLER_BURST_S, self.clock())
        self.s_per_byte = 0.0
        self.frame_bytes = session.frame_bytes
        self.caller_format_changed()
        self.fast_frames_dropped = 0
        # caller frames already read together go up in one append (caller_audio); the
        # queue of messages aiohttp has read and not yet handed out (None: unknown)
        self.inbox = inbox(caller)
        self.combined: list[bytes] = []  # reused: no list per frame
        self.fast_dropped_s = 0.0
        # stall watch: loop time of the last Realtime event (or of our response.create), and
        # whether a reply is awaited that no response.created has started yet
        self.rt_heard_at = self.clock()
        self.reply_awaited = False
        # silent-socket watch: loop time of the caller's last message (door.silent_limit_s)
        self.caller_heard_at = self.rt_heard_at
        assistant = session.context.assistant
        self.limits = CallLimits(assistant.max_call_s, assistant.inactivity_timeout_s, self.clock())

    # -------------------------------------------------------------- pumps

    async def caller_pump(self) -> CallEnd:
        """Caller socket -> session until the caller hangs up or the socket fails.

        Binary messages are audio on doors with ``binary_audio`` (Vonage), text messages go through
        ``door.parse`` (Twilio media comes back as bytes); a bad message is noted and skipped.

        Returns:
            The call's end: the caller hung up (close code, or Twilio ``stop``), a socket error,
            or audio too far ahead of real time (1008, :meth:`too_fast`).
        """
        session, caller, door = self.session, self.caller, self.door
        parse, binary_audio = door.parse, door.binary_audio
        async for msg in caller:
            if msg.type is WSMsgType.BINARY and binary_audio:  # Vonage audio (hot path)
                if (end := await self.caller_audio(msg.data)) is not None:
                    return end
                continue
            if msg.type is WSMsgType.TEXT:
                try:
                    parsed = parse(msg.data)
                except RemoteProtocolError as exc:
                    self.caller_heard_at = self.clock()  # junk, but the socket is alive
                    await self.send_combined()
                    session.caller_message_invalid(exc.message)
                    log_notes(session)
                    continue
                if isinstance(parsed, bytes):  # Twilio media (hot path)
                    if (end := await self.caller_audio(parsed)) is not None:
                        return end
                    continue
                self.caller_heard_at = self.clock()  # (audio stamps it in caller_audio)
                await self.send_combined()  # the audio before the event goes up first
                if isinstance(parsed, StreamStopped):
                    return CallEnd(f"caller hung up ({door.name} stream stopped)")
                session.now = time.time()
                session.caller_event(parsed)
                self.caller_format_changed()  # websocket:connected may set the rate
                await self.flush()
                continue
            await self.send_combined()
            if msg.type is WSMsgType.BINARY:
                session.caller_message_invalid("binary message (audio comes in media)")
                log_notes(session)
            elif msg.type is WSMsgType.ERROR:
                return CallEnd(f"caller socket error: {caller.exception()}", error=True)
        await self.send_combined()
        return CallEnd(f"caller hung up (close {caller.close_code})")

    async def caller_audio(self, frame: bytes) -> CallEnd | None:
        """One frame of caller audio (hot path): up to Realtime, or dropped when it came
        faster than real time. Returns the call's end once too much was dropped.

        Frames that aiohttp had already read together (the loop ran late, or the network
        delivered them at once) go up in one ``input_audio_buffer.append``, resampled as one
        block: up to :data:`COMBINE_FRAMES` whole frames, never waiting for one that has not
        arrived (a frame alone goes up at once, as before)."""
        now = self.caller_heard_at = self.clock()
        if not self.audio_bucket.take(now, len(frame) * self.s_per_byte):
            return self.too_fast(len(frame))
        if self.recorder is not None:
            self.recorder.caller(frame, now)
        combined, inbox = self.combined, self.inbox
        if len(frame) == self.frame_bytes:
            if combined or (inbox is not None and len(inbox)):
                combined.append(frame)
                if len(combined) < COMBINE_FRAMES and inbox is not None and len(inbox):
                    return None  # the next message is already here: read without waiting
                await self.send_combined()
                return None
        elif combined:  # an odd-sized frame after combined ones: keep the order
            await self.send_combined()
        await self.send_up(frame, 1)  # the usual case: a frame alone goes up at once
        return None

    async def send_combined(self) -> None:
        """Send the frames :meth:`caller_audio` combined, if any, as one append."""
        combined = self.combined
        if combined:
            n = len(combined)
            block = combined[0] if n == 1 else b"".join(combined)
            combined.clear()
            await self.send_up(block, n)

    async def send_up(self, audio: bytes, frames: int) -> None:
        """``frames`` caller frames (PCM in the caller's format) as one
        ``input_audio_buffer.append``, or held while the session opens."""
        session = self.session
        out = session.caller_frame(audio, frames)
        if out is not None:
            assert self.rt is not None  # BRIDGING implies an open socket
            await self.rt.send_str(out)
        elif session.has_notes:
            log_notes(session)

    def too_fast(self, n_bytes: int) -> CallEnd | None:
        """A caller frame over the real-time rate: dropped and counted; the first is logged;
        past :data:`CALLER_EXCESS_LIMIT_S` of dropped audio the call ends with 1008."""
        self.fast_frames_dropped += 1
        self.fast_dropped_s += n_bytes * self.s_per_byte
        if self.fast_frames_dropped == 1:
            log.warning(
                "caller audio faster than real time: dropping what runs over %.0f s ahead",
                CALLER_BURST_S,
            )
        if self.fast_dropped_s <= CALLER_EXCESS_LIMIT_S:
            return None
        log.warning(
            "closing the call: %.1f s of caller audio dropped for coming faster than real time",
            self.fast_dropped_s,
        )
        return CallEnd(TOO_FAST_REASON, WSCloseCode.POLICY_VIOLATION)

    def caller_format_changed(self) -> None:
        """Re-read the caller's audio format: seconds per byte for the rate check, the size
        of a whole frame for combining."""
        self.s_per_byte = 0.001 / self.session.caller_format.bytes_per_ms
        self.frame_bytes = self.session.frame_bytes

    async def realtime_pump(self) -> CallEnd:
        """Realtime socket -> session: open or adopt it, send held audio, then feed each event.

        Returns:
            The call's end when the Realtime socket closes (1011 to the caller; an error unless
            Realtime closed with 1000) or fails. Bad events are logged once and skipped.
        Raises:
            RealtimeConnectError: a new session could not be opened (:meth:`open_session`).
        """
        session = self.session
        if self.rt is None:  # not adopted before the pumps started (adopt_ready)
            await self.open_session()
        rt = self.rt
        assert rt is not None
        while held := session.flush_held():
            for message in held:
                await rt.send_str(message)
        log.info(
            "Realtime session open (model %s); sent %.0f ms of audio held while connecting",
            self.openai.model,
            session.stats.held_ms,
        )
        if self.adopted_warm is not None:
            await self.replay_early(self.adopted_warm)
        frame_bytes, clock = session.frame_bytes, self.clock
        async for msg in rt:
            if msg.type is WSMsgType.TEXT:
                self.rt_heard_at = clock()  # the session is alive (stall watch)
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
                    self.stopped_at = self.rt_heard_at
                    self.reply_awaited = True  # the caller's turn ended (create_response)
                elif isinstance(event, ResponseCreated | SpeechStarted):
                    self.reply_awaited = False  # it started, or the caller speaks again
                    if self.recorder is not None:  # a barge-in cuts the recorded reply
                        self.recorder.cleared(session.playback_epoch, self.rt_heard_at)
                elif isinstance(event, SessionUpdated) and self.connect_began is not None:
                    METRICS.realtime_connected(self.rt_heard_at - self.connect_began)
                    self.connect_began = None
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

    async def replay_early(self, warm: WarmSession) -> None:
        """Once, before the Realtime pump reads the socket: waits for the warm session's
        reader (``WarmSession.settled``), then the events it read (``WarmSession.early``, up
        to ``session.updated``) reach the session in order, as if read from the socket now."""
        await warm.settled()
        self.adopted_warm = None
        session = self.session
        session.now = time.time()
        for data in warm.early:
            try:
                session.realtime_event(parse_server_event(data))
            except RemoteProtocolError as exc:
                self.warn_once("rt-text", f"bad Realtime event: {exc.message}")
        if session.has_output:
            await self.flush()

    async def playout_pump(self) -> CallEnd:
        """Session's playout -> caller socket, paced to the playout's deadlines; runs until
        cancelled.

        Each batch goes out in one transport write with a playback marker every
        :data:`MARK_FRAMES` frames (100 ms), or through :meth:`send_slowly` when the socket cannot
        take a batch at once.
        """
        session, caller, loop = self.session, self.caller, self.loop
        media = self.door.media
        # One transport write per batch (one send() instead of one per message): the frames
        # (Vonage: one binary message each; Twilio: a media message per marker's worth) with
        # a playback marker after each MARK_FRAMES, whose echo says what has been heard.
        sender = BatchSender(caller, session.frame_bytes)
        no_frames: list[bytes] = []
        while True:
            playout = session.playout
            epoch = session.playback_epoch
            frames = playout.take(loop.time())
            if frames:
                if self.recorder is not None:  # the reply as the caller hears it
                    now = loop.time()
                    self.recorder.played(frames, now + playout.ahead_s(now), now)
                if self.stopped_at is not None:
                    latency_s = loop.time() - self.stopped_at
                    self.reply_latency_ms.append(latency_s * 1000.0)
                    self.reply_latency.observe(latency_s)
                    self.stopped_at = None
                if sender.ready:  # nothing yields from here to the write: no barge-in between
                    for i in range(0, len(frames), MARK_FRAMES):
                        chunk = (
                            frames if len(frames) <= MARK_FRAMES else frames[i : i + MARK_FRAMES]
                        )
                        marker = session.frames_sent(len(chunk), epoch)
                        if media is not None:  # Twilio: the chunk in one media message
                            sender.add(no_frames, media(b"".join(chunk)), marker)
                        else:
                            sender.add(chunk, marker)
                    sender.flush()
                else:  # compression or a slow peer: aiohttp's sends, which may wait
                    await self.send_slowly(frames, epoch)
            wake = playout.wakeup_at(loop.time())
            if wake is None:
                self.audio_ready.clear()
                await self.audio_ready.wait()
            else:
                await asyncio.sleep(wake - loop.time())

    async def send_slowly(self, frames: list[bytes], epoch: int) -> None:
        """The playout pump's batch through aiohttp's sends, which may wait for a slow
        peer: a barge-in meanwhile cuts the rest of the batch off."""
        session, caller, media = self.session, self.caller, self.door.media
        for i in range(0, len(frames), MARK_FRAMES):
            chunk = frames[i : i + MARK_FRAMES]
            if media is not None:  # Twilio: the chunk in one media message
                if session.playback_epoch != epoch:
                    return
                await caller.send_str(media(b"".join(chunk)))
            else:
                for frame in chunk:
                    if session.playback_epoch != epoch:
                        return  # barge-in while sending: the rest is cut off
                    await caller.send_bytes(frame)
            marker = session.frames_sent(len(chunk), epoch)
            if marker is not None:
                await caller.send_str(marker)

    async def end_pump(self) -> CallEnd:
        """Ends the call once a call-ending tool ran and its reply has been heard."""
        await self.runner.end_requested.wait()
        await self.reply_heard()
        return CallEnd("the assistant ended the call", WSCloseCode.GOING_AWAY)

    async def reply_heard(self) -> None:
        """Return once no reply is active or waiting and the caller has heard all of it
        (our playback estimate plus :data:`END_MARGIN_S`); a reply that starts meanwhile is
        waited for too. Unbounded: callers bound it."""
        session, loop = self.session, self.loop
        while True:
            if session.reply_finished:
                ahead = session.playout.ahead_s(loop.time())
                await asyncio.sleep(ahead + END_MARGIN_S)
                if session.reply_finished and session.playout.ahead_s(loop.time()) <= 0:
                    return
            else:
                await asyncio.sleep(0.05)  # the goodbye is still streaming (rare path)

    async def watch(self) -> CallEnd:
        """The call's one timer, every second at most (a quarter of the shortest timeout
        when that is shorter): the stall check, the silent caller socket check
        (``door.silent_limit_s``) and the call limits. Nothing per frame."""
        timeout = self.openai.stall_timeout_s
        silent_limit = self.door.silent_limit_s
        limits = self.limits
        tick = min(STALL_TICK_S, timeout / 4, limits.tick_s())
        session, clock = self.session, self.clock
        goodbye_at: float | None = None
        while True:
            await asyncio.sleep(tick)
            now = clock()
            expected = self.reply_awaited or session.active_response is not None
            if expected and now - self.rt_heard_at >= timeout:
                return CallEnd(
                    f"Realtime stalled: no event for {timeout:g} s",
                    WSCloseCode.INTERNAL_ERROR,
                    True,
                )
            if silent_limit is not None and now - self.caller_heard_at >= silent_limit:
                # the carrier's side failed, not ours: a WARNING, and the call is hung up
                log.warning("caller socket sent nothing for %g s: ending the call", silent_limit)
                return CallEnd(
                    f"caller socket silent for {silent_limit:g} s", WSCloseCode.GOING_AWAY
                )
            if goodbye_at is not None:  # a limit's goodbye: end once it has been heard
                heard_out = limits.goodbye_said(session) and session.playout.ahead_s(now) <= 0
                if heard_out or now - goodbye_at >= GOODBYE_TIMEOUT_S:
                    if heard_out:
                        await asyncio.sleep(END_MARGIN_S)
                    return CallEnd(limits.ending or "limit", WSCloseCode.GOING_AWAY)
                continue
            playing = session.playout.buffered_bytes or session.playout.ahead_s(now) > 0
            busy = session.caller_speaking or expected or bool(playing)
            action = limits.step(session, now, busy=busy)
            if action is None:
                continue
            log.info("call limit: %s (%.0f s into the call)", action.value, now - limits.started_at)
            if action is not LimitAction.WRAP_UP:  # a reply is due: the stall check covers it
                self.reply_awaited = True
                self.rt_heard_at = now
            if action.ends_call:
                goodbye_at = now
            await self.flush()

    async def goodbye(self) -> CallEnd:
        """Waits for :meth:`LiveCall.end_politely`, then says goodbye (or the voicemail
        message of :meth:`LiveCall.leave_message`) and ends the call (see the module
        docstring); the end reason is the live call's ``ending``. Meanwhile holds the replies
        when :meth:`LiveCall.hold_replies` asks it to."""
        live = self.live
        assert live is not None
        session, loop = self.session, self.loop
        await live.wind_down.wait()
        while live.ending is None:  # hold_replies: quiet until the message (or the end)
            live.wind_down.clear()
            if not session.holding:
                log.info("voicemail: a machine answered: holding replies until the beep")
            session.hold_replies()
            await self.flush()
            await live.wind_down.wait()
        if live.message is not None:
            return await self.leave_message(live.message, live.ending)
        deadline = loop.time() + DRAIN_GOODBYE_TIMEOUT_S
        end = CallEnd(live.ending or "call ended by the service", WSCloseCode.GOING_AWAY)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                await self.until(lambda: session.active_response is None, DRAIN_GOODBYE_WAIT_S)
                rt = self.rt
                if rt is None or rt.closed or session.phase is not Phase.BRIDGING:
                    return end  # no Realtime session to speak with
                await rt.send_str(_DRAIN_GOODBYE_CREATE)
                log.info("asked the assistant to say goodbye (%s)", end.reason)
                self.reply_awaited = True  # the stall watch covers the goodbye too
                self.rt_heard_at = self.clock()
                await self.until(lambda: not self.reply_awaited, DRAIN_GOODBYE_TIMEOUT_S)
                await self.reply_heard()
                return end
        log.info("goodbye not finished within %.0f s: ending the call", DRAIN_GOODBYE_TIMEOUT_S)
        return end

    async def leave_message(self, message: str, reason: str) -> CallEnd:
        """Has the assistant say ``message`` (a ``response.create`` whose instructions are
        :data:`VOICEMAIL_INSTRUCTIONS`, sent once the Realtime session is bridging and the
        held reply, if any, is done), waits until it has been heard, then ends the call with
        ``reason`` (REST hang-up, 1001); all within :func:`voicemail_timeout_s`.
        Source: https://platform.openai.com/docs/api-reference/realtime-client-events/response/create
        """
        session, loop, stats = self.session, self.loop, self.session.stats
        end = CallEnd(reason, WSCloseCode.GOING_AWAY)
        timeout_s = voicemail_timeout_s(message)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self.until(lambda: session.phase is Phase.BRIDGING, timeout_s)
                rt = self.rt
                if rt is None or rt.closed:
                    return end  # no Realtime session to speak with
                before = stats.responses
                session.say(VOICEMAIL_INSTRUCTIONS.format(message=message))
                await self.flush()
                log.info(
                    "voicemail: asked the assistant to say the message (%d chars)", len(message)
                )
                self.reply_awaited = True  # the stall watch covers it too
                self.rt_heard_at = self.clock()
                await self.until(
                    lambda: stats.responses > before and session.reply_finished, timeout_s
                )
                await asyncio.sleep(session.playout.ahead_s(loop.time()) + END_MARGIN_S)
                log.info("voicemail: the message has been heard: hanging up")
                return end
        log.info("voicemail: message not finished within %.0f s: ending the call", timeout_s)
        return end

    @staticmethod
    async def until(condition: Callable[[], bool], timeout_s: float) -> None:
        """Return once ``condition()`` holds (checked every 50 ms: this rare path adds no
        event to the hot path) or after ``timeout_s``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while not condition():
                    await asyncio.sleep(0.05)

    # -------------------------------------------------------------- opening Realtime

    def adopt_ready(self) -> None:
        """Before the pumps start: adopt the warm session if it is open and was sent this
        call's ``session.update``; the call is then BRIDGING before any caller frame is read,
        so the caller's first words go straight up (nothing held)."""
        warm = self.warm
        if warm is None or not warm.ready or warm.update != self.session.realtime_opened():
            return
        self.adopted(warm, warm.opened())
        self.session.flush_held()  # no caller frame was read yet: [] and BRIDGING

    async def open_session(self) -> None:
        """Adopt the warm session (waiting while it opens) or, without one or when it failed,
        open a new one; either way the socket has this call's ``session.update`` after this
        (the session is OPENING: held audio next).

        Raises:
            RealtimeConnectError: a new session could not be opened.
        """
        session, warm = self.session, self.warm
        if warm is not None:
            rt = await warm.socket()  # cancelled here: close() discards it
            if rt is not None:  # its reader measures the connect time (replay_early)
                self.adopted(warm, rt)
                update = session.realtime_opened()
                if update != warm.update:  # never expected: same builder, same call info
                    log.warning("warm session.update differs from the call's: sending it")
                    await rt.send_str(update)
                return
            self.warm = None
        self.connect_began = self.clock()
        rt = self.rt = await open_realtime(self.http, self.openai)
        await rt.send_str(session.realtime_opened())

    def adopted(self, warm: WarmSession, rt: aiohttp.ClientWebSocketResponse) -> None:
        """Make ``rt``, the warm session's open socket, the call's Realtime socket; its early events
        are replayed by :meth:`replay_early`."""
        self.warm = None
        self.rt = rt
        self.adopted_warm = warm
        log.info(
            "adopted the warm Realtime session (opening began %.0f ms before)",
            (self.clock() - warm.started_at) * 1000.0,
        )

    # -------------------------------------------------------------- helpers

    async def flush(self) -> None:
        """Send what the session queued: caller commands first (``clear`` before all), then Realtime
        client events while BRIDGING; start queued tool calls and log notes."""
        session = self.session
        for command in session.drain_caller():  # clear first: stop the caller hearing
            await self.caller.send_str(command)
        if self.rt is not None and session.phase is Phase.BRIDGING:
            for message in session.drain_realtime():
                await self.rt.send_str(message)
                if message == _RESPONSE_CREATE:  # a reply is due: the stall watch starts
                    self.reply_awaited = True
                    self.rt_heard_at = self.clock()
        self.runner.start()
        log_notes(session)

    def warn_once(self, key: str, message: str) -> None:
        """Log ``message`` as a warning the first time ``key`` is seen in this call."""
        if key not in self.warned:
            self.warned.add(key)
            log.warning("%s", message)

    async def run(self) -> CallEnd:
        """Run the call's tasks until the first ends; cancel and await the rest; return its
        :meth:`outcome`."""
        self.adopt_ready()
        tasks = [
            asyncio.create_task(self.caller_pump(), name="caller-pump"),
            asyncio.create_task(self.realtime_pump(), name="realtime-pump"),
            asyncio.create_task(self.playout_pump(), name="playout-pump"),
            asyncio.create_task(self.end_pump(), name="end-pump"),
            asyncio.create_task(self.watch(), name="watch"),
        ]
        if self.live is not None:
            tasks.append(asyncio.create_task(self.goodbye(), name="goodbye"))
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, self.runner.stop(), return_exceptions=True)
        first = next(t for t in tasks if t in done)
        return self.outcome(first)

    def outcome(self, task: asyncio.Task[CallEnd]) -> CallEnd:
        """The call's end from the first task to finish.

        Cancelled: 1001; a :class:`RealtimeConnectError`: 1011 with its message; a connection reset
        while sending: a plain end; any other exception: logged, 1011 as an internal error.
        """
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
        """Discard an unused warm session, close Realtime with 1000, hang up over REST when our side
        ended the call, then close the caller with ``end.caller_code``."""
        if self.warm is not None:  # the call ended before adopting it
            warm, self.warm = self.warm, None
            await warm.discard(UNUSED_REASON)
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
    live: LiveCall | None = None,
    warm: WarmSession | None = None,
    recorder: CallRecorder | None = None,
) -> CallSummary:
    """Bridge an accepted media socket to a Realtime session until either ends.

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
        live: the call's registration: when the service ended it from outside
            (``live.ending``, e.g. shutdown), that is the end reason, not the socket closing.
        warm: the call's Realtime session opened at the answer URL
            (``WarmSessions.take``), adopted as if the call had opened it (closed unused if
            the call ends first); None opens a new one.
        recorder: the call's recording, fed the caller's frames, the reply frames handed to
            the caller and the barge-ins; the caller closes it after the call.
    Returns:
        The call's summary (also logged as one INFO line, and the end as ERROR when we ended
        it by fault). Meanwhile each reply's latency and the Realtime connect time went to
        ``metrics``; the call's own counters are moved by the caller of this, at its end.
    """
    info = session.info
    ctx = tool_ctx or ToolContext(
        info.call_uuid,
        info.caller,
        transfer=control.transfer if control is not None else None,
        front_door=door.name,
        called=info.called,
    )
    bridge = _CallBridge(caller, session, door, http, openai, tools, ctx, warm, live, recorder)
    started = bridge.loop.time()
    end = CallEnd("call task cancelled", WSCloseCode.GOING_AWAY)
    try:
        end = await bridge.run()
        if end.error:
            log.error("call ending: %s", end.reason)
    finally:
        if live is not None and live.ending is not None and not end.error:
            end = CallEnd(live.ending, WSCloseCode.GOING_AWAY)
        log_notes(session)
        await asyncio.shield(bridge.close(end, control))
        summary = summarize(
            session,
            front_door=door.name,
            duration_s=bridge.loop.time() - started,
            end_reason=end.reason,
            reply_latency_ms=bridge.reply_latency_ms,
            fast_frames_dropped=bridge.fast_frames_dropped,
            caller_close_code=caller.close_code,
            realtime_close_code=(
                bridge.rt_close_sent
                if bridge.rt_close_sent is not None
                else (bridge.rt.close_code if bridge.rt is not None else None)
            ),
        )
        log_summary(summary)
    return summary

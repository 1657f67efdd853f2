"""Fake Twilio's Media Stream: the media line of one call, as Twilio runs it.

Entry ring (I/O): the base of ``sim/twilio.py``'s ``FakeTwilioCaller`` (which adds the Voice
webhook and the TwiML), never used by the core.

The caller is the WebSocket *client*. It sends ``connected``, ``start``, then ``media``
messages of 160 bytes of 8 kHz mu-law (20 ms) on a real-time clock, ``dtmf`` and ``stop``. It
plays the bridge's ``media`` back at 8 bytes per ms, echoes each ``mark`` once the audio
queued before it has played, and on ``clear`` drops the queued audio and echoes every pending
mark at once. The message shapes are in ``sim/twilio_messages.py``. The caller's knobs
(:class:`TwilioCallerOptions`, the webhook's included) live here, where most are read.

Sources (cited below by their bracketed names):

- [Media Streams messages] https://www.twilio.com/docs/voice/media-streams/websocket-messages
- [Fonoster] https://docs.fonoster.com/reference/twilio-compatibility (third party: a clear
  echoes the pending marks)
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import aiohttp

from .audio import MULAW_RATE_HZ, MULAW_SILENCE, mulaw_to_pcm16, write_wav_mulaw
from .phone import FRAME_MS, PhoneLine, PhonePlayback
from .twilio_messages import (
    DTMF_DIGITS,
    FRAME_BYTES,
    BadMessage,
    MalformedKind,
    call_ids,
    connected_message,
    dtmf_message,
    malformed_message,
    mark_message,
    media_message,
    new_sid,
    pad_frame,
    parse_bridge_message,
    start_message,
    stop_message,
)
from .twilio_webhook import SignatureMode, TwilioCallerError

__all__ = ["BYTES_PER_MS", "SAMPLE_RATE_HZ", "TwilioCallerOptions", "TwilioMediaStream"]

logger = logging.getLogger(__name__)

SAMPLE_RATE_HZ: Final = MULAW_RATE_HZ
"""Media Streams audio rate, Hz [Media Streams messages]."""

BYTES_PER_MS: Final = SAMPLE_RATE_HZ // 1000
"""Playback rate of the bridge's audio, mu-law bytes per ms."""


@dataclass
class TwilioCallerOptions:
    """Knobs for the fake caller.

    Attributes:
        webhook_signature: how the Voice webhook is signed. Only applies when an Auth Token is
            given; without one no ``X-Twilio-Signature`` is sent.
        stream_signature: how the WebSocket upgrade is signed, likewise.
        public_base_url: the bridge's public origin as Twilio sees it (e.g.
            ``"https://bridge.fly.dev"``), with a TLS-terminating proxy in between. Signatures
            are computed over the public URLs, requests go to the real (local) address, and
            ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` carry the public scheme and host,
            as Fly's proxy does. None: no proxy; URLs are signed as requested.
        idle_silence: send silent ``media`` whenever no caller audio is queued, from the
            moment the stream starts, as real Twilio does. Off by default so tests control
            every message; ``run`` and ``start_silence`` turn it on.
        marks_enabled: echo ``mark`` messages. False emulates lost mark replies.
        jitter_ms: random extra delay added to each sent frame, uniform in [0, jitter_ms] ms,
            after its absolute 20 ms deadline. Delays do not accumulate; frames bunch up
            when jitter_ms > 20 (playback then slips by as much).
        seed: seed for the jitter's and the ids' random generator, so runs are repeatable.
    """

    webhook_signature: SignatureMode = "valid"
    stream_signature: SignatureMode = "valid"
    public_base_url: str | None = None
    idle_silence: bool = False
    marks_enabled: bool = True
    jitter_ms: float = 0.0
    seed: int = 0


class TwilioMediaStream(PhoneLine[str]):
    """One Media Stream as Twilio runs it; ``FakeTwilioCaller`` opens it after the TwiML.

    The media clock: :meth:`_start_stream` starts one task that ticks every 20 ms of loop time
    on absolute deadlines (tick n at ``start`` + n * 20 ms) until the socket closes. Each tick
    first echoes the marks that playback has passed, then plays the next 160 bytes (or what
    is left) of the play buffer, then sends one queued caller frame (or silence, if
    ``idle_silence`` is on). Sending with ``realtime=False`` bypasses the clock.

    Playback emulation: the payload of every valid ``media`` message from the bridge is
    appended to the play buffer, any size. A byte counts as heard (appended to ``heard``) at
    the start of its tick's 20 ms slot. A ``mark`` is queued at the buffer position it
    arrived at and echoed on the first tick after that position has finished playing. A
    ``clear`` empties the buffer and echoes every pending mark at once, as Twilio does.
    Playback stops when the socket closes; audio still queued is never heard.

    Underruns: ``underruns`` counts the times the player needed more audio (a tick found
    less than 160 bytes after audio had been playing), and more audio then arrived less than
    200 ms later, i.e. a gap inside a burst. A ``clear`` resets this.

    Bad messages: text that is not a JSON object, an unknown or missing ``event``, a
    ``streamSid`` other than ours, a ``media`` without a valid base64 ``payload``, a ``mark``
    without a string name, and any binary message are appended to ``bad_messages`` as
    ``(reason, raw text)`` and otherwise ignored.

    Attributes:
        options: the knobs in use.
        call_sid: ``"CA"`` + 32 hex digits.
        account_sid: ``"AC"`` + 32 hex digits.
        stream_sid: ``"MZ"`` + 32 hex digits.
        stream_started_at: loop time (s) ``start`` was sent: time zero of the media clock
            and of ``media.timestamp``.
        sent_messages: every JSON message sent except ``media``, in order.
        send_log: ``(loop time s, cumulative bytes sent)`` per ``media`` frame sent.
        bytes_sent: caller audio sent so far, mu-law bytes.
        recv_log: ``(loop time s, cumulative bytes received)`` per valid ``media`` received.
        bytes_received: mu-law bytes received in valid ``media`` messages.
        play_log: ``(loop time s, cumulative bytes heard)`` per tick that played audio; the
            time is the start of the tick's 20 ms slot (its deadline).
        heard: all audio played so far, mu-law at 8 kHz.
        first_media_at: loop time (s) of the first valid ``media`` received, or None.
        media_received / marks_received / clears_received: valid messages of each kind.
        marks_echoed: names of the marks echoed back, in order.
        cleared_bytes: queued audio dropped by ``clear``, bytes.
        control_messages: every valid non-``media`` message received, in order.
        bad_messages: ``(reason, raw)`` per malformed message, as defined above.
        underruns: playback underruns, as defined above.
        closed: set when the socket has closed, from either side.
        close_code: WebSocket close code, once closed (1006 for an abrupt loss).
        close_reason: reason from the bridge's close frame, or "".

    Source: [Media Streams messages].
    """

    error = TwilioCallerError

    def _init_stream(
        self,
        http: aiohttp.ClientSession,
        *,
        call_sid: str | None,
        account_sid: str | None,
        stream_sid: str | None,
        options: TwilioCallerOptions | None,
    ) -> None:
        """Set up the stream's ids, knobs and records; nothing is sent yet."""
        self.options = options if options is not None else TwilioCallerOptions()
        self._rng = random.Random(self.options.seed)
        self.call_sid = call_sid if call_sid is not None else new_sid("CA")
        self.account_sid = account_sid if account_sid is not None else new_sid("AC")
        self.stream_sid = stream_sid if stream_sid is not None else new_sid("MZ")

        # send side
        self.sent_messages: list[dict[str, Any]] = []
        self.send_log: list[tuple[float, int]] = []
        self.bytes_sent = 0
        self.idle_silence = self.options.idle_silence
        self._sequence = 0
        self._chunk = 0
        self.stream_started_at = 0.0
        self._send_lock = asyncio.Lock()
        self._send_queue: deque[bytes] = deque()
        self._frames_queued = 0
        self._frames_dequeued = 0
        self._sent_changed = asyncio.Event()

        # receive / playback side
        self.media_received = 0
        self.marks_received = 0
        self.clears_received = 0
        self.marks_echoed: list[str] = []
        self.control_messages: list[dict[str, Any]] = []
        self.bad_messages: list[tuple[str, str]] = []
        self.playback: PhonePlayback[str] = PhonePlayback(FRAME_BYTES, self._echo_mark)
        self._init_line(http, "fake-twilio")

    async def _start_stream(
        self, target: str, headers: Mapping[str, str], parameters: Mapping[str, str]
    ) -> None:
        """Open the socket, send ``connected`` and ``start``, start receiving and the clock.

        Args:
            target: the stream URL to connect to.
            headers: the upgrade's headers (``X-Twilio-Signature``, proxy headers).
            parameters: the TwiML's ``<Parameter>`` values, sent in ``start``.

        Raises:
            TwilioCallerError: if the upgrade is refused (``status`` is the HTTP status) or
                the connection fails (``status`` None).
        Source: [Media Streams messages] connected and start messages.
        """
        ws = await self._open_socket(target, headers)
        self._ws = ws
        loop = asyncio.get_running_loop()
        self.stream_started_at = loop.time()
        await self._send(connected_message())
        ids = call_ids(self.account_sid, self.call_sid)
        await self._send(
            start_message(self._next_sequence(), self.stream_sid, ids, dict(parameters))
        )
        logger.debug("fake twilio caller %s connected to %s", self.call_sid, target)
        self._tasks.start(self._receive(ws), "receive")
        clock = self.playback.run(started_at=self.stream_started_at, after_slot=self._send_slot)
        self._clock_task = self._tasks.start(clock, "clock")

    async def stream_audio(self, mulaw: bytes, *, realtime: bool = True) -> None:
        """Send caller audio as ``media`` messages of exactly 160 bytes (20 ms).

        The last partial frame is padded with mu-law silence: Twilio always sends 20 ms. In
        realtime mode the frames are queued on the media clock (one per 20 ms tick, after
        any frames already queued) and this returns once the last one is sent. Returns early,
        without error, if the socket closes.

        Args:
            mulaw: 8 kHz mu-law; any length (bytes).
            realtime: pace at 20 ms per frame; False sends at once, bypassing the clock.

        Raises:
            TwilioCallerError: if not connected.
        Source: [Media Streams messages] media message.
        """
        self._require_ws()
        frames = [
            pad_frame(mulaw[start : start + FRAME_BYTES])
            for start in range(0, len(mulaw), FRAME_BYTES)
        ]
        if not realtime:
            for frame in frames:
                if not await self._send_media(frame):
                    return
            return
        self._send_queue.extend(frames)
        self._frames_queued += len(frames)
        target = self._frames_queued
        while self._frames_dequeued < target and not self.closed.is_set():
            self._sent_changed.clear()
            await self._sent_changed.wait()

    async def stream_silence(self, ms: int, *, realtime: bool = True) -> None:
        """Send ``ms`` milliseconds of mu-law silence (rounded up to whole 20 ms frames).

        Args:
            ms: duration, ms.
            realtime: pace at 20 ms per frame.

        Raises:
            TwilioCallerError: if not connected.
        """
        await self.stream_audio(MULAW_SILENCE * (BYTES_PER_MS * ms), realtime=realtime)

    def start_silence(self) -> None:
        """Keep the line open: send silent ``media`` on every tick with nothing queued."""
        self.idle_silence = True

    def stop_silence(self) -> None:
        """Stop the idle silence started by ``start_silence`` or ``run``."""
        self.idle_silence = False

    async def send_dtmf(self, digit: str) -> None:
        """Send one key press as Twilio does.

        Args:
            digit: ``0``-``9``, ``*`` or ``#``.

        Raises:
            ValueError: if digit is not a DTMF key.
            TwilioCallerError: if not connected.
        Source: [Media Streams messages] dtmf message.
        """
        if digit not in DTMF_DIGITS:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        self._require_ws()
        await self._send(dtmf_message(self._next_sequence(), self.stream_sid, digit))

    async def send_malformed(self, kind: MalformedKind) -> None:
        """Send one message real Twilio never would, to test the bridge's error handling.

        Args:
            kind: ``bad_json`` (text that is not JSON), ``bad_base64`` (a ``media`` whose
                payload is not base64), ``wrong_stream_sid`` (a valid ``media`` for another
                stream), ``missing_media`` (``media`` without its ``media`` object),
                ``short_frame`` (a ``media`` of 100 bytes), ``binary`` (a binary message).

        Raises:
            ValueError: if kind is unknown.
            TwilioCallerError: if not connected.
        """
        ws = self._require_ws()
        raw = malformed_message(kind, self._next_sequence, self.stream_sid)
        if isinstance(raw, bytes):
            await ws.send_bytes(raw)
        else:
            await ws.send_str(raw)

    async def _before_hang_up(self) -> None:
        """Send ``stop`` before the caller's close frame [Media Streams messages]."""
        ids = call_ids(self.account_sid, self.call_sid)
        await self._send(stop_message(self._next_sequence(), self.stream_sid, ids))

    # -- results -----------------------------------------------------------------------------

    @property
    def heard_ms(self) -> float:
        """Duration of the audio heard so far, ms."""
        return len(self.heard) / BYTES_PER_MS

    @property
    def first_media_at(self) -> float | None:
        """Loop time (s) of the first valid ``media`` received, or None."""
        return self.playback.first_audio_at

    def heard_pcm16(self) -> bytes:
        """The audio heard so far, decoded to PCM16 LE at 8 kHz."""
        return mulaw_to_pcm16(bytes(self.heard))

    def write_heard_wav(self, path: str | os.PathLike[str]) -> None:
        """Write the audio heard so far as a PCM16 WAV at 8 kHz."""
        write_wav_mulaw(path, bytes(self.heard))

    # -- waiting -----------------------------------------------------------------------------

    async def wait_heard_ms(self, ms: float, timeout: float = 10.0) -> None:
        """Like ``wait_heard``, in ms of audio (8 bytes per ms)."""
        await self.wait_heard(round(ms * BYTES_PER_MS), timeout)

    async def wait_cleared(self, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until the bridge has sent ``count`` valid ``clear`` messages in all.

        Raises:
            TimeoutError: if they did not come in time.
            TwilioCallerError: if the socket closed first.
        """
        await self._wait(
            lambda: self.clears_received >= count,
            timeout,
            lambda: f"got {self.clears_received} of {count} clear messages",
        )

    async def wait_marks_echoed(self, count: int, timeout: float = 10.0) -> None:
        """Wait until ``count`` marks in all have been echoed back to the bridge.

        Raises:
            TimeoutError: if they were not in time.
            TwilioCallerError: if the socket closed first.
        """
        await self._wait(
            lambda: len(self.marks_echoed) >= count,
            timeout,
            lambda: f"echoed {len(self.marks_echoed)} of {count} marks",
        )

    # -- internals: sending --------------------------------------------------------------------

    def _next_sequence(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    async def _send(self, message: dict[str, Any]) -> bool:
        """Send one JSON message; False if the socket is closed or closing."""
        ws = self._ws
        if ws is None or ws.closed or self.closed.is_set():
            return False
        if message["event"] != "media":
            self.sent_messages.append(message)
        try:
            await ws.send_str(json.dumps(message))
        except ConnectionResetError:
            return False
        return True

    async def _send_media(self, frame: bytes, timestamp_ms: int | None = None) -> bool:
        """Send one 160-byte frame as ``media``; False if the socket is closed.

        Args:
            frame: 160 bytes of mu-law.
            timestamp_ms: the frame's place on the media clock, ms since ``start``; None
                (frames sent outside the clock) uses the loop time elapsed since ``start``.
        """
        async with self._send_lock:  # sequence numbers leave in order
            if self._ws is None or self._ws.closed or self.closed.is_set():
                return False
            loop = asyncio.get_running_loop()
            self._chunk += 1
            if timestamp_ms is None:
                timestamp_ms = round((loop.time() - self.stream_started_at) * 1000)
            sent = await self._send(
                media_message(
                    self._next_sequence(),
                    self.stream_sid,
                    str(self._chunk),
                    str(timestamp_ms),
                    frame,
                )
            )
            if sent:
                self.bytes_sent += len(frame)
                self.send_log.append((loop.time(), self.bytes_sent))
            return sent

    # -- internals: the media clock ------------------------------------------------------------

    async def _send_slot(self, tick: int) -> None:
        """The media clock's send side, after each playback slot: one queued caller frame,
        or silence if ``idle_silence`` is on. Tick n is due at ``stream_started_at + n * 20 ms``;
        after a stall the clock (and so the ``timestamp`` of the next frame) jumps ahead, as a
        real line's would."""
        if self._send_queue:
            frame: bytes | None = self._send_queue.popleft()
            self._frames_dequeued += 1
        elif self.idle_silence:
            frame = MULAW_SILENCE * FRAME_BYTES
        else:
            frame = None
        if frame is not None:
            jitter_s = self.options.jitter_ms / 1000
            if jitter_s:
                await asyncio.sleep(self._rng.uniform(0, jitter_s))
            await self._send_media(frame, timestamp_ms=tick * FRAME_MS)
        self._sent_changed.set()

    async def _echo_mark(self, name: str) -> None:
        if not self.options.marks_enabled:
            return
        sent = await self._send(mark_message(self._next_sequence(), self.stream_sid, name))
        if sent:
            self.marks_echoed.append(name)
            self.playback.changed.set()

    # -- internals: receiving ------------------------------------------------------------------

    async def _on_text(self, now: float, data: str) -> None:
        try:
            event, message, value = parse_bridge_message(data, self.stream_sid)
        except BadMessage as bad:
            self._bad(bad.reason, data)
            return
        if event == "media":
            self._on_media(now, value)
            return
        self.control_messages.append(message)
        if event == "mark":
            self.marks_received += 1
            # Echoed once the audio queued before it has played [Media Streams messages].
            self.playback.mark(value)
        else:
            await self._on_clear()

    def _on_media(self, now: float, audio: bytes) -> None:
        self.media_received += 1
        self.playback.receive(now, audio)

    async def _on_clear(self) -> None:
        """Drop the queued audio; echo every pending mark at once [Media Streams messages],
        [Fonoster]."""
        self.clears_received += 1
        for name in self.playback.clear():
            await self._echo_mark(name)
        self.playback.changed.set()

    def _on_binary(self, now: float, data: bytes) -> None:
        self._bad("binary message", repr(bytes(data[:64])))

    def _bad(self, reason: str, raw: str) -> None:
        self.bad_messages.append((reason, raw))

    def _on_closed(self) -> None:
        self._sent_changed.set()  # wake stream_audio so it returns

"""Fake Twilio caller: emulates Twilio's side of one inbound call over Media Streams.

Entry ring (I/O): used by the integration tests and the local simulation, never by the core.
The Twilio twin of ``sim/vonage.py``'s ``FakeVonageCaller``.

What it does (the Twilio pages listed under Sources):

- Voice webhook: POSTs Twilio's form fields (``CallSid``, ``AccountSid``, ``From``, ``To``,
  ``Direction``, ``CallStatus``, ``ApiVersion`` ...) to the bridge, signed with
  ``X-Twilio-Signature`` (HMAC-SHA1 of the URL and the sorted form fields, keyed with the Auth
  Token) when a token is given, and expects TwiML back.
- TwiML: records the ``<Say>`` text before ``<Connect>``, then follows
  ``<Connect><Stream url=...>`` (the bidirectional stream) with its ``<Parameter>`` children.
- Media Streams: is the WebSocket *client*. The upgrade carries ``X-Twilio-Signature`` over
  the stream URL. It sends ``connected``, ``start``, then ``media`` messages of 160 bytes of
  8 kHz mu-law (20 ms) on a real-time clock, ``dtmf`` and ``stop``. It plays the bridge's
  ``media`` back at 8 bytes per ms, echoes each ``mark`` once the audio queued before it has
  played, and on ``clear`` drops the queued audio and echoes every pending mark at once.

Everything it sees is recorded on the instance (``heard``, ``send_log``, ``recv_log``,
``play_log``, ``marks_echoed``, ``bad_messages``, ``underruns`` ...) for the tests to assert on.

Sources (cited below by their bracketed names):

- [Media Streams messages] https://www.twilio.com/docs/voice/media-streams/websocket-messages
- [TwiML Stream] https://www.twilio.com/docs/voice/twiml/stream
- [Twilio webhooks] https://www.twilio.com/docs/usage/webhooks/voice-webhooks
- [request_validator] ``twilio/request_validator.py`` in the ``twilio`` package
  (https://github.com/twilio/twilio-python)
- [Fonoster] https://docs.fonoster.com/reference/twilio-compatibility (third party: a clear
  echoes the pending marks)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import os
import random
import secrets
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from twilio.request_validator import RequestValidator

from .audio import (
    CALLER_WAV,
    MULAW_SILENCE,
    mulaw_to_pcm16,
    pcm16_to_mulaw,
    read_wav_mulaw,
    write_wav_mulaw,
)
from .phone import FRAME_MS, CallerError, PhoneLine, PhonePlayback

__all__ = [
    "CALLER_WAV",
    "FRAME_BYTES",
    "FRAME_MS",
    "MULAW_SILENCE",
    "SAMPLE_RATE_HZ",
    "FakeTwilioCaller",
    "MalformedKind",
    "SignatureMode",
    "TwilioCallerError",
    "TwilioCallerOptions",
    "TwimlAnswer",
    "mulaw_to_pcm16",
    "parse_twiml",
    "pcm16_to_mulaw",
    "read_wav_mulaw",
    "write_wav_mulaw",
]

logger = logging.getLogger(__name__)

SAMPLE_RATE_HZ: Final = 8_000
"""Media Streams audio rate, Hz [Media Streams messages]."""

FRAME_BYTES: Final = 160
"""Bytes of mu-law in one 20 ms ``media`` message at 8 kHz (one byte per sample)."""

BYTES_PER_MS: Final = SAMPLE_RATE_HZ // 1000
"""Playback rate of the bridge's audio, mu-law bytes per ms."""

API_VERSION: Final = "2010-04-01"

_DTMF_DIGITS: Final = frozenset("0123456789*#")
_MEDIA_FORMAT: Final = {"encoding": "audio/x-mulaw", "sampleRate": SAMPLE_RATE_HZ, "channels": 1}

SignatureMode = Literal["valid", "invalid", "missing"]
"""How a request is signed: correctly, with a wrong Auth Token, or not at all."""

MalformedKind = Literal[
    "bad_json", "bad_base64", "wrong_stream_sid", "missing_media", "short_frame", "binary"
]
"""What ``send_malformed`` sends; see there."""
_MALFORMED_KINDS: Final = frozenset(get_args(MalformedKind))


class TwilioCallerError(CallerError):
    """The bridge did something real Twilio would reject (bad TwiML, refused upgrade, ...).

    Attributes:
        status: HTTP status of the failed request or refused upgrade, if there was one.
        body: response body or handshake message, if any.
    """


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


@dataclass(frozen=True, slots=True)
class TwimlAnswer:
    """What the bridge's TwiML asked for.

    Attributes:
        say: text of each ``<Say>`` before ``<Connect>``, in order.
        stream_url: the ``<Connect><Stream url=...>``, exactly as given.
        parameters: ``<Parameter name value>`` children of ``<Stream>``; they come back in
            ``start.customParameters``.
        stream_name: the ``<Stream name=...>`` attribute, or None.
        twiml: the raw response body.

    Source: [TwiML Stream] ``<Connect><Stream>``.
    """

    say: tuple[str, ...]
    stream_url: str
    parameters: Mapping[str, str]
    stream_name: str | None
    twiml: str


class FakeTwilioCaller(PhoneLine[str]):
    """One inbound call as Twilio sees it: Voice webhook, TwiML, then a Media Stream.

    Usage::

        async with FakeTwilioCaller(http, f"{base}/twilio/incoming-call", auth_token=t) as c:
            await c.answer()
            await c.connect()
            await c.stream_audio(read_wav_mulaw(CALLER_WAV))
            await c.wait_heard_ms(1000)
            await c.hang_up()

    or ``await caller.run(audio)`` for answer, connect, audio and a silent tail in one call.

    The media clock: ``connect`` starts one task that ticks every 20 ms of loop time on
    absolute deadlines (tick n at ``start`` + n * 20 ms) until the socket closes. Each tick
    first echoes the marks that playback has passed, then plays the next 160 bytes (or what
    is left) of the play buffer, then sends one queued caller frame (or silence, if
    ``idle_silence`` is on). Sending with
    ``realtime=False`` bypasses the clock.

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
        webhook_url: the bridge's Voice webhook URL (what the request goes to).
        auth_token: the Auth Token signing requests, or None (requests are unsigned).
        options: the knobs in use.
        call_sid: ``"CA"`` + 32 hex digits.
        account_sid: ``"AC"`` + 32 hex digits.
        stream_sid: ``"MZ"`` + 32 hex digits.
        from_number: the caller, E.164 with ``+``.
        to_number: the Twilio number that was called, E.164 with ``+``.
        webhook_params: the form fields posted to the webhook, once ``answer`` has run.
        answer_info: the parsed TwiML, once ``answer`` has run.
        greeting: the ``<Say>`` texts joined by a space ("" if none), once answered.
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

    Source: [Media Streams messages], [TwiML Stream], [request_validator].
    """

    error = TwilioCallerError

    def __init__(
        self,
        http: aiohttp.ClientSession,
        webhook_url: str,
        *,
        auth_token: str | None = None,
        call_sid: str | None = None,
        account_sid: str | None = None,
        stream_sid: str | None = None,
        from_number: str = "+14155550100",
        to_number: str = "+14155550199",
        extra_params: Mapping[str, str] | None = None,
        options: TwilioCallerOptions | None = None,
    ) -> None:
        """Prepare a call; nothing is sent until ``answer``.

        Args:
            http: session used for the webhook and the WebSocket.
            webhook_url: the bridge's Voice webhook, e.g. ``http://127.0.0.1:8080/twilio/
                incoming-call``.
            auth_token: Auth Token to sign requests with; None sends no signatures.
            call_sid: ``CA...``; random by default.
            account_sid: ``AC...``; random by default.
            stream_sid: ``MZ...``; random by default.
            from_number: caller number, E.164 with ``+``.
            to_number: called (Twilio) number, E.164 with ``+``.
            extra_params: more webhook form fields, added to (or overriding) the defaults.
            options: knobs; defaults to ``TwilioCallerOptions()``.
        """
        self._http = http
        self.webhook_url = webhook_url
        self.auth_token = auth_token
        self.options = options if options is not None else TwilioCallerOptions()
        self._rng = random.Random(self.options.seed)
        self.call_sid = call_sid if call_sid is not None else _sid("CA")
        self.account_sid = account_sid if account_sid is not None else _sid("AC")
        self.stream_sid = stream_sid if stream_sid is not None else _sid("MZ")
        self.from_number = from_number
        self.to_number = to_number
        self._extra_params = dict(extra_params or {})

        self.webhook_params: dict[str, str] | None = None
        self.answer_info: TwimlAnswer | None = None
        self.greeting = ""

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
        self._init_line("fake-twilio")

    # -- Voice webhook and TwiML ---------------------------------------------------------------

    async def answer(self) -> TwimlAnswer:
        """POST the Voice webhook as Twilio does and parse the TwiML into ``answer_info``.

        Returns:
            The parsed TwiML.

        Raises:
            TwilioCallerError: if the status is not 200, the content type is not XML (Twilio
                error 12300), the body is not a TwiML ``<Response>``, or it has no
                ``<Connect><Stream url>``.
        Source: [TwiML Stream]; [Twilio webhooks]; [request_validator].
        """
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": self.call_sid,
            "CallStatus": "ringing",
            "Called": self.to_number,
            "Caller": self.from_number,
            "Direction": "inbound",
            "From": self.from_number,
            "To": self.to_number,
            **self._extra_params,
        }
        target, signed_url, headers = self._route(self.webhook_url)
        headers["User-Agent"] = "TwilioProxy/1.1"
        signature = self._signature(signed_url, params, self.options.webhook_signature)
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        async with self._http.post(target, data=params, headers=headers) as response:
            status = response.status
            content_type = response.content_type
            body = await response.text()
        self.webhook_params = params
        if status != 200:
            raise TwilioCallerError(f"webhook returned HTTP {status}", status=status, body=body)
        if "xml" not in content_type:
            raise TwilioCallerError(
                f"webhook content type {content_type!r} is not XML (Twilio error 12300)",
                status=status,
                body=body,
            )
        self.answer_info = parse_twiml(body)
        self.greeting = " ".join(self.answer_info.say)
        return self.answer_info

    # -- Media Stream ------------------------------------------------------------------------

    async def connect(self) -> None:
        """Follow ``<Connect><Stream>``: open the socket, send ``connected`` and ``start``.

        Starts the receive task and the media clock.

        Raises:
            TwilioCallerError: if ``answer`` has not run, the stream URL is not ws(s)://, the
                upgrade is refused (``status`` is the HTTP status) or the connection fails
                (``status`` None).
        Source: [Media Streams messages] connected and start messages.
        """
        if self.answer_info is None:
            raise TwilioCallerError("connect() before answer()")
        if self._ws is not None:
            raise TwilioCallerError("already connected")
        url = self.answer_info.stream_url
        scheme = urlsplit(url).scheme
        if scheme not in ("ws", "wss"):
            raise TwilioCallerError(f"stream url must be ws:// or wss://, not {url!r}")
        target, signed_url, headers = self._route(url)
        # The upgrade is signed over the stream URL alone: a GET has no form fields.
        signature = self._signature(signed_url, {}, self.options.stream_signature)
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        try:
            ws = await self._http.ws_connect(target, headers=headers, heartbeat=None)
        except aiohttp.WSServerHandshakeError as exc:
            raise TwilioCallerError(
                f"websocket upgrade refused with HTTP {exc.status}",
                status=exc.status,
                body=exc.message,
            ) from exc
        except aiohttp.ClientError as exc:
            raise TwilioCallerError(f"websocket connection to {target} failed: {exc}") from exc

        self._ws = ws
        loop = asyncio.get_running_loop()
        self.stream_started_at = loop.time()
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self._send(
            {
                "event": "start",
                "sequenceNumber": self._next_sequence(),
                "streamSid": self.stream_sid,
                "start": {
                    "streamSid": self.stream_sid,
                    "accountSid": self.account_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "customParameters": dict(self.answer_info.parameters),
                    "mediaFormat": dict(_MEDIA_FORMAT),
                },
            }
        )
        logger.debug("fake twilio caller %s connected to %s", self.call_sid, target)
        self._tasks.start(self._receive(ws), "receive")
        clock = self.playback.run(started_at=self.stream_started_at, after_slot=self._send_slot)
        self._clock_task = self._tasks.start(clock, "clock")

    async def run(
        self, mulaw: bytes = b"", *, tail_ms: int | None = None, realtime: bool = True
    ) -> None:
        """Answer and connect (if not done yet), send ``mulaw``, then a silent tail.

        Args:
            mulaw: the caller's speech, 8 kHz mu-law (see ``read_wav_mulaw``).
            tail_ms: send this much silence after the speech and return once it is sent.
                None: turn ``idle_silence`` on and return right after the speech; the line
                stays open and silent until ``stop_silence`` or ``hang_up``.
            realtime: pace the speech at 20 ms per frame.

        Raises:
            TwilioCallerError: as ``answer`` and ``connect``.
        """
        if self.answer_info is None:
            await self.answer()
        if self._ws is None:
            await self.connect()
        await self.stream_audio(mulaw, realtime=realtime)
        if tail_ms is None:
            self.start_silence()
        else:
            await self.stream_silence(tail_ms, realtime=realtime)

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
            _pad(mulaw[start : start + FRAME_BYTES]) for start in range(0, len(mulaw), FRAME_BYTES)
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
        if digit not in _DTMF_DIGITS:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        self._require_ws()
        await self._send(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "sequenceNumber": self._next_sequence(),
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

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
        if kind not in _MALFORMED_KINDS:
            raise ValueError(f"unknown malformed message kind {kind!r}")
        ws = self._require_ws()
        if kind == "bad_json":
            await ws.send_str('{"event": "media", ')
            return
        if kind == "binary":
            await ws.send_bytes(MULAW_SILENCE * FRAME_BYTES)
            return
        message: dict[str, Any] = {
            "event": "media",
            "sequenceNumber": self._next_sequence(),
            "streamSid": self.stream_sid,
        }
        good = _media_body("inbound", "0", "0", MULAW_SILENCE * FRAME_BYTES)
        if kind == "bad_base64":
            message["media"] = {**good, "payload": "not base64!"}
        elif kind == "wrong_stream_sid":
            message["streamSid"] = _sid("MZ")
            message["media"] = good
        elif kind == "missing_media":
            pass
        else:  # short_frame
            message["media"] = _media_body("inbound", "0", "0", MULAW_SILENCE * 100)
        await self._send(message)

    async def _before_hang_up(self) -> None:
        """Send ``stop`` before the caller's close frame [Media Streams messages]."""
        await self._send(
            {
                "event": "stop",
                "sequenceNumber": self._next_sequence(),
                "streamSid": self.stream_sid,
                "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
            }
        )

    # -- results -----------------------------------------------------------------------------

    @property
    def heard_ms(self) -> float:
        """Duration of the audio heard so far, ms."""
        return len(self.heard) / BYTES_PER_MS

    @property
    def pending_marks(self) -> list[str]:
        """Names of the marks received but not echoed yet, in order."""
        return self.playback.pending_marks

    @property
    def first_media_at(self) -> float | None:
        """Loop time (s) of the first valid ``media`` received, or None."""
        return self.playback.first_audio_at

    @property
    def cleared_bytes(self) -> int:
        """Queued audio dropped by ``clear``, bytes."""
        return self.playback.cleared_bytes

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

    def _route(self, url: str) -> tuple[str, str, dict[str, str]]:
        """Where to send a request for ``url``, which URL to sign, and proxy headers.

        Without ``public_base_url`` the request goes to ``url`` and ``url`` is signed. With
        it, ``url``'s path and query are signed under the public origin (wss for a socket)
        and the request goes to the webhook URL's (local) origin.
        """
        public = self.options.public_base_url
        if public is None:
            return url, url, {}
        parts = urlsplit(url)
        pub = urlsplit(public)
        local = urlsplit(self.webhook_url)
        is_ws = parts.scheme in ("ws", "wss")
        pub_scheme = {"https": "wss", "http": "ws"}[pub.scheme] if is_ws else pub.scheme
        local_scheme = {"https": "wss", "http": "ws"}[local.scheme] if is_ws else local.scheme
        signed = urlunsplit((pub_scheme, pub.netloc, parts.path, parts.query, ""))
        target = urlunsplit((local_scheme, local.netloc, parts.path, parts.query, ""))
        headers = {"X-Forwarded-Proto": pub.scheme, "X-Forwarded-Host": pub.netloc}
        return target, signed, headers

    def _signature(self, url: str, params: Mapping[str, str], mode: SignatureMode) -> str | None:
        """``X-Twilio-Signature`` for ``url`` and ``params``, or None to send none.

        Source: [request_validator] ``compute_signature``.
        """
        if self.auth_token is None or mode == "missing":
            return None
        token = self.auth_token if mode == "valid" else self.auth_token + "-wrong"
        signature: str = RequestValidator(token).compute_signature(url, dict(params))
        return signature

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
                {
                    "event": "media",
                    "sequenceNumber": self._next_sequence(),
                    "streamSid": self.stream_sid,
                    "media": _media_body("inbound", str(self._chunk), str(timestamp_ms), frame),
                }
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
        sent = await self._send(
            {
                "event": "mark",
                "sequenceNumber": self._next_sequence(),
                "streamSid": self.stream_sid,
                "mark": {"name": name},
            }
        )
        if sent:
            self.marks_echoed.append(name)
            self.playback.changed.set()

    # -- internals: receiving ------------------------------------------------------------------

    async def _on_text(self, now: float, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            self._bad("not JSON", data)
            return
        if not isinstance(message, dict):
            self._bad("not a JSON object", data)
            return
        event = message.get("event")
        if event not in ("media", "mark", "clear"):
            self._bad(f"unknown event {event!r}", data)
            return
        if message.get("streamSid") != self.stream_sid:
            self._bad(f"wrong streamSid {message.get('streamSid')!r}", data)
            return
        if event == "media":
            media = message.get("media")
            payload = media.get("payload") if isinstance(media, dict) else None
            if not isinstance(payload, str):
                self._bad("media without a payload string", data)
                return
            try:
                audio = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError):
                self._bad("media payload is not base64", data)
                return
            self._on_media(now, audio)
            return
        self.control_messages.append(message)
        if event == "mark":
            mark = message.get("mark")
            name = mark.get("name") if isinstance(mark, dict) else None
            if not isinstance(name, str):
                self.control_messages.pop()
                self._bad("mark without a name string", data)
                return
            self.marks_received += 1
            # Echoed once the audio queued before it has played [Media Streams messages].
            self.playback.mark(name)
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


# -- TwiML -----------------------------------------------------------------------------------


def parse_twiml(body: str) -> TwimlAnswer:
    """Parse a Voice webhook's TwiML answer.

    Args:
        body: the response body.

    Returns:
        The ``<Say>`` texts before ``<Connect>``, and the ``<Connect><Stream>``.

    Raises:
        TwilioCallerError: if the body is not XML with a ``<Response>`` root, or has no
            ``<Connect><Stream url>`` (``<Start><Stream>`` is one-way and not enough).
    Source: [TwiML Stream] ``<Connect><Stream>``, ``<Parameter>``.
    """
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise TwilioCallerError(
            f"webhook did not return XML: {exc}", status=200, body=body
        ) from exc
    if root.tag != "Response":
        raise TwilioCallerError(
            f"TwiML root is <{root.tag}>, expected <Response>", status=200, body=body
        )
    say: list[str] = []
    for verb in root:
        if verb.tag == "Say":
            say.append("".join(verb.itertext()).strip())
        elif verb.tag == "Connect":
            stream = verb.find("Stream")
            url = stream.get("url") if stream is not None else None
            if stream is None or not url:
                raise TwilioCallerError("<Connect> has no <Stream url=...>", status=200, body=body)
            parameters: dict[str, str] = {}
            for parameter in stream.findall("Parameter"):
                name = parameter.get("name")
                if not name:
                    raise TwilioCallerError("<Parameter> without a name", status=200, body=body)
                parameters[name] = parameter.get("value", "")
            return TwimlAnswer(
                say=tuple(say),
                stream_url=url,
                parameters=parameters,
                stream_name=stream.get("name"),
                twiml=body,
            )
    raise TwilioCallerError(
        "TwiML has no <Connect><Stream> (a bidirectional Media Stream)", status=200, body=body
    )


# -- helpers ---------------------------------------------------------------------------------


def _sid(prefix: str) -> str:
    """A Twilio-style SID: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def _pad(frame: bytes) -> bytes:
    # Twilio always sends whole 20 ms frames: pad the tail with mu-law silence.
    return frame + MULAW_SILENCE * (FRAME_BYTES - len(frame))


def _media_body(track: str, chunk: str, timestamp_ms: str, audio: bytes) -> dict[str, str]:
    return {
        "track": track,
        "chunk": chunk,
        "timestamp": timestamp_ms,
        "payload": base64.b64encode(audio).decode("ascii"),
    }

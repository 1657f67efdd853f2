"""Fake Vonage caller: emulates Vonage's side of one inbound call.

Entry ring (I/O): used by the integration tests and the local simulation, never by the core.

What it does (the Vonage pages listed under Sources):

- Answer URL [Vonage webhooks]: requests it the way Vonage does (GET with ``to``, ``from``,
  ``uuid`` and ``conversation_uuid`` in the query string, or the same fields as a JSON body
  with POST) and expects an NCCO (a JSON array of actions).
- NCCO [NCCO]: finds the ``connect`` action with a ``websocket`` endpoint and honours its
  ``uri``, ``content-type`` and ``headers``.
- WebSocket [Vonage WebSockets]: is the WebSocket *client*. It sends ``websocket:connected``
  with the NCCO headers at the top level, then caller audio as exact 20 ms L16 frames (640
  bytes at 16 kHz). It plays the bridge's audio back at 20 ms per frame, rejects frames of
  the wrong size (real Vonage drops the call), and answers ``clear`` with
  ``websocket:cleared`` and ``notify`` with ``websocket:notify`` once the audio queued before
  it has played.

Everything it sees is recorded on the instance (``heard``, ``bad_frames``, ``text_messages``,
``send_log``, ``play_log``, ``recv_log``, ``underruns``) for the tests to assert on.
``CALLER_WAV`` and the WAV helpers live in ``sim/audio.py``; they are re-exported here, where
callers import them.

Sources (cited below by their bracketed names):

- [Vonage WebSockets] https://developer.vonage.com/en/voice/voice-api/concepts/websockets
- [Vonage webhooks] https://developer.vonage.com/en/voice/voice-api/webhook-reference
- [NCCO] https://developer.vonage.com/en/voice/voice-api/ncco-reference
- [Vonage AsyncAPI] https://asyncapi.apis.io/asyncapis/vonage/vonage-asyncapi/ (third party)
- [vocode 727] https://github.com/vocodedev/vocode-core/issues/727 (the frame-size drop)
- [vonage-voice] the ``vonage-voice`` 1.5.1 SDK (https://pypi.org/project/vonage-voice/:
  24 kHz, ``authorization``)
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp

from .audio import CALLER_WAV, read_wav_pcm16, write_wav_pcm16
from .phone import FRAME_MS, CallerError, PhoneLine, PhonePlayback

__all__ = [
    "CALLER_WAV",
    "FRAME_MS",
    "CallerError",
    "CallerOptions",
    "FakeVonageCaller",
    "read_wav_pcm16",
    "write_wav_pcm16",
]

logger = logging.getLogger(__name__)

_FRAME_S = FRAME_MS / 1000

# content-type -> (sample_rate_hz, frame_bytes) for 20 ms of 16-bit mono [Vonage WebSockets];
# 24 kHz is accepted by [vonage-voice] 1.5.1.
_CONTENT_TYPES: dict[str, tuple[int, int]] = {
    "audio/l16;rate=8000": (8_000, 320),
    "audio/l16;rate=16000": (16_000, 640),
    "audio/l16;rate=24000": (24_000, 960),
}


@dataclass
class CallerOptions:
    """Knobs for the fake caller.

    Attributes:
        jitter_ms: random extra delay added to each sent frame, uniform in [0, jitter_ms] ms,
            on top of its absolute 20 ms deadline. Realtime mode only. Delays do not
            accumulate; frames may bunch up when jitter_ms > 20.
        notify_enabled: answer ``notify`` with ``websocket:notify``. False emulates a lost
            notify reply.
        seed: seed for the jitter's random generator, so runs are repeatable.
    """

    jitter_ms: float = 0.0
    notify_enabled: bool = True
    seed: int = 0


class FakeVonageCaller(PhoneLine[Any]):
    """One inbound call as Vonage sees it: answer URL, then a WebSocket carrying L16 audio.

    Usage::

        async with FakeVonageCaller(http, answer_url) as caller:
            await caller.answer()
            await caller.connect()
            await caller.stream_audio(pcm)
            await caller.wait_heard(640 * 50)
            await caller.hang_up()

    Playback emulation (:class:`~.phone.PhonePlayback`, the player restarting its clock on
    each burst): every binary message from the bridge is one frame. A frame whose size is not
    the negotiated ``frame_bytes`` goes to ``bad_frames`` and is not played. Good frames are
    queued and played one per 20 ms of loop time on absolute deadlines; when the queue runs
    empty and later refills, the clock restarts from the refill. A frame counts as played
    (appended to ``heard``) at the start of its 20 ms slot; ``notify`` is echoed once the
    frames queued before it have played. Playback stops when the socket closes; frames still
    queued then are never heard.

    Underruns: ``underruns`` counts the times the player needed the next frame (the previous
    frame's 20 ms slot had ended), found the queue empty, and a frame then arrived less than
    200 ms later, i.e. a gap inside a burst of audio. A ``clear`` resets this: running dry
    because of a clear is not an underrun.

    ``clear`` drops every queued frame and any ``notify`` still waiting behind them (whether
    real Vonage replies to those notifies is unconfirmed), then replies ``websocket:cleared``.

    Attributes:
        answer_url: the bridge's answer URL.
        method: ``"GET"`` or ``"POST"`` for the answer request.
        options: the knobs in use.
        call_uuid: this call leg's UUID (the answer URL's ``uuid``).
        conversation_uuid: ``CON-...`` conversation UUID.
        from_number: the caller, E.164 digits.
        to_number: the Vonage number that was called, E.164 digits.
        ncco: the NCCO returned by the answer URL, once ``answer`` has run.
        content_type: negotiated ``audio/l16;rate=...``, once connected.
        sample_rate_hz: negotiated sample rate, Hz.
        frame_bytes: bytes per 20 ms frame (320, 640 or 960), once connected.
        connected_message: the ``websocket:connected`` message that was sent.
        send_log: ``(loop time s, cumulative bytes sent)`` per frame sent.
        bytes_sent: caller audio sent so far, bytes (padding included).
        bytes_received: binary data received so far, bytes (bad frames included).
        recv_log: ``(loop time s, cumulative bytes received)`` per binary message received,
            bad frames included.
        play_log: ``(slot start, loop time s; cumulative bytes heard)`` per frame played.
        heard: all audio played so far, PCM16 LE at ``sample_rate_hz``.
        bad_frames: sizes in bytes of the binary messages that were not one exact frame.
        first_frame_at: loop time (s) of the first binary message received, or None.
        underruns: playback underruns, as defined above.
        text_messages: every JSON object received as a text message, in order.
        unknown_messages: the received objects that were neither ``clear`` nor ``notify``.
        invalid_messages: text messages that were not a JSON object.
        closed: set when the socket has closed, from either side.
        close_code: WebSocket close code, once closed (1006 for an abrupt loss).
        close_reason: reason from the bridge's close frame, or "".

    Source: https://developer.vonage.com/en/voice/voice-api/webhook-reference (answer URL),
    https://developer.vonage.com/en/voice/voice-api/ncco-reference (``connect``),
    https://developer.vonage.com/en/voice/voice-api/concepts/websockets (audio, ``notify``).
    """

    def __init__(
        self,
        http: aiohttp.ClientSession,
        answer_url: str,
        *,
        call_uuid: str | None = None,
        conversation_uuid: str | None = None,
        from_number: str = "447700900000",
        to_number: str = "447700900001",
        method: str = "GET",
        options: CallerOptions | None = None,
    ) -> None:
        """Prepare a call; nothing is sent until ``answer``.

        Args:
            http: session used for the answer request and the WebSocket.
            answer_url: the bridge's answer URL.
            call_uuid: call leg UUID; a random UUID4 by default.
            conversation_uuid: conversation UUID; ``"CON-" + uuid4`` by default.
            from_number: caller number, E.164 digits without ``+``.
            to_number: called (Vonage) number, E.164 digits without ``+``.
            method: ``"GET"`` (Vonage's default, fields in the query) or ``"POST"`` (JSON body).
            options: knobs; defaults to ``CallerOptions()``.

        Raises:
            ValueError: if method is neither GET nor POST.
        """
        method = method.upper()
        if method not in ("GET", "POST"):
            raise ValueError(f"answer method must be GET or POST, not {method!r}")
        self.answer_url = answer_url
        self.call_uuid = call_uuid if call_uuid is not None else str(uuid.uuid4())
        self.conversation_uuid = (
            conversation_uuid if conversation_uuid is not None else f"CON-{uuid.uuid4()}"
        )
        self.from_number = from_number
        self.to_number = to_number
        self.method = method
        self.options = options if options is not None else CallerOptions()
        self._rng = random.Random(self.options.seed)

        self.ncco: list[dict[str, Any]] | None = None
        self.content_type: str | None = None
        self.sample_rate_hz = 0
        self.frame_bytes = 0
        self.connected_message: dict[str, Any] | None = None

        # send side
        self.send_log: list[tuple[float, int]] = []
        self.bytes_sent = 0
        self._send_lock = asyncio.Lock()
        self._send_deadline: float | None = None

        # receive / playback side
        self.bad_frames: list[int] = []
        self.text_messages: list[dict[str, Any]] = []
        self.unknown_messages: list[dict[str, Any]] = []
        self.invalid_messages: list[str] = []
        self.playback: PhonePlayback[Any] = PhonePlayback(0, self._echo_notify)
        self._init_line(http, "fake-vonage")

    # -- answer URL --------------------------------------------------------------------------

    async def answer(self) -> list[dict[str, Any]]:
        """Request the answer URL as Vonage does and keep the NCCO in ``self.ncco``.

        Returns:
            The NCCO: a list of action objects.

        Raises:
            CallerError: if the status is not 200 or the body is not a JSON array of objects.
        Source: [Vonage webhooks] answer webhook.
        """
        fields = {
            "to": self.to_number,
            "from": self.from_number,
            "uuid": self.call_uuid,
            "conversation_uuid": self.conversation_uuid,
        }
        if self.method == "GET":
            request = self._http.get(self.answer_url, params=fields)
        else:
            request = self._http.post(self.answer_url, json=fields)
        async with request as response:
            status = response.status
            body = await response.text()
        if status != 200:
            raise CallerError(f"answer URL returned HTTP {status}", status=status, body=body)
        try:
            ncco = json.loads(body)
        except ValueError as exc:
            raise CallerError("answer URL did not return JSON", status=status, body=body) from exc
        if not isinstance(ncco, list) or not all(isinstance(a, dict) for a in ncco):
            raise CallerError(
                "answer URL did not return an NCCO (a JSON array of objects)",
                status=status,
                body=body,
            )
        self.ncco = ncco
        return ncco

    # -- WebSocket -------------------------------------------------------------------------

    async def connect(self) -> None:
        """Run the NCCO's websocket ``connect``: open the socket and send websocket:connected.

        Starts the receive and playback tasks.

        Raises:
            CallerError: if ``answer`` has not run, the NCCO has no websocket endpoint, the
                content-type is not L16 at 8, 16 or 24 kHz, or the upgrade is refused
                (``status`` is the HTTP status) or the connection fails (``status`` None).
        Source: [NCCO] connect; [Vonage WebSockets] handshake and first message.
        """
        if self.ncco is None:
            raise CallerError("connect() before answer()")
        if self._ws is not None:
            raise CallerError("already connected")
        endpoint = _websocket_endpoint(self.ncco)
        content_type = endpoint.get("content-type")
        if not isinstance(content_type, str) or content_type not in _CONTENT_TYPES:
            raise CallerError(f"unsupported websocket content-type {content_type!r}")
        uri = endpoint.get("uri")
        if not isinstance(uri, str) or not uri:
            raise CallerError("websocket endpoint has no uri")
        headers = endpoint.get("headers", {})
        if not isinstance(headers, dict):
            raise CallerError(f"websocket endpoint headers must be an object, not {headers!r}")

        # Only a custom authorization can be emulated: {"type": "vonage"} needs Vonage's
        # signature secret, which the fake doesn't have [vonage-voice].
        http_headers: dict[str, str] = {}
        authorization = endpoint.get("authorization")
        if isinstance(authorization, dict) and authorization.get("type") == "custom":
            http_headers["Authorization"] = str(authorization.get("value", ""))

        ws = await self._open_socket(uri, http_headers)
        self._ws = ws
        self.content_type = content_type
        self.sample_rate_hz, self.frame_bytes = _CONTENT_TYPES[content_type]
        # NCCO headers are top-level keys of the first message, not HTTP headers
        # [Vonage WebSockets].
        self.connected_message = {
            "event": "websocket:connected",
            "content-type": content_type,
            **headers,
        }
        await ws.send_str(json.dumps(self.connected_message))
        logger.debug("fake caller %s connected to %s (%s)", self.call_uuid, uri, content_type)
        self.playback.slot_bytes = self.frame_bytes
        self._tasks.start(self._receive(ws), "receive")
        self._clock_task = self._tasks.start(self.playback.run(), "playback")

    async def stream_audio(self, pcm: bytes, *, realtime: bool = True) -> None:
        """Send caller audio as exact frames, one binary message per 20 ms frame.

        The last partial frame is padded with zeros: Vonage never sends a short frame. In
        realtime mode frames go out on absolute 20 ms deadlines (plus ``jitter_ms``); the clock
        carries over from the previous call if it hasn't fallen behind, so consecutive calls
        stream continuously. Returns early, without error, if the socket closes.

        Args:
            pcm: PCM16 LE mono at ``sample_rate_hz``; any length (bytes).
            realtime: pace at 20 ms per frame; False sends as fast as possible.

        Raises:
            CallerError: if not connected.
        Source: [Vonage WebSockets] binary audio.
        """
        ws = self._require_ws()
        frame_bytes = self.frame_bytes
        loop = asyncio.get_running_loop()
        jitter_s = self.options.jitter_ms / 1000
        async with self._send_lock:
            now = loop.time()
            deadline = now
            if self._send_deadline is not None and self._send_deadline >= now:
                deadline = self._send_deadline
            for start in range(0, len(pcm), frame_bytes):
                frame = pcm[start : start + frame_bytes]
                if len(frame) < frame_bytes:
                    # Vonage drops the call on a short frame: pad the tail with silence
                    # [Vonage WebSockets]
                    frame += bytes(frame_bytes - len(frame))
                if realtime:
                    send_at = deadline + (self._rng.uniform(0, jitter_s) if jitter_s else 0.0)
                    delay = send_at - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    deadline += _FRAME_S
                if self.closed.is_set() or ws.closed:
                    return
                try:
                    await ws.send_bytes(frame)
                except ConnectionResetError:
                    return
                self.bytes_sent += frame_bytes
                self.send_log.append((loop.time(), self.bytes_sent))
            self._send_deadline = deadline if realtime else None

    async def stream_silence(self, ms: int, realtime: bool = True) -> None:
        """Send ``ms`` milliseconds of silence (rounded up to whole 20 ms frames).

        Args:
            ms: duration, ms.
            realtime: pace at 20 ms per frame.

        Raises:
            CallerError: if not connected.
        """
        self._require_ws()
        n_samples = self.sample_rate_hz * ms // 1000
        await self.stream_audio(bytes(2 * n_samples), realtime=realtime)

    async def send_dtmf(self, digit: str, duration_ms: int = 260) -> None:
        """Send one key press as Vonage does.

        Args:
            digit: ``0``-``9``, ``*`` or ``#``.
            duration_ms: how long the key was held, ms.

        Raises:
            CallerError: if not connected.
        Source: [Vonage WebSockets] websocket:dtmf.
        """
        ws = self._require_ws()
        await ws.send_str(
            json.dumps({"event": "websocket:dtmf", "digit": digit, "duration": duration_ms})
        )

    @property
    def first_frame_at(self) -> float | None:
        """Loop time (s) of the first binary message received, or None."""
        return self.playback.first_audio_at

    # -- internals ---------------------------------------------------------------------------

    def _on_binary(self, now: float, frame: bytes) -> None:
        playable = len(frame) == self.frame_bytes
        if not playable:
            # Real Vonage rejects it ("unexpected frame size") and drops the call [vocode 727].
            self.bad_frames.append(len(frame))
        self.playback.receive(now, frame, playable=playable)

    async def _on_text(self, now: float, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            self.invalid_messages.append(data)
            return
        if not isinstance(message, dict):
            self.invalid_messages.append(data)
            return
        self.text_messages.append(message)
        action = message.get("action")
        if action == "clear":
            # Notifies still waiting are dropped: whether Vonage replies to them is unconfirmed.
            self.playback.clear()
            await self._send_json({"event": "websocket:cleared"})
        elif action == "notify":
            # Echoed by the player once the audio queued before it has played [Vonage AsyncAPI].
            self.playback.mark(message.get("payload", {}))
        else:
            self.unknown_messages.append(message)

    async def _echo_notify(self, payload: Any) -> None:
        if self.options.notify_enabled:
            await self._send_json({"event": "websocket:notify", "payload": payload})

    async def _send_json(self, message: dict[str, Any]) -> None:
        """Send a text message, ignoring a socket that is already closing."""
        if self._ws is None:
            return
        try:
            await self._ws.send_str(json.dumps(message))
        except ConnectionResetError:
            pass


def _websocket_endpoint(ncco: list[dict[str, Any]]) -> dict[str, Any]:
    """The first websocket endpoint of a ``connect`` action in the NCCO.

    Raises:
        CallerError: if there is none.
    """
    for action in ncco:
        if action.get("action") != "connect":
            continue
        endpoints = action.get("endpoint")
        if not isinstance(endpoints, list):
            continue
        for endpoint in endpoints:
            if isinstance(endpoint, dict) and endpoint.get("type") == "websocket":
                return endpoint
    raise CallerError("NCCO has no connect action with a websocket endpoint")

"""A naive baseline relay: the simplest correct phone <-> OpenAI Realtime relay, for the bench.

``bench/load.py --relay both`` measures the bridge and this relay in the same rounds, against
the same fake Realtime server and the same fake callers, and prints every figure as a ratio
bridge / naive. It is a measuring stick, not product code: no media tokens, no signature
checks, no records, no tools, no transcripts, no greeting, no DTMF, no playback marks, no
look-ahead. Everything the fake callers send is accepted; each call is one aiohttp handler
and two tasks.

What it does, per call:

- **Vonage** (answer URL ``GET|POST /incoming-call`` -> NCCO ``connect`` to ``/vonage/ws``,
  L16 at 16 kHz): every 640 B caller frame is resampled to 24 kHz PCM16 (one soxr stream per
  direction, ``--quality``), base64-encoded and sent as one ``input_audio_buffer.append``
  (``json.dumps``). Reply deltas are resampled to 16 kHz, cut into 640 B frames and sent one
  binary message per frame. At ``response.output_audio.done`` the down stream is flushed
  (``last=True``, then a fresh stream) and the tail padded with silence to a whole frame:
  Vonage drops a call on a short frame.
- **Twilio** (Voice webhook ``POST /twilio/incoming-call`` -> TwiML ``<Connect><Stream>`` to
  ``/twilio/media-stream``, 8 kHz mu-law): the base64 ``payload`` of each ``media`` message is
  forwarded as is in one ``input_audio_buffer.append`` (the session's format is
  ``audio/pcmu``); reply deltas are decoded, cut into 160 B frames (tail padded with 0xFF) and
  each is sent as its own ``media`` message.
- **Pacing**: one task per call sends the queued frames on absolute deadlines: frame k of a
  burst is due at ``start + (k - lead) x 20 ms`` on ``loop.time()`` (``deadline += 0.020``,
  one ``asyncio.sleep`` per frame), so a late wake-up is made up on the next frame instead of
  accumulating. ``--lead-frames`` (default 2) frames go at once when a burst starts (the queue
  was empty): the caller's player starts its 20 ms clock on the first frame it receives, so
  without a lead any frame delivered a fraction of a millisecond later than the first one was
  would arrive after its slot, an underrun. In ``bench/load.py`` at 10 calls a lead of 0 gave
  late frames at the Vonage callers and 1 frame gave none; the default of 2 (40 ms) leaves
  room for the scheduling jitter of a loaded machine and is still well short of the bridge's
  100 ms look-ahead (see ``bench/README.md``). Nothing else is sent ahead: no look-ahead
  window, no adaptation. A burst ends when the queue runs dry; the next one restarts the clock.
- **Barge-in**: on ``input_audio_buffer.speech_started``, if reply frames are still queued,
  they are dropped, ``clear`` is sent to the caller (Vonage ``{"action": "clear"}``, Twilio
  ``{"event": "clear"}``) and the rest of that response's audio is ignored (the server cancels
  it: the session sets ``interrupt_response``).
- **Session**: the same GA ``session.update`` as the bridge's defaults (model, voice
  ``marin``, ``server_vad`` 0.5 / 300 ms / 500 ms, ``gpt-4o-mini-transcribe``, audio only,
  the persona from ``system-message.txt`` plus the caller's number), without tools.

**The floor** (``--floor``, ``bench/load.py --floor``): the same relay sending the same
messages, sizes and pacing, with none of the per-message work a relay does between its
sockets: each caller frame is answered with one pre-built ``input_audio_buffer.append`` of the
right size (no resampling, no base64, no JSON), a Realtime event is recognised by a substring
(no ``json.loads``), a delta's audio is counted from its base64 length and queued as pre-built
silence frames (no decoding), and Twilio frames go out as one pre-built ``media`` message. What
it spends is what aiohttp, the event loop and the kernel cost for those messages: a lower
bound for any relay on this stack, whatever it does between its sockets. ``--uvloop`` runs it
(or the naive relay) on uvloop, the bridge's default loop.

Run: ``python bench/naive_relay.py --port 8081 --openai-base-url http://127.0.0.1:9000/v1``
(``GET /health`` answers 200 once it listens; SIGINT stops it).

Sources: Vonage answer webhook, NCCO ``connect`` and WebSocket audio
(https://developer.vonage.com/en/voice/voice-api/webhook-reference,
https://developer.vonage.com/en/voice/voice-api/ncco-reference,
https://developer.vonage.com/en/voice/voice-api/concepts/websockets); TwiML ``<Stream>`` and
Media Streams messages (https://www.twilio.com/docs/voice/twiml/stream,
https://www.twilio.com/docs/voice/media-streams/websocket-messages); OpenAI Realtime
WebSocket, client and server events
(https://platform.openai.com/docs/guides/realtime-websocket,
https://platform.openai.com/docs/api-reference/realtime-client-events,
https://platform.openai.com/docs/api-reference/realtime-server-events).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import sys
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit
from xml.sax.saxutils import quoteattr

import aiohttp
import numpy as np
import soxr
from aiohttp import WSCloseCode, WSMsgType, web

log = logging.getLogger("naive_relay")

FRAME_S = 0.020
VONAGE_RATE_HZ = 16_000
REALTIME_RATE_HZ = 24_000
TWILIO_FRAME_BYTES = 160  # 20 ms of mu-law at 8 kHz
PERSONA_PATH = Path(__file__).resolve().parent.parent / "system-message.txt"
DEFAULT_PERSONA = (
    "You are a friendly, concise voice assistant speaking with a caller on the telephone. "
    "Keep answers short and natural, one or two sentences, and ask a question when you need "
    "more information."
)
PCM_24K = {"type": "audio/pcm", "rate": REALTIME_RATE_HZ}
PCMU = {"type": "audio/pcmu"}
NO_AUDIO = np.zeros(0, dtype=np.int16)


@dataclass(frozen=True, slots=True)
class Config:
    """Where the relay listens and which Realtime server it talks to."""

    public_ws: str  # ws://host:port, for the NCCO and the TwiML
    realtime_url: str  # ws://.../v1/realtime
    api_key: str
    model: str
    quality: str  # soxr quality for the Vonage resampling
    lead_frames: int  # frames sent at once when a burst starts, beyond the first
    persona: str
    vonage_rate_hz: int = VONAGE_RATE_HZ  # the L16 rate the NCCO asks for (24000: no soxr)
    floor: bool = False  # --floor: the same messages, none of the work between them


CONFIG = web.AppKey("config", Config)
HTTP = web.AppKey("http", aiohttp.ClientSession)
SOCKETS = web.AppKey("sockets", set[web.WebSocketResponse])


def session_update(config: Config, caller: str, called: str, fmt: dict[str, Any]) -> str:
    """The bridge's default GA ``session.update`` (without tools), as JSON text."""
    parts = [config.persona]
    if caller:
        number = caller if caller.startswith("+") else "+" + caller
        parts.append(f"The caller's phone number is {number}.")
    if called:
        parts.append(f"The number they called is {called}.")
    turn_detection = {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 500,
        "create_response": True,
        "interrupt_response": True,
    }
    session = {
        "type": "realtime",
        "model": config.model,
        "instructions": "\n\n".join(parts),
        "audio": {
            "input": {
                "turn_detection": turn_detection,
                "format": fmt,
                "transcription": {"model": "gpt-4o-mini-transcribe"},
            },
            "output": {"voice": "marin", "format": fmt},
        },
        "output_modalities": ["audio"],
    }
    return json.dumps({"type": "session.update", "session": session})


def append(audio_b64: str) -> str:
    return json.dumps({"type": "input_audio_buffer.append", "audio": audio_b64})


class Call:
    """One call's audio state: the resamplers (Vonage), the reply frames waiting to be sent."""

    def __init__(
        self,
        caller: web.WebSocketResponse,
        quality: str,
        stream_sid: str = "",
        vonage_rate_hz: int = VONAGE_RATE_HZ,
    ) -> None:
        self.caller = caller
        self.vonage = not stream_sid  # Twilio calls have a stream SID
        self.stream_sid = stream_sid
        self.quality = quality
        self.rate_hz = vonage_rate_hz
        # At 24 kHz, Vonage's L16 is Realtime's audio/pcm: the bytes pass as they are.
        self.resample = self.vonage and vonage_rate_hz != REALTIME_RATE_HZ
        self.frame_bytes = vonage_rate_hz * 2 // 50 if self.vonage else TWILIO_FRAME_BYTES
        self.silence = b"\x00" if self.vonage else b"\xff"
        self.frames: deque[bytes] = deque()
        self.pending = b""  # reply audio short of a whole frame
        self.wake = asyncio.Event()
        self.response_id = ""  # the response whose audio is arriving
        self.cut_response = ""  # a response cut by a barge-in: its late audio is ignored
        self.up = self._stream(vonage_rate_hz, REALTIME_RATE_HZ)
        self.down = self._stream(REALTIME_RATE_HZ, vonage_rate_hz)

    def _stream(self, in_hz: int, out_hz: int) -> soxr.ResampleStream:
        return soxr.ResampleStream(in_hz, out_hz, 1, dtype="int16", quality=self.quality)

    def vonage_append(self, frame: bytes) -> str:
        """One L16 frame (16 kHz, or 24 kHz as it is) -> one append of 24 kHz PCM16."""
        if not self.resample:
            return append(base64.b64encode(frame).decode("ascii"))
        pcm = self.up.resample_chunk(np.frombuffer(frame, dtype=np.int16)).tobytes()
        return append(base64.b64encode(pcm).decode("ascii"))

    def reply_audio(self, audio: bytes) -> None:
        """One delta's audio (24 kHz PCM16 or mu-law) -> whole frames in the queue."""
        if self.resample:
            audio = self.down.resample_chunk(np.frombuffer(audio, dtype=np.int16)).tobytes()
        self._push(self.pending + audio)

    def reply_done(self) -> None:
        """End of a response's audio: flush the resampler, pad the tail to a whole frame."""
        tail = self.pending
        if self.resample:
            tail += self.down.resample_chunk(NO_AUDIO, last=True).tobytes()
            self.down = self._stream(REALTIME_RATE_HZ, self.rate_hz)
        if tail:
            rest = len(tail) % self.frame_bytes
            if rest:
                tail += self.silence * (self.frame_bytes - rest)
            self._push(tail)

    def _push(self, audio: bytes) -> None:
        n = self.frame_bytes
        whole = len(audio) - len(audio) % n
        for i in range(0, whole, n):
            self.frames.append(audio[i : i + n])
        self.pending = audio[whole:]
        if whole:
            self.wake.set()

    async def barge_in(self) -> None:
        """The caller spoke: drop the reply still queued and tell the caller to clear."""
        if not self.frames and not self.pending:
            return
        self.frames.clear()
        self.pending = b""
        self.cut_response = self.response_id
        if self.vonage:
            self.down = self._stream(REALTIME_RATE_HZ, self.rate_hz)
            await self.caller.send_str(json.dumps({"action": "clear"}))
        else:
            await self.caller.send_str(json.dumps({"event": "clear", "streamSid": self.stream_sid}))

    async def send_frame(self, frame: bytes) -> None:
        if self.vonage:
            await self.caller.send_bytes(frame)
            return
        payload = base64.b64encode(frame).decode("ascii")
        media = {"event": "media", "streamSid": self.stream_sid, "media": {"payload": payload}}
        await self.caller.send_str(json.dumps(media))


@dataclass(frozen=True, slots=True)
class FloorContents:
    """The floor's pre-built messages for one front door (see :class:`FloorCall`)."""

    frame: bytes  # one 20 ms frame of silence in the caller's format
    rt_frame_bytes: int  # Realtime bytes in 20 ms
    quiet_append: str  # input_audio_buffer.append of 20 ms of silence
    loud_append: str  # ... of 20 ms of a loud 1 kHz square wave
    quiet_payload: str  # Twilio: the base64 payload of a silent frame


def floor_contents(vonage: bool, frame_bytes: int) -> FloorContents:
    """The pre-built messages: appends of 960 B of 24 kHz PCM16 (Vonage) or 160 B of mu-law."""
    rt_bytes = REALTIME_RATE_HZ * 2 // 50 if vonage else TWILIO_FRAME_BYTES
    frame = (b"\x00" if vonage else b"\xff") * frame_bytes
    if vonage:
        quiet = bytes(rt_bytes)
        loud = np.tile(np.repeat(np.array([8000, -8000], np.int16), 12), 20).tobytes()
    else:
        quiet, loud = frame, bytes((0x00, 0x80)) * (rt_bytes // 2)  # mu-law
    return FloorContents(
        frame,
        rt_bytes,
        append(base64.b64encode(quiet).decode("ascii")),
        append(base64.b64encode(loud).decode("ascii")),
        base64.b64encode(frame).decode("ascii"),
    )


class FloorReplies:
    """Reply audio counted, not decoded: whole pre-built silence frames into ``frames``
    (waking the pacer), the tail padded per response. Mixed into the floors' calls, which
    set the attributes below."""

    frames: deque[bytes]
    wake: asyncio.Event
    silent: bytes  # the frame queued
    rt_frame_bytes: int
    pending_rt: int  # Realtime bytes short of a whole frame
    cut: bool  # a barge-in cut the response: its audio is ignored until the next one

    def reply_bytes(self, n: int) -> None:
        """``n`` Realtime bytes of reply audio -> whole silence frames in the queue."""
        n += self.pending_rt
        whole, self.pending_rt = divmod(n, self.rt_frame_bytes)
        if whole:
            self.frames.extend([self.silent] * whole)
            self.wake.set()

    def reply_done(self) -> None:
        """End of a response's audio: the tail as one more frame."""
        if self.pending_rt:
            self.pending_rt = 0
            self.frames.append(self.silent)
            self.wake.set()

    def realtime_text(self, data: str) -> bool:
        """One Realtime event, recognised by a substring of its head (no JSON parsing, no
        decoding); True when it is ``speech_started`` (a barge-in is due)."""
        head = data[:60]
        if "output_audio.delta" in head:
            if not self.cut:
                at = data.rfind('"delta"')
                self.reply_bytes(b64_bytes(data, data.index('"', at + 7) + 1))
        elif "output_audio.done" in head:
            if not self.cut:
                self.reply_done()
        elif "response.created" in head:
            self.cut = False
        elif "speech_started" in head:
            return True
        return False

    def drop_replies(self) -> bool:
        """A barge-in: drop what is queued; whether anything was (``clear`` is then due)."""
        if not self.frames and not self.pending_rt:
            return False
        self.frames.clear()
        self.pending_rt = 0
        self.cut = True
        return True


class FloorCall(FloorReplies, Call):
    """``--floor``: the same messages as :class:`Call`, with pre-built contents.

    Each caller frame is answered with one of two pre-built appends carrying 20 ms (960 B of
    24 kHz PCM16, or 160 B of mu-law): silence for a silent frame (compared whole: the bench's
    callers send exact silence between their words), else a loud 1 kHz square wave, so that
    the fake Realtime's energy VAD still hears the turns and replies. Reply audio is counted
    in Realtime bytes and queued as pre-built 20 ms silence frames, the tail padded per
    response as :class:`Call` does.
    """

    def __init__(self, caller: web.WebSocketResponse, stream_sid: str = "", rate: int = 16_000):
        super().__init__(caller, "LQ", stream_sid, rate)
        self.contents = floor_contents(self.vonage, self.frame_bytes)
        self.silent = self.contents.frame
        self.rt_frame_bytes = self.contents.rt_frame_bytes
        payload = self.contents.quiet_payload
        media = {"event": "media", "streamSid": stream_sid, "media": {"payload": payload}}
        self.media_text = json.dumps(media)
        self.pending_rt = 0
        self.cut = False

    async def barge_in(self) -> None:
        if not self.drop_replies():
            return
        if self.vonage:
            await self.caller.send_str('{"action": "clear"}')
        else:
            await self.caller.send_str(json.dumps({"event": "clear", "streamSid": self.stream_sid}))

    async def send_frame(self, frame: bytes) -> None:
        if self.vonage:
            await self.caller.send_bytes(frame)
        else:
            await self.caller.send_str(self.media_text)


def b64_bytes(data: str, start: int) -> int:
    """How many bytes the base64 string from ``data[start]`` to its closing quote decodes
    to (the event ends with ``"}``), without decoding it."""
    end = len(data) - 2
    n = (end - start) // 4 * 3
    if data[end - 1] == "=":
        n -= 2 if data[end - 2] == "=" else 1
    return n


async def floor_realtime_pump(call: FloorCall, rt: aiohttp.ClientWebSocketResponse) -> None:
    """:func:`realtime_pump` for ``--floor``: events recognised by a substring of their
    head, no JSON parsing, no decoding."""
    with contextlib.suppress(ConnectionResetError):
        async for msg in rt:
            if msg.type is not WSMsgType.TEXT:
                continue
            if call.realtime_text(msg.data):
                await call.barge_in()
        await call.caller.close(code=WSCloseCode.GOING_AWAY, message=b"Realtime closed")


async def pace(call: Call, lead_frames: int) -> None:
    """Send the queued frames on absolute 20 ms deadlines until cancelled.

    A burst (frames queued after the queue ran dry) starts its clock when its first frame is
    sent; its first ``lead_frames`` + 1 frames go at once, then one frame per 20 ms: frame k
    at ``start + (k - lead_frames) x 20 ms``. One sleep per frame (``asyncio.sleep`` of zero
    or less only yields), so a late wake-up does not push the following deadlines back. Frames
    queued again less than ``lead_frames`` x 20 ms after the queue ran dry continue the old
    clock (the caller still had that much queued), so the lead never grows.
    """
    loop = asyncio.get_running_loop()
    lead_s = lead_frames * FRAME_S
    deadline = 0.0
    with contextlib.suppress(ConnectionResetError):
        while True:
            if not call.frames:
                call.wake.clear()
                await call.wake.wait()
                # Refilled before the caller's lead ran out: keep the clock (no lead piles up);
                # later (a new burst, the caller's player has run dry): restart it now.
                deadline = max(deadline, loop.time() - lead_s)
                continue
            await call.send_frame(call.frames.popleft())
            deadline += FRAME_S
            await asyncio.sleep(deadline - loop.time())


async def realtime_pump(call: Call, rt: aiohttp.ClientWebSocketResponse) -> None:
    """Realtime events -> reply frames and barge-ins; closes the caller when Realtime closes."""
    with contextlib.suppress(ConnectionResetError):
        async for msg in rt:
            if msg.type is not WSMsgType.TEXT:
                continue
            event = json.loads(msg.data)
            kind = event.get("type")
            if kind == "response.output_audio.delta":
                call.response_id = event.get("response_id", "")
                if call.response_id != call.cut_response:
                    call.reply_audio(base64.b64decode(event["delta"]))
            elif kind == "response.output_audio.done":
                if event.get("response_id", "") != call.cut_response:
                    call.reply_done()
            elif kind == "input_audio_buffer.speech_started":
                await call.barge_in()
            elif kind == "error":
                log.warning("Realtime error: %s", event.get("error"))
        await call.caller.close(code=WSCloseCode.GOING_AWAY, message=b"Realtime closed")


async def relay(app: web.Application, call: Call, caller: str, called: str) -> None:
    """Open the Realtime session and pump both ways until either side closes."""
    config = app[CONFIG]
    headers = {"Authorization": f"Bearer {config.api_key}"}
    rt = await app[HTTP].ws_connect(
        config.realtime_url, params={"model": config.model}, headers=headers
    )
    tasks: list[asyncio.Task[None]] = []
    try:
        fmt = PCM_24K if call.vonage else PCMU
        await rt.send_str(session_update(config, caller, called, fmt))
        tasks = [
            asyncio.create_task(pace(call, config.lead_frames)),
            asyncio.create_task(
                floor_realtime_pump(call, rt)
                if isinstance(call, FloorCall)
                else realtime_pump(call, rt)
            ),
        ]
        if isinstance(call, FloorCall):
            await floor_caller_pump(call, rt)
            return
        async for msg in call.caller:  # the caller pump
            if msg.type is WSMsgType.BINARY and call.vonage:
                await rt.send_str(call.vonage_append(msg.data))
            elif msg.type is WSMsgType.TEXT and not call.vonage:
                event = json.loads(msg.data)
                if event.get("event") == "media":
                    await rt.send_str(append(event["media"]["payload"]))
                elif event.get("event") == "stop":
                    break
    except ConnectionResetError:
        pass
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await rt.close()
        await call.caller.close()


async def floor_caller_pump(call: FloorCall, rt: aiohttp.ClientWebSocketResponse) -> None:
    """The caller pump for ``--floor``: one pre-built append per caller frame."""
    contents = call.contents
    quiet, loud, silent_frame = contents.quiet_append, contents.loud_append, contents.frame
    quiet_payload = contents.quiet_payload
    async for msg in call.caller:
        if msg.type is WSMsgType.BINARY and call.vonage:
            await rt.send_str(quiet if msg.data == silent_frame else loud)
        elif msg.type is WSMsgType.TEXT and not call.vonage:
            data = msg.data
            if '"stop"' in data:
                break
            await rt.send_str(quiet if quiet_payload in data else loud)


async def open_socket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    return ws


# --- Vonage ---------------------------------------------------------------------------------


async def vonage_answer(request: web.Request) -> web.Response:
    """Answer URL (GET query or POST JSON): ``connect`` to ``/vonage/ws`` with the call's ids."""
    fields: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        fields.update(await request.json())
    call_uuid = str(fields.get("uuid", ""))
    headers = {k: str(fields[k]) for k in ("from", "to") if fields.get(k)}
    uri = f"{request.app[CONFIG].public_ws}/vonage/ws?{urlencode({'call_uuid': call_uuid})}"
    endpoint = {
        "type": "websocket",
        "uri": uri,
        "content-type": f"audio/l16;rate={request.app[CONFIG].vonage_rate_hz}",
        "headers": headers,
    }
    return web.json_response([{"action": "connect", "endpoint": [endpoint]}])


async def vonage_media(request: web.Request) -> web.WebSocketResponse:
    """Vonage's media socket: ``websocket:connected`` first, then 640 B binary frames."""
    ws = await open_socket(request)
    try:
        msg = await ws.receive()
        if msg.type is not WSMsgType.TEXT:
            return ws
        connected = json.loads(msg.data)
        config = request.app[CONFIG]
        call = (
            FloorCall(ws, rate=config.vonage_rate_hz)
            if config.floor
            else Call(ws, config.quality, vonage_rate_hz=config.vonage_rate_hz)
        )
        await relay(request.app, call, str(connected.get("from", "")), str(connected.get("to", "")))
    finally:
        request.app[SOCKETS].discard(ws)
        await ws.close()
    return ws


# --- Twilio ---------------------------------------------------------------------------------


async def twilio_answer(request: web.Request) -> web.Response:
    """Voice webhook (form fields; the signature is not checked): ``<Connect><Stream>``."""
    form = await request.post()
    names = {"CallSid": "call_sid", "From": "from", "To": "to"}
    params = "".join(
        f"<Parameter name={quoteattr(name)} value={quoteattr(str(form[key]))}/>"
        for key, name in names.items()
        if key in form
    )
    url = quoteattr(f"{request.app[CONFIG].public_ws}/twilio/media-stream")
    twiml = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Connect><Stream url={url}>{params}</Stream></Connect></Response>"
    )
    return web.Response(text=twiml, content_type="text/xml")


async def twilio_media(request: web.Request) -> web.WebSocketResponse:
    """Twilio's Media Stream: ``connected``, ``start`` (stream SID, parameters), ``media``..."""
    ws = await open_socket(request)
    try:
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            event = json.loads(msg.data)
            if event.get("event") == "start":
                start = event["start"]
                params = start.get("customParameters", {})
                sid = start["streamSid"]
                config = request.app[CONFIG]
                call = (
                    FloorCall(ws, sid) if config.floor else Call(ws, config.quality, stream_sid=sid)
                )
                await relay(request.app, call, params.get("from", ""), params.get("to", ""))
                break
    finally:
        request.app[SOCKETS].discard(ws)
        await ws.close()
    return ws


# --- the app ----------------------------------------------------------------------------------


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def realtime_url(base_url: str) -> str:
    """``<base with ws/wss scheme>/realtime``, as the bridge builds it from OPENAI_BASE_URL."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/realtime", "", ""))


def make_app(config: Config) -> web.Application:
    """The relay's routes: health, Vonage answer URL and media socket, Twilio webhook and
    Media Stream."""
    app = web.Application()
    app[CONFIG] = config
    app[SOCKETS] = set[web.WebSocketResponse]()

    async def http_session(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            app[HTTP] = http
            yield

    async def close_sockets(app: web.Application) -> None:
        sockets = app[SOCKETS]
        for ws in list(sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"relay stopping")

    app.cleanup_ctx.append(http_session)
    app.on_shutdown.append(close_sockets)
    app.router.add_get("/health", health)
    for path in ("/incoming-call", "/answer"):
        app.router.add_route("GET", path, vonage_answer)
        app.router.add_route("POST", path, vonage_answer)
    app.router.add_get("/vonage/ws", vonage_media)
    app.router.add_post("/twilio/incoming-call", twilio_answer)
    app.router.add_get("/twilio/media-stream", twilio_media)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="naive baseline relay for bench/load.py")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--openai-base-url", default="https://api.openai.com/v1")
    parser.add_argument("--api-key", default="sk-sim")
    parser.add_argument("--model", default="gpt-realtime")
    parser.add_argument("--quality", default="LQ", help="soxr quality (Vonage resampling)")
    parser.add_argument(
        "--lead-frames",
        type=int,
        default=2,
        help="frames sent at once when a burst of reply audio starts, beyond the first",
    )
    parser.add_argument(
        "--vonage-rate",
        type=int,
        choices=(16_000, 24_000),
        default=VONAGE_RATE_HZ,
        help="the L16 rate the NCCO asks for; 24000 passes the audio through (no soxr)",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="the same messages with pre-built contents (what aiohttp, the loop and the kernel"
        " cost for them)",
    )
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (the bridge's loop)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    persona = PERSONA_PATH.read_text().strip() if PERSONA_PATH.is_file() else ""
    config = Config(
        public_ws=f"ws://{args.host}:{args.port}",
        realtime_url=realtime_url(args.openai_base_url),
        api_key=args.api_key,
        model=args.model,
        quality=args.quality,
        lead_frames=args.lead_frames,
        persona=persona or DEFAULT_PERSONA,
        vonage_rate_hz=args.vonage_rate,
        floor=args.floor,
    )
    loop = None
    if args.uvloop:
        import uvloop

        loop = uvloop.new_event_loop()
    web.run_app(make_app(config), host=args.host, port=args.port, print=None, loop=loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())

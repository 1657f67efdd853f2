"""Fake OpenAI Realtime server (GA protocol) on aiohttp, bound to 127.0.0.1.

Entry ring (I/O): used by the integration tests and by the local simulation, never by the core.
It follows the GA Realtime API [Realtime guide] (connecting, session configuration), [client
events] and [server events], including the real API's refusals: a bad key gets HTTP 401, a missing
``model`` gets 400, and an ``OpenAI-Beta`` header gets ``beta_api_shape_disabled`` then close
code 4000. ``GET /v1/models/{model}`` answers too (``vonage-bridge doctor`` asks it).

What it does with a call:

- an energy-based server VAD (20 ms windows, RMS in dBFS) stands in for ``server_vad``: 60 ms
  of loud windows start speech, ``silence_duration_ms`` of quiet windows stop it;
- each utterance is committed as a user item, "transcribed" as ``(caller speech 1.42 s)`` when
  transcription is configured, and answered by playing the caller's own audio back as
  ``response.output_audio.delta`` events, faster than real time like the real API;
- ``response.cancel``, ``conversation.item.truncate`` and ``response.create`` behave like the
  real API, including its errors (``response_cancel_not_active``, "Audio content of Xms is
  already shorter than Yms").

Everything the client sent and everything the fake did is recorded on ``FakeRealtimeSession``
for the tests to assert on. Waiting helpers await events or queues; nothing polls. With
``FakeRealtimeOptions(script=...)`` the fake answers only what a test scripted
(``sim/realtime_script.py``).

Sources (cited below by their bracketed names):

- [Realtime guide] https://platform.openai.com/docs/guides/realtime-conversations and
  https://platform.openai.com/docs/api-reference/realtime-client-events/session/update
- [client events] https://platform.openai.com/docs/api-reference/realtime-client-events
- [server events] https://platform.openai.com/docs/api-reference/realtime-server-events
- [costs] https://platform.openai.com/docs/guides/realtime-costs (audio tokens per ms of
  audio; ``usage`` and its cached tokens)
- [openai-python] the Python SDK's types, ``src/openai/types/realtime/`` (GA) and
  ``src/openai/types/beta/realtime/`` (beta), https://github.com/openai/openai-python
- [openai-openapi] the OpenAPI definition, ``openapi.yaml`` in
  https://github.com/openai/openai-openapi
- [beta end] reports of the beta protocol's refusal (``beta_api_shape_disabled``, close 4000):
  https://github.com/langwatch/scenario/issues/602
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import itertools
import json
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal, Self

import numpy as np
import numpy.typing as npt
from aiohttp import WSCloseCode, WSMsgType, web

from .realtime_script import RealtimeScript
from .server import LoopbackServer

__all__ = [
    "FakeRealtimeOptions",
    "FakeRealtimeServer",
    "FakeRealtimeSession",
    "FakeResponse",
]

logger = logging.getLogger(__name__)

JsonObject = dict[str, Any]
Int16Array = npt.NDArray[np.int16]

REALTIME_PATH: Final = "/v1/realtime"
MODELS_PATH: Final = "/v1/models/"
VAD_WINDOW_MS: Final = 20
SPEECH_START_MS: Final = 60  # consecutive loud audio needed before speech_started
DEFAULT_PREFIX_PADDING_MS: Final = 300  # [openai-python] realtime_audio_input_turn_detection.py
DEFAULT_SILENCE_DURATION_MS: Final = 500
MIN_COMMIT_MS: Final = 100  # the real API refuses to commit less than 100 ms
TONE_HZ: Final = 440.0
TONE_MS: Final = 200
CLOSE_TIMEOUT_S: Final = 2.0
USER_AUDIO_MS_PER_TOKEN: Final = 100.0  # caller audio: 1 token per 100 ms [costs]
REPLY_AUDIO_MS_PER_TOKEN: Final = 50.0  # assistant audio: 1 token per 50 ms [costs]
MAX_MESSAGE_BYTES: Final = (
    32 * 1024 * 1024
)  # 15 MiB of audio per append, base64-encoded [client events]

BETA_MESSAGE: Final = (
    "The Realtime Beta API is no longer supported. Please use the GA Realtime API instead."
)
# Flat beta session fields; GA nests them under session.audio ([openai-python]: beta/realtime/
# session_update_event.py against realtime/session_update_event.py).
BETA_SESSION_FIELDS: Final = frozenset(
    {
        "modalities",
        "voice",
        "input_audio_format",
        "output_audio_format",
        "input_audio_transcription",
        "input_audio_noise_reduction",
        "turn_detection",
        "speed",
    }
)
# Objects replaced as a whole by session.update rather than merged key by key.
REPLACED_WHOLE: Final = frozenset(
    {"format", "turn_detection", "transcription", "noise_reduction", "tools", "tool_choice"}
    | {"tracing", "prompt", "include", "truncation", "voice"}
)
REJECT_CODES: Final = {
    400: "invalid_request",
    401: "invalid_api_key",
    403: "unsupported_country_region_territory",
    404: "model_not_found",
    429: "rate_limit_exceeded",
    500: "server_error",
    502: "bad_gateway",
    503: "service_unavailable",
}


# --- options and records ----------------------------------------------------------------------


@dataclass
class FakeRealtimeOptions:
    """Knobs of the fake. Read live, so a test may change them between calls.

    Attributes:
        reject_status: refuse every upgrade with this HTTP status and an OpenAI-style JSON
            error body.
        handshake_delay_s: wait this long before answering the upgrade (connect timeouts, a
            slow Realtime).
        session_updated_delay_s: answer each ``session.update`` this long after it arrived,
            reading nothing from the client meanwhile (the real API handles client events in
            order, so later events wait behind it). With ``handshake_delay_s`` a slow
            Realtime: ``--slow-realtime-ms`` of the simulation sets both.
        vad_threshold_dbfs: a 20 ms window whose RMS is above this is speech. The session's
            ``turn_detection.threshold`` is ignored.
        reply: answer each utterance detected by the VAD with a response.
        reply_chunk_ms: audio per ``response.output_audio.delta``.
        reply_realtime_factor: deltas are streamed this many times faster than real time;
            0 streams them as fast as possible.
        close_after_responses: close the socket with code 1000 once this many responses are
            done (completed or cancelled).
        script: scripted mode: each client event is checked against the script's steps and
            answered with the step's server events only; no VAD, no replies of the fake's own
            (see ``sim/realtime_script.py``). ``session.created`` is still sent on connect.
        stall_after_deltas: a stalled session: after this many audio deltas of a response
            the fake sends nothing more (the response never finishes, no event of any kind
            follows) while the socket stays open and client events are still recorded.
    """

    reject_status: int | None = None
    handshake_delay_s: float = 0.0
    session_updated_delay_s: float = 0.0
    vad_threshold_dbfs: float = -45.0
    reply: bool = True
    reply_chunk_ms: int = 100
    reply_realtime_factor: float = 4.0
    close_after_responses: int | None = None
    script: RealtimeScript | None = None
    stall_after_deltas: int | None = None

    def __post_init__(self) -> None:
        if self.reject_status is not None and not 400 <= self.reject_status <= 599:
            raise ValueError(f"reject_status must be a 4xx or 5xx status: {self.reject_status}")
        if self.handshake_delay_s < 0:
            raise ValueError("handshake_delay_s must be >= 0")
        if self.session_updated_delay_s < 0:
            raise ValueError("session_updated_delay_s must be >= 0")
        if self.reply_chunk_ms <= 0:
            raise ValueError("reply_chunk_ms must be > 0")
        if self.reply_realtime_factor < 0:
            raise ValueError("reply_realtime_factor must be >= 0")
        if self.close_after_responses is not None and self.close_after_responses < 1:
            raise ValueError("close_after_responses must be >= 1")
        if self.stall_after_deltas is not None and self.stall_after_deltas < 1:
            raise ValueError("stall_after_deltas must be >= 1")


@dataclass
class FakeResponse:
    """One response of the fake, as streamed so far.

    Attributes:
        response_id: ``resp_<n>``.
        item_id: the assistant message item, ``item_<n>``.
        total_bytes: audio bytes sent in ``response.output_audio.delta`` events, in the
            session's output format (48 per ms for audio/pcm at 24 kHz).
        status: ``in_progress``, then ``completed`` or ``cancelled``.
    """

    response_id: str
    item_id: str
    total_bytes: int = 0
    status: str = "in_progress"


# --- audio ------------------------------------------------------------------------------------

Encoding = Literal["audio/pcm", "audio/pcmu", "audio/pcma"]


@dataclass(frozen=True, slots=True)
class _AudioFormat:
    """A Realtime audio format ([openai-openapi] ``RealtimeAudioFormats``)."""

    encoding: Encoding
    sample_rate_hz: int

    @property
    def sample_bytes(self) -> int:
        return 2 if self.encoding == "audio/pcm" else 1

    @property
    def bytes_per_ms(self) -> int:
        """48 for audio/pcm at 24 kHz, 8 for G.711 at 8 kHz."""
        return self.sample_rate_hz // 1000 * self.sample_bytes

    def as_json(self) -> JsonObject:
        if self.encoding == "audio/pcm":
            return {"type": "audio/pcm", "rate": self.sample_rate_hz}
        return {"type": self.encoding}


PCM24: Final = _AudioFormat("audio/pcm", 24_000)


def _parse_format(value: object) -> _AudioFormat | None:
    """Audio format from its JSON, or None if the real API would refuse it.

    Source: [openai-openapi] ``RealtimeAudioFormats``: audio/pcm is 24 kHz only; G.711 has no
    rate field.
    """
    if not isinstance(value, dict):
        return None
    kind = value.get("type")
    if kind == "audio/pcm":
        return PCM24 if value.get("rate") == 24_000 else None
    if kind == "audio/pcmu" or kind == "audio/pcma":
        return _AudioFormat(kind, 8_000) if value.get("rate", 8_000) == 8_000 else None
    return None


def _mulaw_table() -> Int16Array:
    """G.711 μ-law code → linear PCM16, all 256 codes."""
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (code >> 4) & 0x07
    magnitude = ((((code & 0x0F) << 3) + 0x84) << exponent) - 0x84
    return np.where(code & 0x80, -magnitude, magnitude).astype(np.int16)


def _alaw_table() -> Int16Array:
    """G.711 A-law code → linear PCM16, all 256 codes."""
    code = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    shifted = ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, shifted)
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


class _G711:
    """A G.711 codec from its decode table; encodes to the nearest code."""

    def __init__(self, table: Int16Array) -> None:
        self.table = table
        order = np.argsort(table, kind="stable")
        self._values = table[order].astype(np.int32)
        self._codes = order.astype(np.uint8)

    def decode(self, data: bytes) -> Int16Array:
        return self.table[np.frombuffer(data, dtype=np.uint8)]

    def encode(self, samples: Int16Array) -> bytes:
        x = samples.astype(np.int32)
        right = np.clip(np.searchsorted(self._values, x), 1, self._values.size - 1)
        left = right - 1
        nearest = np.where(x - self._values[left] <= self._values[right] - x, left, right)
        return bytes(self._codes[nearest].tobytes())


MULAW: Final = _G711(_mulaw_table())
ALAW: Final = _G711(_alaw_table())


def _decode(fmt: _AudioFormat, data: bytes) -> Int16Array:
    """Linear PCM16 samples of audio in fmt (a trailing odd byte of PCM is ignored)."""
    if fmt.encoding == "audio/pcmu":
        return MULAW.decode(data)
    if fmt.encoding == "audio/pcma":
        return ALAW.decode(data)
    return np.frombuffer(data, dtype="<i2", count=len(data) // 2).astype(np.int16)


def _encode(fmt: _AudioFormat, samples: Int16Array) -> bytes:
    if fmt.encoding == "audio/pcmu":
        return MULAW.encode(samples)
    if fmt.encoding == "audio/pcma":
        return ALAW.encode(samples)
    return bytes(samples.astype("<i2").tobytes())


def _convert(data: bytes, src: _AudioFormat, dst: _AudioFormat) -> bytes:
    """Audio re-encoded from src to dst, resampled by linear interpolation if rates differ."""
    if src == dst:
        return bytes(data)
    samples = _decode(src, data)
    if src.sample_rate_hz != dst.sample_rate_hz and samples.size:
        n_out = samples.size * dst.sample_rate_hz // src.sample_rate_hz
        where = np.arange(n_out) * (src.sample_rate_hz / dst.sample_rate_hz)
        resampled = np.interp(where, np.arange(samples.size), samples.astype(np.float64))
        samples = np.round(resampled).astype(np.int16)
    return _encode(dst, samples)


def _audio_tokens(ms: float, ms_per_token: float) -> int:
    """Audio tokens for ``ms`` of audio, rounded up (a started token counts) [costs]."""
    return math.ceil(ms / ms_per_token) if ms > 0 else 0


def _tone(fmt: _AudioFormat, duration_ms: int) -> bytes:
    """A 440 Hz tone at -12 dBFS peak, in fmt."""
    n = fmt.sample_rate_hz * duration_ms // 1000
    t = np.arange(n) / fmt.sample_rate_hz
    wave = 10 ** (-12 / 20) * 32767 * np.sin(2 * math.pi * TONE_HZ * t)
    return _encode(fmt, np.round(wave).astype(np.int16))


def _dbfs(samples: Int16Array) -> float:
    """RMS level in dBFS; -inf for digital silence."""
    if samples.size == 0:
        return -math.inf
    x = samples.astype(np.float64) / 32768.0
    rms = float(np.sqrt(np.mean(x * x)))
    return 20 * math.log10(rms) if rms > 0 else -math.inf


# --- ids and defaults -------------------------------------------------------------------------


class _Ids:
    """Server-wide id counters, so ids stay unique across reconnects: ``item_1``, ``resp_1``."""

    def __init__(self) -> None:
        self._counters: dict[str, Iterator[int]] = {}

    def next(self, prefix: str) -> str:
        counter = self._counters.setdefault(prefix, itertools.count(1))
        return f"{prefix}_{next(counter)}"


def _default_turn_detection(kind: str = "server_vad") -> JsonObject:
    if kind == "semantic_vad":
        return {
            "type": "semantic_vad",
            "eagerness": "auto",
            "create_response": True,
            "interrupt_response": True,
        }
    return {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": DEFAULT_PREFIX_PADDING_MS,
        "silence_duration_ms": DEFAULT_SILENCE_DURATION_MS,
        "idle_timeout_ms": None,
        "create_response": True,
        "interrupt_response": True,
    }


def _default_session(session_id: str, model: str) -> JsonObject:
    """A plausible GA ``session`` object as the real API sends in ``session.created``
    [Realtime guide]."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": "You are a helpful assistant (fake Realtime server).",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "include": None,
        "expires_at": int(time.time()) + 3600,
        "audio": {
            "input": {
                "format": PCM24.as_json(),
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": _default_turn_detection(),
            },
            "output": {"format": PCM24.as_json(), "voice": "marin", "speed": 1.0},
        },
    }


def _merge(base: JsonObject, update: JsonObject) -> None:
    """Apply a session.update: only the fields present change [Realtime guide]."""
    for key, value in update.items():
        current = base.get(key)
        if isinstance(value, dict) and isinstance(current, dict) and key not in REPLACED_WHOLE:
            _merge(current, value)
        else:
            base[key] = copy.deepcopy(value)


def _sub(obj: JsonObject, *keys: str) -> JsonObject:
    """obj[k1][k2]…, or {} where a level is missing or not an object."""
    for key in keys:
        value = obj.get(key)
        if not isinstance(value, dict):
            return {}
        obj = value
    return obj


@dataclass(frozen=True, slots=True)
class _Refusal:
    """An ``error`` event's details."""

    code: str
    message: str
    param: str | None = None


def _check_session_update(session: object) -> _Refusal | None:
    """Light validation of a session.update ``session`` object, like the real API's."""
    if not isinstance(session, dict):
        return _Refusal(
            "missing_required_parameter", "Missing required parameter: 'session'.", "session"
        )
    if "type" not in session:
        return _Refusal(
            "missing_required_parameter",
            "Missing required parameter: 'session.type'.",
            "session.type",
        )
    if session["type"] != "realtime":
        return _Refusal(
            "invalid_value",
            f"Invalid value: {session['type']!r}. Supported values are: 'realtime'.",
            "session.type",
        )
    beta_fields = sorted(BETA_SESSION_FIELDS.intersection(session))
    if beta_fields:
        param = f"session.{beta_fields[0]}"
        return _Refusal("unknown_parameter", f"Unknown parameter: '{param}'.", param)
    audio = session.get("audio", {})
    if not isinstance(audio, dict):
        return _Refusal("invalid_type", "Invalid type for 'session.audio'.", "session.audio")
    for direction in ("input", "output"):
        section = audio.get(direction, {})
        if not isinstance(section, dict):
            param = f"session.audio.{direction}"
            return _Refusal("invalid_type", f"Invalid type for '{param}'.", param)
        if "format" in section and _parse_format(section["format"]) is None:
            param = f"session.audio.{direction}.format"
            return _Refusal(
                "invalid_value",
                f"Invalid value for '{param}': {json.dumps(section['format'])}. Supported: "
                '{"type": "audio/pcm", "rate": 24000}, {"type": "audio/pcmu"}, '
                '{"type": "audio/pcma"}.',
                param,
            )
    turn_detection = _sub(session, "audio", "input").get("turn_detection", None)
    if turn_detection is not None and (
        not isinstance(turn_detection, dict)
        or turn_detection.get("type") not in ("server_vad", "semantic_vad")
    ):
        param = "session.audio.input.turn_detection"
        return _Refusal("invalid_value", f"Invalid value for '{param}'.", param)
    return None


# --- one session ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Close:
    """Outbox sentinel: close the socket after everything queued before it is sent."""

    code: int
    message: bytes


@dataclass
class _ActiveResponse:
    response: FakeResponse
    audio_format: _AudioFormat
    transcript: str
    task: asyncio.Task[None] | None = None
    transcript_sent: str = ""


class FakeRealtimeSession:
    """One accepted Realtime WebSocket: its config, what the client sent, what the fake did.

    Attributes:
        model: the ``model`` query parameter.
        handshake: this socket's entry in ``FakeRealtimeServer.handshakes``.
        config: the effective GA ``session`` object, as last sent in ``session.updated``.
        client_events: every client event in order; appends as
            ``{"type": "input_audio_buffer.append", "audio_bytes": n}``; unparsable messages
            as ``{"type": "(invalid json)", "text": …}`` or ``{"type": "(binary)", "bytes": n}``.
        server_events: every server event queued for sending, audio deltas as
            ``audio_bytes`` instead of ``delta``.
        append_count: ``input_audio_buffer.append`` events received.
        input_audio: all appended audio, decoded from base64, in the input format.
        append_log: ``(loop.time(), len(input_audio))`` after each append.
        reply_log: ``(loop.time(), cumulative output audio bytes this session)`` per delta.
        responses: every response, in order.
        speech_started_count: ``input_audio_buffer.speech_started`` events sent.
        speech_stopped_ms: ``loop.time()`` at which each ``speech_stopped`` was sent.
        closed: set once the socket is closed and the session has stopped.
        stalled: the session went silent (``FakeRealtimeOptions.stall_after_deltas``).
        close_code: the code the server sent if it closed first, else the client's code.
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        *,
        model: str,
        handshake: JsonObject,
        options: FakeRealtimeOptions,
        ids: _Ids,
    ) -> None:
        self._ws = ws
        self._options = options
        self._ids = ids
        self._loop = asyncio.get_running_loop()
        self.model = model
        self.handshake = handshake
        self.config: JsonObject = _default_session(ids.next("sess"), model)
        self.client_events: list[JsonObject] = []
        self.server_events: list[JsonObject] = []
        self.append_count = 0
        self.input_audio = bytearray()
        self.append_log: list[tuple[float, int]] = []
        self.reply_log: list[tuple[float, int]] = []
        self.responses: list[FakeResponse] = []
        self.speech_started_count = 0
        self.speech_stopped_ms: list[float] = []
        self.closed = asyncio.Event()
        self.close_code: int | None = None

        self._outbox: asyncio.Queue[str | _Close] = asyncio.Queue()
        self._writer_task: asyncio.Task[None] | None = None
        self._accepting = True
        self._close_requested = False
        self._close_sent: int | None = None
        self._close_done = asyncio.Event()
        self._event_queues: dict[str, asyncio.Queue[JsonObject]] = {}
        self._responses_changed = asyncio.Event()
        self._reply_bytes = 0
        self._conversation_id = ids.next("conv")
        self.stalled = False  # stall_after_deltas reached: nothing is sent any more
        self._late_update: JsonObject | None = None  # a session.update answered late

        # conversation
        self._previous_item_id: str | None = None
        self._user_items: set[str] = set()
        self._assistant_sent_ms: dict[str, float] = {}
        self._active: _ActiveResponse | None = None
        self._stream_tasks: set[asyncio.Task[None]] = set()
        self._last_utterance: tuple[bytes, _AudioFormat] | None = None
        # usage: the conversation so far, in tokens (what the next response reads as input)
        self._history_text_tokens = 0
        self._history_audio_tokens = 0
        self._cached_prefix = (0, 0)  # (text, audio) tokens of the previous response's input

        # server VAD, over input_audio; positions as (byte offset, ms of audio since start)
        self._vad_byte = 0
        self._vad_ms = 0.0
        self._commit_byte = 0
        self._loud_windows = 0
        self._run_start = (0, 0.0)
        self._in_speech = False
        self._quiet_ms = 0.0
        self._speech_item_id = ""
        self._utterance_start_byte = 0
        self._speech_end = (0, 0.0)

    # --- public waiting and control -----------------------------------------------------------

    async def wait_for_event(self, type: str, timeout: float = 5.0) -> JsonObject:
        """The first client event of this type not yet returned, waiting if needed.

        Raises:
            TimeoutError: if none arrives within timeout seconds.
        """
        async with asyncio.timeout(timeout):
            return await self._queue_for(type).get()

    async def wait_responses_done(self, n: int, timeout: float = 5.0) -> list[FakeResponse]:
        """Wait until at least n responses are done (completed or cancelled); return those.

        Raises:
            TimeoutError: if fewer than n are done within timeout seconds.
        """
        async with asyncio.timeout(timeout):
            while True:
                done = [r for r in self.responses if r.status != "in_progress"]
                if len(done) >= n:
                    return done
                await self._responses_changed.wait()

    async def close(self, code: int = WSCloseCode.OK, message: bytes = b"") -> None:
        """Close from the server side ("the Realtime side hangs up") and wait until closed.

        Events already queued are sent first; a response being streamed stops silently.
        """
        if not self.closed.is_set():
            self._stop_streaming()
            self._request_close(code, message)
            if self._writer_task is None or self._writer_task.done():
                await self._close_socket(code, message)
        await self.closed.wait()

    # --- socket plumbing ----------------------------------------------------------------------

    async def _serve(self, *, beta: bool) -> None:
        """Run the session until the socket closes. Called by the server's handler."""
        self._writer_task = asyncio.create_task(self._write_loop())
        if beta:
            # [beta end]: the beta shape is refused after the upgrade, with close 4000.
            self._accepting = False
            self._push_error("beta_api_shape_disabled", BETA_MESSAGE)
            self._request_close(4000, b"Realtime Beta API is no longer supported")
        else:
            self._push("session.created", session=copy.deepcopy(self.config))
        try:
            async for msg in self._ws:
                if msg.type is WSMsgType.TEXT:
                    self._on_text(msg.data)
                    if self._late_update is not None:  # session_updated_delay_s
                        event, self._late_update = self._late_update, None
                        with contextlib.suppress(TimeoutError):  # cut short by our close
                            await asyncio.wait_for(
                                self._close_done.wait(), self._options.session_updated_delay_s
                            )
                        if self._accepting:
                            self._on_session_update(event)
                elif msg.type is WSMsgType.BINARY:
                    self._record({"type": "(binary)", "bytes": len(msg.data)})
                    if self._accepting:
                        self._push_error("invalid_json", "Binary messages are not supported.")
                elif msg.type is WSMsgType.ERROR:
                    break
        finally:
            await self._shut_down()

    async def _shut_down(self) -> None:
        self._accepting = False
        self._stop_streaming()
        if self._close_sent is not None:
            await self._close_done.wait()  # our close handshake is under way: let it finish
        writer = self._writer_task
        if writer is not None:
            if not writer.done():
                writer.cancel()
            await asyncio.wait({writer})
        if self._stream_tasks:
            await asyncio.wait(set(self._stream_tasks))
        await self._ws.close()  # no-op unless the peer vanished without a close frame
        self.close_code = self._close_sent if self._close_sent is not None else self._ws.close_code
        self.closed.set()
        logger.info("fake realtime: session %s closed, code %s", self.config["id"], self.close_code)

    async def _write_loop(self) -> None:
        while True:
            item = await self._outbox.get()
            if isinstance(item, _Close):
                await self._close_socket(item.code, item.message)
                return
            try:
                await self._ws.send_str(item)
            except ConnectionError:
                return

    def _request_close(self, code: int, message: bytes) -> None:
        if not self._close_requested:
            self._close_requested = True
            self._outbox.put_nowait(_Close(code, message))

    async def _close_socket(self, code: int, message: bytes) -> None:
        if self._close_sent is not None:
            return
        self._close_sent = code
        try:
            await self._ws.close(code=code, message=message)
        finally:
            self._close_done.set()

    def _push(self, type_: str, **fields: Any) -> None:
        """Queue one server event; its event_id is ``event_<n>``. Nothing once stalled."""
        if self.stalled:
            return
        event: JsonObject = {"type": type_, "event_id": self._ids.next("event"), **fields}
        self.server_events.append(event)
        self._outbox.put_nowait(json.dumps(event))

    def _push_error(
        self,
        code: str,
        message: str,
        *,
        param: str | None = None,
        client_event_id: object = None,
    ) -> None:
        logger.debug("fake realtime: error event %s: %s", code, message)
        self._push(
            "error",
            error={
                "type": "invalid_request_error",
                "code": code,
                "message": message,
                "param": param,
                "event_id": client_event_id,
            },
        )

    def _refuse(self, refusal: _Refusal, event: JsonObject) -> None:
        self._push_error(
            refusal.code,
            refusal.message,
            param=refusal.param,
            client_event_id=event.get("event_id"),
        )

    def _queue_for(self, type_: str) -> asyncio.Queue[JsonObject]:
        queue = self._event_queues.get(type_)
        if queue is None:  # not setdefault: that would build a Queue per recorded event
            queue = self._event_queues[type_] = asyncio.Queue()
        return queue

    def _record(self, record: JsonObject) -> None:
        self.client_events.append(record)
        self._queue_for(str(record.get("type"))).put_nowait(record)

    # --- client events ------------------------------------------------------------------------

    def _on_text(self, text: str) -> None:
        try:
            event = json.loads(text)
        except ValueError:
            self._record({"type": "(invalid json)", "text": text[:200]})
            if self._accepting:
                self._push_error("invalid_json", "The message is not valid JSON.")
            return
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            self._record({"type": "(invalid json)", "text": text[:200]})
            if self._accepting:
                self._push_error(
                    "missing_required_parameter",
                    "Missing required parameter: 'type'.",
                    param="type",
                )
            return
        type_: str = event["type"]
        script = self._options.script
        if type_ == "input_audio_buffer.append":
            self._on_append(event)
            if script is None:
                return
        else:
            self._record(event)
        if not self._accepting:
            return
        if script is not None:
            for reply in script.answer(event):
                reply_type = str(reply.pop("type", "(no type)"))
                self._push(reply_type, **reply)
            return
        if type_ == "session.update" and self._options.session_updated_delay_s > 0:
            self._late_update = event  # answered by _serve, late
            return
        handler = {
            "session.update": self._on_session_update,
            "input_audio_buffer.commit": self._on_commit,
            "input_audio_buffer.clear": self._on_clear,
            "conversation.item.create": self._on_item_create,
            "conversation.item.truncate": self._on_truncate,
            "response.create": self._on_response_create,
            "response.cancel": self._on_response_cancel,
        }.get(type_)
        if handler is None:
            self._refuse(
                _Refusal("unknown_event", f"Invalid value: '{type_}'. Unknown event type.", "type"),
                event,
            )
        else:
            handler(event)

    def _on_session_update(self, event: JsonObject) -> None:
        session = event.get("session")
        refusal = _check_session_update(session)
        if refusal is not None:
            self._refuse(refusal, event)
            return
        assert isinstance(session, dict)
        update = copy.deepcopy(session)
        turn_detection = _sub(update, "audio", "input").get("turn_detection")
        if isinstance(turn_detection, dict):  # fill the defaults of its kind, then the fields set
            filled = _default_turn_detection(str(turn_detection["type"]))
            filled.update(turn_detection)
            update["audio"]["input"]["turn_detection"] = filled
        _merge(self.config, update)
        self._push("session.updated", session=copy.deepcopy(self.config))

    def _on_append(self, event: JsonObject) -> None:
        self.append_count += 1
        audio = event.get("audio")
        try:
            if not isinstance(audio, str):
                raise ValueError
            data = base64.b64decode(audio, validate=True)
        except (ValueError, binascii.Error):
            self._record({"type": event["type"], "audio_bytes": None})
            if self._accepting:
                self._refuse(
                    _Refusal(
                        "invalid_value", "Invalid 'audio'. Expected base64-encoded audio.", "audio"
                    ),
                    event,
                )
            return
        self._record({"type": event["type"], "audio_bytes": len(data)})
        if not self._accepting:
            return
        self.input_audio.extend(data)
        self.append_log.append((self._loop.time(), len(self.input_audio)))
        if self._options.script is None:
            self._run_vad()

    def _on_commit(self, event: JsonObject) -> None:
        fmt = self._input_format()
        buffered = bytes(self.input_audio[self._commit_byte :])
        buffered_ms = len(buffered) / fmt.bytes_per_ms
        if buffered_ms < MIN_COMMIT_MS:
            self._refuse(
                _Refusal(
                    "input_audio_buffer_commit_empty",
                    "Error committing input audio buffer: buffer too small. Expected at least "
                    f"{MIN_COMMIT_MS}ms of audio, but buffer only has {buffered_ms:.2f}ms "
                    "of audio.",
                ),
                event,
            )
            return
        self._reset_speech()
        self._last_utterance = (buffered, fmt)
        self._commit_user_item(self._ids.next("item"), len(buffered) / fmt.bytes_per_ms / 1000)

    def _on_clear(self, event: JsonObject) -> None:
        self._commit_byte = len(self.input_audio)
        self._reset_speech()
        self._push("input_audio_buffer.cleared")

    def _on_item_create(self, event: JsonObject) -> None:
        item = event.get("item")
        if not isinstance(item, dict):
            self._refuse(
                _Refusal(
                    "missing_required_parameter", "Missing required parameter: 'item'.", "item"
                ),
                event,
            )
            return
        item = {"object": "realtime.item", "status": "completed", **copy.deepcopy(item)}
        item.setdefault("id", self._ids.next("item"))
        previous = event.get("previous_item_id", self._previous_item_id)
        self._previous_item_id = str(item["id"])
        self._push("conversation.item.added", previous_item_id=previous, item=item)
        self._push("conversation.item.done", previous_item_id=previous, item=item)

    def _on_truncate(self, event: JsonObject) -> None:
        item_id = event.get("item_id")
        content_index = event.get("content_index")
        audio_end_ms = event.get("audio_end_ms")
        if not isinstance(item_id, str):
            refusal = _Refusal(
                "missing_required_parameter", "Missing required parameter: 'item_id'.", "item_id"
            )
        elif item_id in self._user_items:
            refusal = _Refusal(
                "invalid_value", "Only assistant message items can be truncated.", "item_id"
            )
        elif item_id not in self._assistant_sent_ms:
            refusal = _Refusal(
                "invalid_value", f"Item with item_id '{item_id}' not found.", "item_id"
            )
        elif content_index != 0:
            refusal = _Refusal(
                "invalid_value", "Invalid 'content_index': expected 0.", "content_index"
            )
        elif (
            not isinstance(audio_end_ms, int) or isinstance(audio_end_ms, bool) or audio_end_ms < 0
        ):
            refusal = _Refusal(
                "invalid_value", "Invalid 'audio_end_ms': expected an integer >= 0.", "audio_end_ms"
            )
        elif audio_end_ms > self._assistant_sent_ms[item_id]:
            sent_ms = self._assistant_sent_ms[item_id]
            refusal = _Refusal(
                "invalid_value",
                f"Audio content of {sent_ms:.0f}ms is already shorter than {audio_end_ms}ms",
                "audio_end_ms",
            )
        else:
            self._assistant_sent_ms[item_id] = float(audio_end_ms)
            self._push(
                "conversation.item.truncated",
                item_id=item_id,
                content_index=0,
                audio_end_ms=audio_end_ms,
            )
            return
        self._refuse(refusal, event)

    def _on_response_create(self, event: JsonObject) -> None:
        if self._active is not None:
            active_id = self._active.response.response_id
            self._refuse(
                _Refusal(
                    "conversation_already_has_active_response",
                    f"Conversation already has an active response in progress: {active_id}. "
                    "Wait until the response is finished before creating a new one.",
                ),
                event,
            )
            return
        self._start_response()

    def _on_response_cancel(self, event: JsonObject) -> None:
        wanted = event.get("response_id")
        active = self._active
        if active is None or (wanted is not None and wanted != active.response.response_id):
            self._refuse(
                _Refusal(
                    "response_cancel_not_active",
                    "Cancellation failed: no active response found.",
                    "response_id" if wanted is not None else None,
                ),
                event,
            )
            return
        self._cancel_active("client_cancelled")

    # --- server VAD ---------------------------------------------------------------------------

    def _input_format(self) -> _AudioFormat:
        return _parse_format(_sub(self.config, "audio", "input").get("format")) or PCM24

    def _output_format(self) -> _AudioFormat:
        return _parse_format(_sub(self.config, "audio", "output").get("format")) or PCM24

    def _turn_detection(self) -> JsonObject | None:
        value = _sub(self.config, "audio", "input").get("turn_detection")
        return value if isinstance(value, dict) else None

    def _run_vad(self) -> None:
        """Classify every complete 20 ms window appended since the last call."""
        fmt = self._input_format()
        window = fmt.bytes_per_ms * VAD_WINDOW_MS
        threshold = self._options.vad_threshold_dbfs
        while len(self.input_audio) - self._vad_byte >= window:
            start = (self._vad_byte, self._vad_ms)
            chunk = bytes(self.input_audio[self._vad_byte : self._vad_byte + window])
            self._vad_byte += window
            self._vad_ms += VAD_WINDOW_MS
            turn_detection = self._turn_detection()
            if turn_detection is not None:
                loud = _dbfs(_decode(fmt, chunk)) > threshold
                self._vad_window(loud, start, turn_detection, fmt)

    def _vad_window(
        self,
        loud: bool,
        start: tuple[int, float],
        turn_detection: JsonObject,
        fmt: _AudioFormat,
    ) -> None:
        end = (self._vad_byte, self._vad_ms)
        if not self._in_speech:
            if not loud:
                self._loud_windows = 0
                return
            if self._loud_windows == 0:
                self._run_start = start
            self._loud_windows += 1
            if self._loud_windows * VAD_WINDOW_MS >= SPEECH_START_MS:
                self._speech_started(turn_detection, fmt, end)
            return
        if loud:
            self._quiet_ms = 0.0
            self._speech_end = end
            return
        self._quiet_ms += VAD_WINDOW_MS
        silence_ms = turn_detection.get("silence_duration_ms") or DEFAULT_SILENCE_DURATION_MS
        if self._quiet_ms >= silence_ms:
            self._speech_stopped(turn_detection, fmt)

    def _speech_started(
        self, turn_detection: JsonObject, fmt: _AudioFormat, end: tuple[int, float]
    ) -> None:
        prefix_ms = turn_detection.get("prefix_padding_ms", DEFAULT_PREFIX_PADDING_MS) or 0
        run_byte, run_ms = self._run_start
        self._in_speech = True
        self._quiet_ms = 0.0
        self._speech_end = end
        # [server events]: audio_start_ms counts from the start of all audio written, prefix
        # included.
        audio_start_ms = max(0.0, run_ms - prefix_ms)
        self._utterance_start_byte = max(
            self._commit_byte, run_byte - int(prefix_ms) * fmt.bytes_per_ms
        )
        self._speech_item_id = self._ids.next("item")
        self.speech_started_count += 1
        self._push(
            "input_audio_buffer.speech_started",
            audio_start_ms=round(audio_start_ms),
            item_id=self._speech_item_id,
        )
        if self._active is not None and turn_detection.get("interrupt_response", True):
            self._cancel_active("turn_detected")  # [Realtime guide]: interrupt defaults on

    def _speech_stopped(self, turn_detection: JsonObject, fmt: _AudioFormat) -> None:
        item_id = self._speech_item_id
        end_byte, _ = self._speech_end
        utterance = bytes(self.input_audio[self._utterance_start_byte : end_byte])
        self._reset_speech()
        self._commit_byte = self._vad_byte
        # The real API's audio_end_ms includes the silence that ended the turn.
        self._push(
            "input_audio_buffer.speech_stopped", audio_end_ms=round(self._vad_ms), item_id=item_id
        )
        self.speech_stopped_ms.append(self._loop.time())
        self._last_utterance = (utterance, fmt)
        self._commit_user_item(item_id, len(utterance) / fmt.bytes_per_ms / 1000)
        if (
            self._options.reply
            and turn_detection.get("create_response", True) is not False
            and self._active is None
        ):
            self._start_response()

    def _reset_speech(self) -> None:
        self._in_speech = False
        self._loud_windows = 0
        self._quiet_ms = 0.0

    def _commit_user_item(self, item_id: str, duration_s: float) -> None:
        previous = self._previous_item_id
        self._previous_item_id = item_id
        self._user_items.add(item_id)
        self._push("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self._push("conversation.item.added", previous_item_id=previous, item=item)
        self._push("conversation.item.done", previous_item_id=previous, item=item)
        if _sub(self.config, "audio", "input").get("transcription"):
            self._push(
                "conversation.item.input_audio_transcription.completed",
                item_id=item_id,
                content_index=0,
                transcript=f"(caller speech {duration_s:.2f} s)",
                usage=self._transcription_usage(duration_s),
            )
        self._history_audio_tokens += _audio_tokens(duration_s * 1000, USER_AUDIO_MS_PER_TOKEN)

    # --- responses ----------------------------------------------------------------------------

    def _start_response(self) -> None:
        """Start a response: replay the last utterance, or a 200 ms tone if there is none."""
        fmt = self._output_format()
        if self._last_utterance is not None:
            source, source_fmt = self._last_utterance
            audio = _convert(source, source_fmt, fmt)
            transcript = f"(echo of {len(source) / source_fmt.bytes_per_ms / 1000:.2f} s)"
        else:
            audio = _tone(fmt, TONE_MS)
            transcript = f"(tone {TONE_MS / 1000:.2f} s)"
        response = FakeResponse(self._ids.next("resp"), self._ids.next("item"))
        self.responses.append(response)
        active = _ActiveResponse(response, fmt, transcript)
        self._active = active
        previous = self._previous_item_id
        self._previous_item_id = response.item_id
        self._assistant_sent_ms[response.item_id] = 0.0
        ids = {"response_id": response.response_id, "item_id": response.item_id}
        self._push("response.created", response=self._response_json(active, "in_progress", []))
        self._push(
            "rate_limits.updated",
            rate_limits=[
                {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
                {"name": "tokens", "limit": 40000, "remaining": 39000, "reset_seconds": 1.5},
            ],
        )
        item = self._item_json(active, "in_progress", with_content=False)
        self._push(
            "response.output_item.added",
            response_id=response.response_id,
            output_index=0,
            item=item,
        )
        self._push("conversation.item.added", previous_item_id=previous, item=item)
        self._push(
            "response.content_part.added",
            **ids,
            output_index=0,
            content_index=0,
            part={"type": "audio", "transcript": ""},
        )
        task = asyncio.create_task(self._stream(active, audio))
        active.task = task
        self._stream_tasks.add(task)
        task.add_done_callback(self._stream_done)

    async def _stream(self, active: _ActiveResponse, audio: bytes) -> None:
        """Send the audio as deltas, paced at reply_realtime_factor × real time."""
        fmt = active.audio_format
        chunk_bytes = max(fmt.sample_bytes, self._options.reply_chunk_ms * fmt.bytes_per_ms)
        words = active.transcript.split(" ")
        words = [words[0]] + [" " + w for w in words[1:]]
        started = self._loop.time()
        offset = 0
        while offset < len(audio):
            factor = self._options.reply_realtime_factor
            if factor > 0:
                due = started + offset / fmt.bytes_per_ms / 1000 / factor
                await asyncio.sleep(max(0.0, due - self._loop.time()))  # pacing, not waiting
            else:
                await asyncio.sleep(0)  # let client events in between deltas
            chunk = audio[offset : offset + chunk_bytes]
            offset += len(chunk)
            self._send_delta(active, chunk)
            stall = self._options.stall_after_deltas
            if stall is not None and offset >= stall * chunk_bytes:
                self.stalled = True  # silent from now on; the response stays active
                return
            if words:
                self._send_transcript_delta(active, words.pop(0))
        for word in words:
            self._send_transcript_delta(active, word)
        self._finish(active, "completed")

    def _send_delta(self, active: _ActiveResponse, chunk: bytes) -> None:
        response = active.response
        response.total_bytes += len(chunk)
        self._assistant_sent_ms[response.item_id] = (
            response.total_bytes / active.audio_format.bytes_per_ms
        )
        self._reply_bytes += len(chunk)
        self.reply_log.append((self._loop.time(), self._reply_bytes))
        self._push(
            "response.output_audio.delta",
            response_id=response.response_id,
            item_id=response.item_id,
            output_index=0,
            content_index=0,
            delta=base64.b64encode(chunk).decode("ascii"),
        )
        # Keep the record light: the byte count instead of the base64 payload.
        record = self.server_events[-1]
        del record["delta"]
        record["audio_bytes"] = len(chunk)

    def _send_transcript_delta(self, active: _ActiveResponse, text: str) -> None:
        active.transcript_sent += text
        self._push(
            "response.output_audio_transcript.delta",
            response_id=active.response.response_id,
            item_id=active.response.item_id,
            output_index=0,
            content_index=0,
            delta=text,
        )

    def _cancel_active(self, reason: str) -> None:
        active = self._active
        if active is None:
            return
        if active.task is not None:
            active.task.cancel()  # it is parked in a pacing sleep: nothing more is pushed
        self._finish(active, "cancelled", {"type": "cancelled", "reason": reason})

    def _finish(
        self, active: _ActiveResponse, status: str, details: JsonObject | None = None
    ) -> None:
        """Send the closing events of a response, and response.done with its status."""
        response = active.response
        response.status = status
        self._active = None
        ids = {"response_id": response.response_id, "item_id": response.item_id}
        transcript = active.transcript_sent
        self._push("response.output_audio.done", **ids, output_index=0, content_index=0)
        self._push(
            "response.output_audio_transcript.done",
            **ids,
            output_index=0,
            content_index=0,
            transcript=transcript,
        )
        self._push(
            "response.content_part.done",
            **ids,
            output_index=0,
            content_index=0,
            part={"type": "audio", "transcript": transcript},
        )
        item = self._item_json(active, "completed" if status == "completed" else "incomplete")
        self._push(
            "response.output_item.done",
            response_id=response.response_id,
            output_index=0,
            item=item,
        )
        self._push("conversation.item.done", item=item)
        self._push("response.done", response=self._response_json(active, status, [item], details))
        self._responses_changed.set()
        self._responses_changed = asyncio.Event()
        limit = self._options.close_after_responses
        done = sum(1 for r in self.responses if r.status != "in_progress")
        if limit is not None and done >= limit:
            self._accepting = False
            self._request_close(WSCloseCode.OK, b"")

    def _stop_streaming(self) -> None:
        """Stop any response silently (the socket is closing)."""
        active = self._active
        if active is not None and active.task is not None:
            active.task.cancel()
        self._active = None

    def _stream_done(self, task: asyncio.Task[None]) -> None:
        self._stream_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("fake realtime: response stream failed", exc_info=task.exception())

    def _transcription_usage(self, duration_s: float) -> JsonObject:
        """A ``gpt-4o-*-transcribe`` usage report: the utterance's audio tokens (plus a few
        text tokens of prompt) in, about one text token per 4 characters of transcript out."""
        audio = _audio_tokens(duration_s * 1000, USER_AUDIO_MS_PER_TOKEN)
        text_in = 8
        text_out = max(1, len(f"(caller speech {duration_s:.2f} s)") // 4)
        return {
            "type": "tokens",
            "input_tokens": text_in + audio,
            "output_tokens": text_out,
            "total_tokens": text_in + audio + text_out,
            "input_token_details": {"text_tokens": text_in, "audio_tokens": audio},
        }

    def _response_usage(self, active: _ActiveResponse) -> JsonObject:
        """A Realtime ``response.done`` usage, shaped and scaled like the real one: the
        input is the instructions and tools (text) plus the conversation so far (the caller's
        audio at 1 token per 100 ms, earlier replies' audio at 1 per 50 ms, their transcripts
        as text); the previous response's input is cached (in 64-token steps, the cache's
        grain simplified); the output is this reply's audio and transcript."""
        config_text = len(json.dumps(self.config.get("instructions", ""))) // 4
        config_text += len(json.dumps(self.config.get("tools", []))) // 4
        text_in = config_text + self._history_text_tokens
        audio_in = self._history_audio_tokens
        out_audio = _audio_tokens(
            active.response.total_bytes / active.audio_format.bytes_per_ms,
            REPLY_AUDIO_MS_PER_TOKEN,
        )
        out_text = len(active.transcript_sent) // 4
        prev_text, prev_audio = self._cached_prefix
        cached_text = min(prev_text, text_in)
        cached_audio = min(prev_audio, audio_in)
        cached = (cached_text + cached_audio) // 64 * 64
        cached_audio = max(0, cached - cached_text)
        cached_text = cached - cached_audio
        self._cached_prefix = (text_in, audio_in)
        self._history_text_tokens += out_text
        self._history_audio_tokens += out_audio
        return {
            "total_tokens": text_in + audio_in + out_text + out_audio,
            "input_tokens": text_in + audio_in,
            "output_tokens": out_text + out_audio,
            "input_token_details": {
                "text_tokens": text_in,
                "audio_tokens": audio_in,
                "image_tokens": 0,
                "cached_tokens": cached,
                "cached_tokens_details": {
                    "text_tokens": cached_text,
                    "audio_tokens": cached_audio,
                    "image_tokens": 0,
                },
            },
            "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio},
        }

    def _item_json(
        self, active: _ActiveResponse, status: str, *, with_content: bool = True
    ) -> JsonObject:
        content = [{"type": "output_audio", "transcript": active.transcript_sent}]
        return {
            "id": active.response.item_id,
            "object": "realtime.item",
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": content if with_content else [],
        }

    def _response_json(
        self,
        active: _ActiveResponse,
        status: str,
        output: list[JsonObject],
        details: JsonObject | None = None,
    ) -> JsonObject:
        done = status != "in_progress"
        return {
            "object": "realtime.response",
            "id": active.response.response_id,
            "status": status,
            "status_details": details,
            "output": output,
            "conversation_id": self._conversation_id,
            "output_modalities": ["audio"],
            "max_output_tokens": "inf",
            "audio": {
                "output": {
                    "format": active.audio_format.as_json(),
                    "voice": _sub(self.config, "audio", "output").get("voice"),
                }
            },
            "usage": self._response_usage(active) if done else None,
            "metadata": None,
        }


# --- the server -------------------------------------------------------------------------------


class FakeRealtimeServer(LoopbackServer):
    """A fake OpenAI Realtime endpoint: ``ws://127.0.0.1:PORT/v1/realtime?model=…``.

    Usage::

        async with FakeRealtimeServer(api_key="sk-test") as server:
            client = AsyncOpenAI(api_key="sk-test", base_url=server.base_url)  # or our bridge
            session = await server.wait_for_session()
            await session.wait_for_event("session.update")

    Closing it closes every live socket with 1001 (going away), then stops listening.

    Attributes:
        api_key: the accepted key, as ``Authorization: Bearer`` or an Azure-style ``api-key``.
        options: the knobs; read live.
        sessions: one per accepted WebSocket, in order (a beta-refused socket included).
        handshakes: one per HTTP request: ``path``, ``query`` (dict), ``headers`` (those
            present of ``authorization``, ``api-key``, ``openai-beta``) and ``status`` (101 when
            upgraded; 499 when the client left during ``handshake_delay_s``).
        app: the aiohttp application.
    """

    shutdown_timeout_s = CLOSE_TIMEOUT_S

    def __init__(
        self, *, api_key: str = "sk-sim", options: FakeRealtimeOptions | None = None
    ) -> None:
        self._init_server()
        self.api_key = api_key
        self.options = options if options is not None else FakeRealtimeOptions()
        self.sessions: list[FakeRealtimeSession] = []
        self.handshakes: list[JsonObject] = []
        self.app.router.add_route("*", "/{tail:.*}", self._handle)
        self._ids = _Ids()
        self._new_sessions: asyncio.Queue[FakeRealtimeSession] = asyncio.Queue()
        self._live: set[FakeRealtimeSession] = set()

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Self:
        """Listen on host:port; port 0 lets the OS pick (see ``base_url``).

        Raises:
            RuntimeError: if already started.
        """
        await super().start(host, port)
        logger.info("fake realtime: listening on %s", self.base_url)
        return self

    async def _before_cleanup(self) -> None:
        live = list(self._live)
        if live:
            await asyncio.gather(*(session.close(WSCloseCode.GOING_AWAY) for session in live))

    @property
    def base_url(self) -> str:
        """The OpenAI HTTP base URL, ``http://127.0.0.1:PORT/v1``.

        Raises:
            RuntimeError: the server has not been started.
        """
        return f"{self.origin}/v1"

    def realtime_url(self, model: str = "gpt-realtime") -> str:
        """The WebSocket URL, ``ws://127.0.0.1:PORT/v1/realtime?model=…``."""
        return f"ws{self.base_url.removeprefix('http')}/realtime?model={model}"

    async def wait_for_session(self, timeout: float = 5.0) -> FakeRealtimeSession:
        """The next accepted session not yet returned, waiting if needed.

        Raises:
            TimeoutError: if none is accepted within timeout seconds.
        """
        async with asyncio.timeout(timeout):
            return await self._new_sessions.get()

    # --- handshake ----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        headers = {
            name: request.headers[name]
            for name in ("authorization", "api-key", "openai-beta")
            if name in request.headers
        }
        record: JsonObject = {
            "path": request.path,
            "query": dict(request.query),
            "headers": headers,
            "status": None,
        }
        self.handshakes.append(record)
        options = self.options
        await self._delay(options.handshake_delay_s)  # close() cuts it short
        if self._closing.is_set():
            return self._refuse(record, 503, "service_unavailable", "The server is shutting down.")
        if options.reject_status is not None:
            status = options.reject_status
            code = REJECT_CODES.get(status, "simulated_rejection")
            return self._refuse(record, status, code, f"Simulated rejection (HTTP {status}).")
        if request.method == "GET" and request.path.startswith(MODELS_PATH):
            return self._model(request, record)
        if request.path != REALTIME_PATH:
            return self._refuse(
                record, 404, "unknown_url", f"Invalid URL ({request.method} {request.path})"
            )
        if not self._authorized(request):
            message = (
                "Incorrect API key provided."
                if headers.get("authorization") or headers.get("api-key")
                else "You didn't provide an API key. Use 'Authorization: Bearer YOUR_KEY'."
            )
            return self._refuse(record, 401, "invalid_api_key", message)
        model = request.query.get("model")
        if not model:
            return self._refuse(
                record,
                400,
                "missing_required_parameter",
                "Missing required parameter: 'model'.",
                param="model",
            )
        ws = web.WebSocketResponse(
            timeout=CLOSE_TIMEOUT_S, compress=False, max_msg_size=MAX_MESSAGE_BYTES
        )
        if not ws.can_prepare(request).ok:
            return self._refuse(
                record, 400, "invalid_request", "Expected a WebSocket upgrade request."
            )
        transport = request.transport
        if transport is None or transport.is_closing():
            record["status"] = 499  # the client gave up during handshake_delay_s
            return web.Response(status=499)
        await ws.prepare(request)
        record["status"] = 101
        session = FakeRealtimeSession(
            ws, model=model, handshake=record, options=options, ids=self._ids
        )
        self.sessions.append(session)
        self._live.add(session)
        self._new_sessions.put_nowait(session)
        logger.info("fake realtime: session %s accepted, model %s", session.config["id"], model)
        if self._closing.is_set():
            session._request_close(WSCloseCode.GOING_AWAY, b"")
        try:
            await session._serve(beta="openai-beta" in headers)
        finally:
            self._live.discard(session)
        return ws

    def _model(self, request: web.Request, record: JsonObject) -> web.Response:
        """``GET /v1/models/{model}`` (what ``vonage-bridge doctor`` asks): 401 for a bad key,
        404 ``model_not_found`` for a name without ``realtime`` in it, else the model object
        ``{"id", "object": "model", "created", "owned_by"}`` [openai-openapi] (retrieveModel).
        """
        if not self._authorized(request):
            return self._refuse(record, 401, "invalid_api_key", "Incorrect API key provided.")
        model = request.path.removeprefix(MODELS_PATH)
        if "realtime" not in model or "/" in model:
            message = f"The model '{model}' does not exist or you do not have access to it."
            return self._refuse(record, 404, "model_not_found", message)
        record["status"] = 200
        body = {"id": model, "object": "model", "created": 1756339200, "owned_by": "system"}
        return web.json_response(body)

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip() == self.api_key:
            return True
        return request.headers.get("api-key") == self.api_key

    @staticmethod
    def _refuse(
        record: JsonObject, status: int, code: str, message: str, *, param: str | None = None
    ) -> web.Response:
        record["status"] = status
        body = {
            "error": {
                "type": "invalid_request_error",
                "code": code,
                "message": message,
                "param": param,
            }
        }
        return web.json_response(body, status=status)

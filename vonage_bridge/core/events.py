"""Typed inputs to the call session: parsed caller (telephony) and Realtime server events;
and what it records: :class:`TranscriptEntry`.

Small frozen slotted dataclasses; the wire name each one comes from is in its docstring.
Audio frames from the caller do not become objects (hot path: plain ``bytes``).
Pure: no I/O, no clock (times are passed in).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .usage import TokenUsage

# ---------------------------------------------------------------- caller side (telephony)
# Parsed by ``vonage/wire.py`` (Vonage WebSocket) and ``twilio/wire.py`` (Twilio
# Media Streams). Caller audio never becomes an object here (hot path: plain ``bytes``).


@dataclass(frozen=True, slots=True)
class CallerConnected:
    """``websocket:connected``: first text message; NCCO ``headers`` arrive as top-level keys.

    Attributes:
        content_type: e.g. ``audio/l16;rate=16000``.
        sample_rate_hz: parsed from ``content_type``.
        headers: every other top-level key (untrusted strings from our own NCCO).
    """

    content_type: str
    sample_rate_hz: int
    headers: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CallerDtmf:
    """``websocket:dtmf`` (Vonage) or ``dtmf`` (Twilio): one key press; ``digit`` is 0-9,
    ``*`` or ``#``."""

    digit: str
    duration_ms: int | None = None


@dataclass(frozen=True, slots=True)
class PlaybackMarked:
    """Our playback marker came back: the caller has heard ``ms`` ms of assistant item
    ``item`` (everything sent before the marker has been played).

    Vonage: ``websocket:notify`` echoing the payload of our ``notify``; Twilio: ``mark``
    echoing the name of our ``mark`` (``<ms>:<item>``). Sources:
    https://developer.vonage.com/en/voice/voice-api/concepts/websockets,
    https://www.twilio.com/docs/voice/media-streams/websocket-messages.
    """

    item: str
    ms: int


@dataclass(frozen=True, slots=True)
class PlaybackCleared:
    """``websocket:cleared``: Vonage dropped its playback queue after our ``clear``."""


@dataclass(frozen=True, slots=True)
class StreamConnected:
    """Twilio ``connected``: the first message of a Media Stream (``protocol``, ``version``)."""

    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class StreamStarted:
    """Twilio ``start``: the stream's metadata, before any ``media``.

    Attributes:
        stream_sid: ``MZ...``; every message we send carries it.
        call_sid: ``CA...``; the call for Twilio's REST API.
        account_sid: ``AC...``.
        custom_parameters: the ``<Parameter>`` names and values of our TwiML (untrusted).
        encoding: ``mediaFormat.encoding``, ``audio/x-mulaw``.
        sample_rate_hz: ``mediaFormat.sampleRate``, 8000.
        channels: ``mediaFormat.channels``, 1.
    """

    stream_sid: str
    call_sid: str
    account_sid: str
    custom_parameters: dict[str, str] = field(default_factory=dict)
    encoding: str = "audio/x-mulaw"
    sample_rate_hz: int = 8_000
    channels: int = 1


@dataclass(frozen=True, slots=True)
class StreamStopped:
    """Twilio ``stop``: the stream ended (the call hung up, or our TwiML moved on)."""


@dataclass(frozen=True, slots=True)
class UnknownCallerMessage:
    """A text message with an ``event`` we do not handle (the guides say: skip it)."""

    event: str


CallerEvent = (
    CallerConnected
    | CallerDtmf
    | PlaybackMarked
    | PlaybackCleared
    | StreamConnected
    | StreamStarted
    | StreamStopped
    | UnknownCallerMessage
)

# ---------------------------------------------------------------- Realtime server events


@dataclass(frozen=True, slots=True)
class SessionCreated:
    """``session.created``."""


@dataclass(frozen=True, slots=True)
class SessionUpdated:
    """``session.updated``: the effective session configuration."""

    session: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """``input_audio_buffer.speech_started``; ``audio_start_ms`` counts all audio written."""

    item_id: str
    audio_start_ms: int


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    """``input_audio_buffer.speech_stopped``."""

    item_id: str
    audio_end_ms: int


@dataclass(frozen=True, slots=True)
class ResponseCreated:
    """``response.created``: a response is active from here until ``response.done``."""

    response_id: str


@dataclass(frozen=True, slots=True)
class AudioDelta:
    """``response.output_audio.delta``: ``audio`` is decoded PCM16 at 24 kHz (bytes)."""

    response_id: str
    item_id: str
    audio: bytes


@dataclass(frozen=True, slots=True)
class AudioDone:
    """``response.output_audio.done``: no more audio for this item."""

    response_id: str
    item_id: str


@dataclass(frozen=True, slots=True)
class OutputTranscriptDone:
    """``response.output_audio_transcript.done``: what the assistant said (or began to)."""

    response_id: str
    item_id: str
    transcript: str


@dataclass(frozen=True, slots=True)
class InputTranscriptCompleted:
    """``conversation.item.input_audio_transcription.completed``: what the caller said, and
    the transcription's ``usage`` (None when absent)."""

    item_id: str
    transcript: str
    usage: TokenUsage | None = None


@dataclass(frozen=True, slots=True)
class InputTranscriptFailed:
    """``conversation.item.input_audio_transcription.failed``."""

    item_id: str
    message: str


@dataclass(frozen=True, slots=True)
class FunctionCallDone:
    """A ``function_call`` output item, from ``response.output_item.done`` or the ``output`` of
    ``response.done``; ``arguments`` is the model's JSON text (untrusted, maybe invalid)."""

    call_id: str
    name: str
    arguments: str
    status: str


@dataclass(frozen=True, slots=True)
class ResponseDone:
    """``response.done``; ``status`` is completed, cancelled, failed or incomplete;
    ``function_calls`` are the function call items of its output."""

    response_id: str
    status: str
    function_calls: tuple[FunctionCallDone, ...] = ()
    usage: TokenUsage | None = None
    """The response's token ``usage`` (None when absent)."""


@dataclass(frozen=True, slots=True)
class RealtimeError:
    """``error``: most are recoverable and the session stays open."""

    type: str
    code: str | None
    message: str
    param: str | None = None
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class OtherServerEvent:
    """Any other server event; ``known`` tells documented-but-unused from unknown types."""

    type: str
    known: bool


RealtimeEvent = (
    SessionCreated
    | SessionUpdated
    | SpeechStarted
    | SpeechStopped
    | ResponseCreated
    | AudioDelta
    | AudioDone
    | OutputTranscriptDone
    | InputTranscriptCompleted
    | InputTranscriptFailed
    | ResponseDone
    | FunctionCallDone
    | RealtimeError
    | OtherServerEvent
)


# ---------------------------------------------------------------- session outputs


@dataclass(frozen=True, slots=True)
class RunTool:
    """Session output: run tool ``name`` for ``call_id`` with the model's JSON ``arguments``
    (the shell runs it as a task of the call, see ``tools.py``)."""

    call_id: str
    name: str
    arguments: str


# ---------------------------------------------------------------- what the session records

MIN_EPOCH_S = 1_000_000_000.0
"""Times below this (2001-09-09) are not wall-clock Unix seconds: e.g. ``CallSession.now``
never set (0.0) or a monotonic loop time. They give no timestamp rather than a wrong one."""


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    """One line of a call's transcript, the same on every front door.

    Attributes:
        role: ``caller`` (input transcription), ``assistant``, ``dtmf``, ``tool_call``,
            ``tool_result`` or ``barge_in`` (the caller spoke over a reply: its text says how
            much of it was heard).
        text: the words, the digit, or the tool's name and arguments / its result (tool
            entries are cut to ``session.TOOL_TEXT`` characters).
        at: when it happened (aware UTC), or None when no wall-clock time was known.
    """

    role: str
    text: str
    at: datetime | None = None

    @classmethod
    def stamped(cls, role: str, text: str, now: float) -> TranscriptEntry:
        """An entry at ``now`` (wall-clock Unix seconds, as the shell sets ``CallSession.now``);
        ``at`` is None when ``now`` is below :data:`MIN_EPOCH_S` (never invented)."""
        at = datetime.fromtimestamp(now, UTC) if now >= MIN_EPOCH_S else None
        return cls(role, text, at)

    def to_json(self) -> dict[str, Any]:
        """``{"role", "text", "at"}``; ``at`` as ISO 8601 UTC with microseconds, or null."""
        at = None if self.at is None else self.at.astimezone(UTC).isoformat(timespec="microseconds")
        return {"role": self.role, "text": self.text, "at": at}

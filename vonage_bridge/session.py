"""``CallSession``: the state of one bridged call, without I/O. Inputs in, outputs out.

The shell (``bridge.py``) feeds it caller frames, parsed caller events and parsed Realtime
events, then drains what it produced: client events for the Realtime socket, notes to log,
and audio frames for the caller through :attr:`playout`. It never touches a socket, a clock
or a task, so tests drive it with plain calls.

Call phases (one transition each way)::

    phase        input                         -> next phase
    CONNECTING   caller_connected()            -> CONNECTING (caller format known)
    CONNECTING   realtime_opened()             -> OPENING    (session.update queued)
    OPENING      flush_held() returns []       -> BRIDGING   (caller audio goes straight up)
    any          the shell ends the call       -> (the session is dropped)

Audio that arrives before BRIDGING is resampled and held, then sent in order by
:meth:`flush_held`: the caller's first words matter.

Source: style.md 7.3; protocols.md A3 (caller side), B1-B3 (Realtime side).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from .audio.formats import FRAME_MS, PCM16_24K, AudioFormat
from .audio.playout import Playout
from .audio.resampler import StreamResampler
from .config import CallSettings, OpenAISettings
from .events import (
    AudioDelta,
    AudioDone,
    CallerConnected,
    CallerDtmf,
    CallerEvent,
    InputTranscriptCompleted,
    InputTranscriptFailed,
    OtherServerEvent,
    OutputTranscriptDone,
    PlaybackCleared,
    PlaybackNotified,
    RealtimeError,
    RealtimeEvent,
    ResponseCreated,
    ResponseDone,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    UnknownCallerMessage,
)
from .realtime.instructions import call_instructions, session_update
from .realtime.protocol import client_event, input_audio_append

HOLD_LIMIT_MS = 60_000
"""Caller audio held before the Realtime session is ready, at most (the connect timeout
ends the call long before this in practice)."""
FLUSH_CHUNK_MS = 500
"""Held audio goes up in appends of this size (far below the 15 MiB event limit)."""


class Phase(Enum):
    CONNECTING = "connecting"
    OPENING = "opening"
    BRIDGING = "bridging"


@dataclass(frozen=True, slots=True)
class CallInfo:
    """Who and what the call is, from the answer URL (untrusted, already bounded)."""

    call_uuid: str
    conversation_uuid: str | None = None
    caller: str | None = None
    called: str | None = None


@dataclass(frozen=True, slots=True)
class Note:
    """Something the shell should log: ``level`` is a ``logging`` level name."""

    level: str
    message: str


@dataclass(slots=True)
class CallStats:
    """Counters for the per-call summary line."""

    frames_in: int = 0
    bad_frames: int = 0
    held_ms: float = 0.0
    dropped_held_ms: float = 0.0
    ms_to_realtime: float = 0.0
    deltas: int = 0
    ms_from_realtime: float = 0.0
    responses: int = 0
    speech_started: int = 0
    dtmf: int = 0
    realtime_errors: int = 0
    transcript: list[tuple[str, str]] = field(default_factory=list)


class CallSession:
    """One bridged call's state.

    Args:
        info: the call's identity.
        openai: Realtime settings (model, voice, VAD, transcription).
        call: per-call settings (persona, resampler quality, look-ahead).
        caller_rate_hz: the L16 rate asked for in the NCCO; ``websocket:connected`` may
            confirm or change it before any audio.
    """

    def __init__(
        self,
        info: CallInfo,
        *,
        openai: OpenAISettings,
        call: CallSettings,
        caller_rate_hz: int = 16_000,
    ) -> None:
        self.info = info
        self._openai = openai
        self._call = call
        self.phase = Phase.CONNECTING
        self.stats = CallStats()
        self.active_response: str | None = None
        self._held = bytearray()
        self._rt_out: list[str] = []
        self._notes: list[Note] = []
        self._warned: set[str] = set()
        self._out_pending = False  # deltas resampled since the last drain
        self._configure(caller_rate_hz)

    def _configure(self, rate_hz: int) -> None:
        fmt = AudioFormat("l16", rate_hz)
        self.caller_format = fmt
        self.frame_bytes = fmt.frame_bytes(FRAME_MS)
        q = self._call.resample_quality
        self._up = StreamResampler(rate_hz, PCM16_24K.sample_rate_hz, q)
        self._down = StreamResampler(PCM16_24K.sample_rate_hz, rate_hz, q)
        self.playout = Playout(self.frame_bytes, self._call.playout_lookahead_ms)

    # ------------------------------------------------------------ caller side

    def caller_connected(self, event: CallerConnected) -> None:
        """``websocket:connected`` arrived; adopt its sample rate if no audio came yet."""
        if event.sample_rate_hz != self.caller_format.sample_rate_hz:
            if self.stats.frames_in == 0:
                self._configure(event.sample_rate_hz)
                self._note("info", f"caller audio is {event.content_type}")
            else:
                self._warn_once("rate", f"ignoring late content-type {event.content_type}")

    def caller_frame(self, frame: bytes) -> str | None:
        """One binary message from the caller (hot path).

        Args:
            frame: PCM16 LE mono, normally exactly one 20 ms frame (640 bytes at 16 kHz).
        Returns:
            The ``input_audio_buffer.append`` to send now, or ``None`` when the audio is held
            (Realtime not ready yet) or the frame was unusable.
        """
        n = len(frame)
        if n != self.frame_bytes and not self._check_frame(n):
            return None
        self.stats.frames_in += 1
        up = self._up.process(frame)
        if self.phase is not Phase.BRIDGING:
            self._hold(up)
            return None
        if not up:
            return None
        self.stats.ms_to_realtime += len(up) / 48.0  # 24 kHz PCM16: 48 bytes per ms
        return input_audio_append(up)

    def _check_frame(self, n: int) -> bool:
        if n == 0 or n & 1:
            self.stats.bad_frames += 1
            self._warn_once("odd", f"dropping caller frame of {n} bytes (not 16-bit PCM)")
            return False
        self._warn_once(
            "size", f"caller frame of {n} bytes, expected {self.frame_bytes}; using it anyway"
        )
        return True

    def _hold(self, pcm: bytes) -> None:
        limit = PCM16_24K.ms_to_bytes(HOLD_LIMIT_MS)
        self._held += pcm
        if len(self._held) > limit:
            excess = len(self._held) - limit
            del self._held[:excess]
            self.stats.dropped_held_ms += PCM16_24K.bytes_to_ms(excess)
            self._warn_once("hold", "Realtime not ready for 60 s: dropping the oldest held audio")

    def caller_event(self, event: CallerEvent) -> None:
        """A parsed text message from the caller side (see ``telephony.vonage``)."""
        if isinstance(event, CallerConnected):
            self.caller_connected(event)
        elif isinstance(event, CallerDtmf):
            self.stats.dtmf += 1
            self._note("info", f"DTMF {event.digit}")
        elif isinstance(event, PlaybackNotified | PlaybackCleared):
            pass  # playback acknowledgements: used by barge-in (a later issue)
        elif isinstance(event, UnknownCallerMessage):
            self._warn_once(f"caller:{event.event}", f"ignoring caller event {event.event!r}")

    # ------------------------------------------------------------ Realtime side

    def realtime_opened(self) -> str:
        """The Realtime socket is open: returns the ``session.update`` to send first."""
        self.phase = Phase.OPENING
        instructions = call_instructions(
            self._call.system_message, caller=self.info.caller, called=self.info.called
        )
        return client_event(session_update(self._openai, instructions))

    def flush_held(self) -> list[str]:
        """Appends for the audio held so far, in order; ``[]`` once everything is out.

        The shell calls this until it returns ``[]``; that call switches the session to
        BRIDGING, so no frame can slip between held audio and live audio.
        """
        if not self._held:
            self.phase = Phase.BRIDGING
            return []
        held = bytes(self._held)
        self._held.clear()
        self.stats.held_ms += PCM16_24K.bytes_to_ms(len(held))
        self.stats.ms_to_realtime += PCM16_24K.bytes_to_ms(len(held))
        step = PCM16_24K.ms_to_bytes(FLUSH_CHUNK_MS)
        return [input_audio_append(held[i : i + step]) for i in range(0, len(held), step)]

    def realtime_event(self, event: RealtimeEvent) -> None:
        """One parsed server event."""
        if isinstance(event, AudioDelta):  # the common case first
            self.stats.deltas += 1
            self.stats.ms_from_realtime += PCM16_24K.bytes_to_ms(len(event.audio))
            out = self._down.process(event.audio)
            if out:
                self.playout.push(out)
            self._out_pending = True
        elif isinstance(event, AudioDone):
            self._end_of_audio()
        elif isinstance(event, ResponseCreated):
            self.active_response = event.response_id
            self.stats.responses += 1
        elif isinstance(event, ResponseDone):
            if event.response_id == self.active_response:
                self.active_response = None
            self._end_of_audio()
            if event.status not in ("completed", "cancelled"):
                self._note("warning", f"response {event.response_id} ended {event.status}")
        elif isinstance(event, InputTranscriptCompleted):
            self._transcript("caller", event.transcript)
        elif isinstance(event, OutputTranscriptDone):
            self._transcript("assistant", event.transcript)
        elif isinstance(event, SpeechStarted):
            self.stats.speech_started += 1
        elif isinstance(event, SpeechStopped | SessionUpdated):
            pass
        elif isinstance(event, InputTranscriptFailed):
            self._note("warning", f"caller transcription failed: {event.message}")
        elif isinstance(event, RealtimeError):
            self.stats.realtime_errors += 1
            self._note(
                "warning",
                f"Realtime error {event.type}/{event.code}: {event.message}"
                + (f" (param {event.param})" if event.param else ""),
            )
        elif isinstance(event, OtherServerEvent) and not event.known:
            self._warn_once(f"rt:{event.type}", f"ignoring unknown Realtime event {event.type!r}")

    def _end_of_audio(self) -> None:
        if not self._out_pending:
            return
        self._out_pending = False
        tail = self._down.drain()
        if tail:
            self.playout.push(tail)
        self.playout.end_of_audio()

    def _transcript(self, role: str, text: str) -> None:
        text = text.strip()
        if text:
            self.stats.transcript.append((role, text))
            self._note("info", f"{role}: {text}")

    # ------------------------------------------------------------ outputs

    @property
    def has_output(self) -> bool:
        """Whether client events or notes are waiting to be drained (cheap check)."""
        return bool(self._rt_out or self._notes)

    @property
    def has_notes(self) -> bool:
        """Whether notes are waiting to be drained."""
        return bool(self._notes)

    def drain_realtime(self) -> list[str]:
        """Client events queued for the Realtime socket (control events, not audio)."""
        out, self._rt_out = self._rt_out, []
        return out

    def drain_notes(self) -> list[Note]:
        """Notes for the shell to log, in order."""
        out, self._notes = self._notes, []
        return out

    def _note(self, level: str, message: str) -> None:
        self._notes.append(Note(level, message))

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self._note("warning", message)

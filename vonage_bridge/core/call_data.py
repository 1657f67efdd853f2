"""The plain records around a :class:`~.session.CallSession`. Pure: data only, no I/O.

- :class:`CallInfo`, what the session is told about the call (from the answer webhook);
- :class:`Note` and :class:`NoteLevel`, what it asks the shell to log;
- :class:`CallStats`, what it counts for the call's summary line and record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from .events import TranscriptEntry
from .usage import CallUsage

__all__ = ["CallInfo", "CallStats", "Note", "NoteLevel"]


@dataclass(frozen=True, slots=True)
class CallInfo:
    """Who and what the call is, from the answer URL (untrusted, already bounded).

    ``call_uuid`` is the front door's call id: Vonage call UUID, Twilio call SID."""

    call_uuid: str
    conversation_uuid: str | None = None
    caller: str | None = None
    called: str | None = None


class NoteLevel(StrEnum):
    """How loud a :class:`Note` is: the lower-case name of a ``logging`` level (so
    ``logging.getLevelName(level.upper())`` gives its number)."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Note:
    """Something the shell should log, at ``level``."""

    level: NoteLevel
    message: str


@dataclass(slots=True)
class CallStats:
    """Counters for the per-call summary line."""

    frames_in: int = 0
    bad_frames: int = 0
    bad_caller_messages: int = 0
    """Caller messages dropped (not parseable: also in ``bad_frames``) or ignored (an
    unknown event); only the first of each kind is logged."""
    held_ms: float = 0.0
    dropped_held_ms: float = 0.0
    ms_to_realtime: float = 0.0
    deltas: int = 0
    ms_from_realtime: float = 0.0
    responses: int = 0
    speech_started: int = 0
    dtmf: int = 0
    realtime_errors: int = 0
    barge_ins: int = 0
    dropped_deltas: int = 0
    transcript: list[TranscriptEntry] = field(default_factory=list)
    """Entries in order, stamped with :attr:`.session.CallSession.now`."""
    realtime_error_codes: dict[str | None, int] = field(default_factory=dict)
    """The errors ``realtime_errors`` counts, by their ``error.code`` (None: none given)."""
    transferred: bool = False
    """A tool transferred the call (set by the shell's tool runner): the carrier then ends
    our leg, which looks like the caller hanging up."""
    usage: CallUsage = field(default_factory=CallUsage)
    """Token usage summed from ``response.done`` and input transcription reports."""

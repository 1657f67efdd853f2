"""The end of every call, whatever door it came through: why it ended (:class:`CallEnd`), the
one summary line (:func:`summarize`, :func:`log_summary`) and the one record writer
(:func:`write_call_record`), with the call's figures (:func:`call_figures`). Shell: writes to
the store and the log.
"""

from __future__ import annotations

import asyncio
import logging
import math
import statistics
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSCloseCode

from .config import Settings
from .core.events import TranscriptEntry
from .core.session import CallSession
from .core.usage import CallUsage
from .prices import PriceTable, call_cost_usd
from .recording.recorder import RecordingResult
from .store import CallRecord, CallStore

log = logging.getLogger(__name__)

RECORD_WRITE_TIMEOUT_S = 5.0
"""Bound on writing a call record (a slow database must not hold a handler for long)."""


# ------------------------------------------------------------------ summaries and records


@dataclass(frozen=True, slots=True)
class Pricing:
    """How a call's usage is priced: the table and the models the call used."""

    table: PriceTable
    model: str
    transcription_model: str | None

    @classmethod
    def of(cls, settings: Settings) -> Pricing:
        """The prices (``PRICES_FILE`` or built-in) and models of ``settings``."""
        openai = settings.openai
        return cls(settings.cost.prices, openai.model, openai.transcription_model)

    def cost_usd(self, usage: CallUsage) -> float | None:
        """``prices.call_cost_usd`` of ``usage``: USD, or None for a model without a price."""
        return call_cost_usd(usage, self.table, self.model, self.transcription_model)


@dataclass(slots=True)
class CallEnd:
    """Why a media call ended: which side, the close code we sent the caller, and a reason."""

    reason: str
    caller_code: WSCloseCode = WSCloseCode.OK
    error: bool = False

    @property
    def by_us(self) -> bool:
        """Our side ended the call (we close the caller socket with 1001, 1008 or 1011), not the
        caller hanging up or their socket dropping."""
        return self.caller_code is not WSCloseCode.OK


@dataclass(slots=True)
class CallSummary:
    """What the summary line says; returned for tests and the simulation.

    Durations are seconds, audio amounts ms; the frame counters stay 0 on the SIP sideband
    (its audio never reaches us)."""

    call_uuid: str
    front_door: str
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
    bad_caller_messages: int = 0
    """Caller messages dropped or ignored (unparseable, unknown events): logged once, counted
    here."""
    fast_frames_dropped: int = 0
    """Caller frames dropped for coming faster than real time (``bridge.CALLER_BURST_S``)."""
    caller_close_code: int | None = None
    realtime_close_code: int | None = None
    assistant: str | None = None
    """The assistant that answered (``core.assistant``), and its version (0: the built-in
    default)."""
    assistant_version: int | None = None
    transcript: list[TranscriptEntry] = field(default_factory=list)


def summarize(
    session: CallSession,
    *,
    front_door: str,
    duration_s: float,
    end_reason: str,
    reply_latency_ms: list[float] | None = None,
    fast_frames_dropped: int = 0,
    caller_close_code: int | None = None,
    realtime_close_code: int | None = None,
) -> CallSummary:
    """The summary of a call from its session's counters (any door)."""
    stats = session.stats
    assistant = session.context.assistant
    return CallSummary(
        call_uuid=session.info.call_uuid,
        front_door=front_door,
        duration_s=round(duration_s, 3),
        end_reason=end_reason,
        frames_in=stats.frames_in,
        frames_out=session.playout.frames_out,
        bad_frames=stats.bad_frames,
        underruns=session.playout.underruns,
        responses=stats.responses,
        held_ms=round(stats.held_ms, 1),
        ms_to_realtime=round(stats.ms_to_realtime, 1),
        ms_from_realtime=round(stats.ms_from_realtime, 1),
        reply_latency_ms=[round(x, 1) for x in reply_latency_ms or ()],
        barge_ins=stats.barge_ins,
        dtmf=stats.dtmf,
        bad_caller_messages=stats.bad_caller_messages,
        fast_frames_dropped=fast_frames_dropped,
        caller_close_code=caller_close_code,
        realtime_close_code=realtime_close_code,
        assistant=assistant.name,
        assistant_version=assistant.version,
        transcript=list(stats.transcript),
    )


def log_summary(s: CallSummary) -> None:
    """The one summary line of a call (INFO): ``call summary k=v ... end_reason='...'``, with
    the fields (not the transcript) as ``extra={"summary": {...}}`` for JSON logs."""
    values: dict[str, Any] = {f.name: getattr(s, f.name) for f in fields(s)}
    values.pop("transcript")
    text = " ".join(f"{k}={v}" for k, v in values.items() if k != "end_reason")
    log.info("call summary %s end_reason=%r", text, s.end_reason, extra={"summary": values})


def call_figures(summary: CallSummary) -> dict[str, object]:
    """The figures a call record keeps (``CallRecord.figures``, JSON), from its summary::

        {"replies": int, "reply_latency_median_ms": float | None,
         "reply_latency_p95_ms": float | None, "underruns": int, "barge_ins": int,
         "dtmf": int}

    Reply latency: the caller's end of speech (server VAD) to the first reply frame handed
    to the caller, ms, one value per reply; None when no reply was measured (the SIP
    sideband never sees the audio). p95 is the nearest-rank percentile (the smallest value
    with at least 95 % of the replies at or below it).
    """
    latencies = sorted(summary.reply_latency_ms)
    median = p95 = None
    if latencies:
        median = round(statistics.median(latencies), 1)
        p95 = round(latencies[math.ceil(0.95 * len(latencies)) - 1], 1)
    return {
        "replies": len(latencies),
        "reply_latency_median_ms": median,
        "reply_latency_p95_ms": p95,
        "underruns": summary.underruns,
        "barge_ins": summary.barge_ins,
        "dtmf": summary.dtmf,
    }


async def write_call_record(
    store: CallStore | None,
    session: CallSession,
    *,
    front_door: str,
    direction: str,
    started_at: datetime,
    end_reason: str,
    duration_s: float | None = None,
    pricing: Pricing | None = None,
    recording: RecordingResult | None = None,
    summary: CallSummary | None = None,
) -> None:
    """Write the call's record, off the audio path (both sockets closed); a failure is
    logged (ERROR: the call id and the error's class, nothing of the record), never raised.

    Args:
        store: where records go; None writes nothing.
        session: the call's session: identity and transcript.
        front_door: one of ``store.FRONT_DOORS``.
        direction: ``inbound`` or ``outbound``.
        started_at: when the call started (aware UTC).
        end_reason: as in the summary line.
        duration_s: as in the summary line; None measures it from ``started_at``.
        pricing: prices the session's summed token usage (``cost_usd``); None: no cost.
        recording: what became of the call's recording; None: it was not recorded.
        summary: the call's summary, whose figures (:func:`call_figures`) the record keeps;
            None (the call never ran) keeps none.
    """
    if store is None:
        return
    info = session.info
    ended_at = datetime.now(UTC)
    if duration_s is None:
        duration_s = round((ended_at - started_at).total_seconds(), 3)
    record = CallRecord(
        call_uuid=info.call_uuid,
        conversation_uuid=info.conversation_uuid,
        direction=direction,
        front_door=front_door,
        from_number=info.caller,
        to_number=info.called,
        started_at=started_at,
        ended_at=ended_at,
        duration_s=duration_s,
        end_reason=end_reason,
        transcript=tuple(session.stats.transcript),
        assistant=session.context.assistant.name,
        assistant_version=session.context.assistant.version,
        usage=session.stats.usage.to_json(),
        cost_usd=pricing.cost_usd(session.stats.usage) if pricing is not None else None,
        recording=recording.to_json() if recording is not None else None,
        figures=call_figures(summary) if summary is not None else None,
    )
    await store_record(store, record)


async def store_record(store: CallStore, record: CallRecord) -> bool:
    """Add ``record`` within :data:`RECORD_WRITE_TIMEOUT_S`: True if it was written; a
    failure is logged (ERROR: the call id and the error's class, nothing of the record) and
    gives False, never raised."""
    try:
        async with asyncio.timeout(RECORD_WRITE_TIMEOUT_S):
            return await store.add(record)
    except Exception as exc:
        # The error class only: a database error's text quotes the statement and its
        # parameters, the caller's number among them.
        log.error("call record of %s not written: %s", record.call_uuid, type(exc).__name__)
        return False


def log_notes(session: CallSession) -> None:
    """Log what the session asked to log, in order."""
    for note in session.drain_notes():
        log.log(logging.getLevelName(note.level.upper()), "%s", note.message)

"""What became of an outbound call: the carriers' call statuses mapped onto one list of
outcomes, and the JSON each ``status_url`` callback carries. Pure: no I/O.

Outcomes, in the order a call goes through them::

    ringing -> answered -> (machine) -> completed
            \\-> busy | rejected | unanswered | timeout | failed | cancelled   (never answered)

Vonage event URL ``status`` (``machine`` and ``human`` come from Advanced Machine Detection
and carry ``call_uuid`` instead of ``uuid``; ``human`` is not an outcome, only the record's
``amd``)::

    started -, ringing, answered, machine, human -, completed, busy, rejected, unanswered,
    timeout, failed, cancelled; anything else (disconnected, transfer...) -

Twilio ``CallStatus`` (status callbacks)::

    queued -, initiated -, ringing, in-progress -> answered, completed, busy,
    no-answer -> unanswered, failed, canceled -> cancelled

Twilio's ``AnsweredBy`` (answering machine detection): ``human`` -> human; ``machine_start``,
``machine_end_beep``, ``machine_end_silence``, ``machine_end_other``, ``fax`` -> machine;
``unknown`` -> nothing.

Sources: https://developer.vonage.com/en/voice/voice-api/webhook-reference#event-webhook,
https://www.twilio.com/docs/voice/api/call-resource#statuscallback,
https://www.twilio.com/docs/voice/answering-machine-detection.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = [
    "ANSWERED",
    "COMPLETED",
    "FAILURES",
    "MACHINE",
    "OUTCOMES",
    "RINGING",
    "outcome_payload",
    "twilio_amd",
    "twilio_outcome",
    "vonage_outcome",
]

RINGING = "ringing"
ANSWERED = "answered"
MACHINE = "machine"
COMPLETED = "completed"
HUMAN = "human"
FAILURES = ("busy", "rejected", "unanswered", "timeout", "failed", "cancelled")
"""Outcomes of a call that was never answered; each ends it (no ``completed`` follows)."""
OUTCOMES = (RINGING, ANSWERED, MACHINE, COMPLETED, *FAILURES)

_VONAGE = {s: s for s in (RINGING, ANSWERED, MACHINE, COMPLETED, *FAILURES)}
_TWILIO = {
    "ringing": RINGING,
    "in-progress": ANSWERED,
    "completed": COMPLETED,
    "busy": "busy",
    "no-answer": "unanswered",
    "failed": "failed",
    "canceled": "cancelled",
}
_TWILIO_MACHINE = frozenset(
    {"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"}
)


def vonage_outcome(status: object) -> str | None:
    """The outcome of a Vonage event ``status``; None when it is not one (``started``,
    ``human``, ``disconnected``...)."""
    return _VONAGE.get(status) if isinstance(status, str) else None


def twilio_outcome(call_status: object) -> str | None:
    """The outcome of a Twilio ``CallStatus``; None when it is not one (``queued``,
    ``initiated``)."""
    return _TWILIO.get(call_status) if isinstance(call_status, str) else None


def twilio_amd(answered_by: object) -> str | None:
    """``machine``, ``human`` or None (``unknown``, absent) for Twilio's ``AnsweredBy``."""
    if answered_by == HUMAN:
        return HUMAN
    return MACHINE if answered_by in _TWILIO_MACHINE else None


def outcome_payload(
    call_uuid: str,
    status: str,
    at: datetime,
    metadata: dict[str, object] | None,
    *,
    duration_s: float | None = None,
    end_reason: str | None = None,
    record_url: str | None = None,
) -> dict[str, Any]:
    """The JSON body of one callback: ``{"call_uuid", "status", "at", "metadata"}``, and on
    ``completed`` also ``duration_s``, ``end_reason`` and ``record_url``.

    Args:
        at: when it happened, aware; sent as ISO 8601 UTC with milliseconds
            (``2026-01-02T03:04:05.678+00:00``).
    Raises:
        ValueError: ``status`` is not one of :data:`OUTCOMES`, or ``at`` is naive.
    """
    if status not in OUTCOMES:
        raise ValueError(f"not an outcome: {status!r}")
    if at.tzinfo is None:
        raise ValueError("naive datetime: outcomes need aware UTC times")
    body: dict[str, Any] = {
        "call_uuid": call_uuid,
        "status": status,
        "at": at.astimezone(UTC).isoformat(timespec="milliseconds"),
        "metadata": metadata,
    }
    if status == COMPLETED:
        body["duration_s"] = duration_s
        body["end_reason"] = end_reason
        body["record_url"] = record_url
    return body

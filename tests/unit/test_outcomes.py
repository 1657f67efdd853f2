"""Carrier call statuses mapped to outbound outcomes, and the callback body
(``core.outcomes``). Sources: the Vonage event webhook
(https://developer.vonage.com/en/voice/voice-api/webhook-reference#event-webhook) and Twilio's
status callback (https://www.twilio.com/docs/voice/api/call-resource#statuscallback)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from vonage_bridge.core.outcomes import (
    FAILURES,
    outcome_payload,
    twilio_amd,
    twilio_outcome,
    vonage_outcome,
)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("started", None),
        ("ringing", "ringing"),
        ("answered", "answered"),
        ("machine", "machine"),
        ("human", None),
        ("completed", "completed"),
        ("busy", "busy"),
        ("rejected", "rejected"),
        ("unanswered", "unanswered"),
        ("timeout", "timeout"),
        ("failed", "failed"),
        ("cancelled", "cancelled"),
        ("disconnected", None),
        (None, None),
        (3, None),
    ],
)
def test_vonage_statuses(status: object, outcome: str | None) -> None:
    assert vonage_outcome(status) == outcome


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("queued", None),
        ("initiated", None),
        ("ringing", "ringing"),
        ("in-progress", "answered"),
        ("completed", "completed"),
        ("busy", "busy"),
        ("no-answer", "unanswered"),
        ("failed", "failed"),
        ("canceled", "cancelled"),
    ],
)
def test_twilio_statuses(status: str, outcome: str | None) -> None:
    assert twilio_outcome(status) == outcome


@pytest.mark.parametrize(
    ("answered_by", "amd"),
    [
        ("human", "human"),
        ("machine_start", "machine"),
        ("machine_end_beep", "machine"),
        ("machine_end_silence", "machine"),
        ("machine_end_other", "machine"),
        ("fax", "machine"),
        ("unknown", None),
        (None, None),
    ],
)
def test_twilio_answered_by(answered_by: str | None, amd: str | None) -> None:
    assert twilio_amd(answered_by) == amd


def test_every_failure_is_a_vonage_status_too() -> None:
    assert all(vonage_outcome(f) == f for f in FAILURES)


def test_payload_shapes() -> None:
    at = datetime(2026, 1, 2, 12, 4, 5, 678_900, tzinfo=timezone(timedelta(hours=9)))
    assert outcome_payload("u1", "ringing", at, {"k": 1}) == {
        "call_uuid": "u1",
        "status": "ringing",
        "at": "2026-01-02T03:04:05.678+00:00",
        "metadata": {"k": 1},
    }
    done = outcome_payload(
        "u1",
        "completed",
        at,
        None,
        duration_s=12.5,
        end_reason="caller hung up",
        record_url="https://b.example/calls/u1",
    )
    assert done["duration_s"] == 12.5 and done["end_reason"] == "caller hung up"
    assert done["record_url"] == "https://b.example/calls/u1" and done["metadata"] is None


def test_payload_refuses_non_outcomes_and_naive_times() -> None:
    with pytest.raises(ValueError):
        outcome_payload("u1", "human", datetime.now(UTC), None)
    with pytest.raises(ValueError):
        outcome_payload("u1", "ringing", datetime(2026, 1, 1), None)

"""The detail page's tokens and recording line (``pages.tokens``, ``pages.recording_view``)
and the history page's minimum cost (``pages.parse_min_cost``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from multidict import MultiDict

from vonage_bridge.console.pages import parse_min_cost, recording_view, tokens
from vonage_bridge.errors import InvalidRequest
from vonage_bridge.store import FRONT_DOOR_OPENAI_SIP, CallRecord

AT = datetime(2026, 1, 1, tzinfo=UTC)


def record(**fields: Any) -> CallRecord:
    return CallRecord(
        call_uuid=fields.pop("call_uuid", "c/1"),
        direction="inbound",
        started_at=AT,
        ended_at=AT,
        duration_s=1.0,
        end_reason="caller hung up",
        **fields,
    )


def test_tokens_come_from_the_usage_in_openais_shape() -> None:
    usage = {
        "input_tokens": 300,
        "output_tokens": 120,
        "input_token_details": {"text_tokens": 100, "audio_tokens": 200, "cached_tokens": 64},
        "output_token_details": {"text_tokens": 20, "audio_tokens": 100},
        "transcription": {"input_tokens": 50, "output_tokens": 7},
    }
    assert tokens(record(usage=usage)) == {
        "input": 300,
        "output": 120,
        "input_text": 100,
        "input_audio": 200,
        "input_cached": 64,
        "output_text": 20,
        "output_audio": 100,
        "transcription_input": 50,
        "transcription_output": 7,
    }
    assert tokens(record()) is None
    partial = tokens(record(usage={"input_tokens": 5}))
    assert partial is not None and partial["input"] == 5 and partial["transcription_input"] == 0


def test_a_complete_recording_gets_the_player_on_this_host() -> None:
    rec = {
        "status": "complete",
        "url": "https://bridge.example/calls/c%2F1/recording",
        "seconds": 2.5,
        "bytes": 160_044,
        "rate_hz": 16_000,
        "error": None,
    }
    view = recording_view(record(recording=rec))
    assert view == {
        "url": "/calls/c%2F1/recording",
        "seconds": 2.5,
        "bytes": 160_044,
        "rate_hz": 16_000,
    }


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({}, "Not recorded (RECORD_CALLS is off"),
        ({"front_door": FRONT_DOOR_OPENAI_SIP}, "not available on OpenAI SIP"),
        (
            {
                "front_door": FRONT_DOOR_OPENAI_SIP,
                "recording": {"status": "unavailable", "url": None, "error": "no audio"},
            },
            "not available on OpenAI SIP",
        ),
        (
            {"recording": {"status": "failed", "url": None, "error": "disk full"}},
            "The recording failed: disk full.",
        ),
    ],
)
def test_without_a_complete_recording_the_page_says_why(
    fields: dict[str, Any], reason: str
) -> None:
    view = recording_view(record(**fields))
    assert view["url"] is None
    assert reason in view["reason"]


def test_min_cost_is_a_number_of_usd_at_least_zero() -> None:
    assert parse_min_cost(MultiDict()) is None
    assert parse_min_cost(MultiDict({"min_cost": " "})) is None
    assert parse_min_cost(MultiDict({"min_cost": "0.05"})) == 0.05
    for bad in ("-1", "nan", "inf", "cheap"):
        with pytest.raises(InvalidRequest, match="min_cost"):
            parse_min_cost(MultiDict({"min_cost": bad}))

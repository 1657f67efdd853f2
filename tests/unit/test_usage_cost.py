"""Token usage summed per call from the Realtime API's reports, and priced exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vonage_bridge.config import Settings
from vonage_bridge.core.session import CallSession
from vonage_bridge.core.usage import CallUsage, TokenUsage, parse_usage
from vonage_bridge.errors import ConfigError
from vonage_bridge.prices import DEFAULT_TABLE, call_cost_usd, unpriced_models
from vonage_bridge.realtime.protocol import parse_server_event

RESPONSE_USAGE = {
    "total_tokens": 1903,
    "input_tokens": 1403,
    "output_tokens": 500,
    "input_token_details": {
        "text_tokens": 1200,
        "audio_tokens": 203,
        "image_tokens": 0,
        "cached_tokens": 1088,
        "cached_tokens_details": {"text_tokens": 1024, "audio_tokens": 64, "image_tokens": 0},
    },
    "output_token_details": {"text_tokens": 100, "audio_tokens": 400},
}
TRANSCRIPTION_USAGE = {
    "type": "tokens",
    "input_tokens": 40,
    "output_tokens": 9,
    "total_tokens": 49,
    "input_token_details": {"text_tokens": 8, "audio_tokens": 32},
}


def response_done(n: int, usage: Any = RESPONSE_USAGE) -> str:
    response = {"id": f"resp_{n}", "status": "completed", "output": [], "usage": usage}
    return json.dumps({"type": "response.done", "response": response})


def transcribed(n: int, usage: Any = TRANSCRIPTION_USAGE) -> str:
    return json.dumps(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": f"item_{n}",
            "content_index": 0,
            "transcript": "hello",
            "usage": usage,
        }
    )


def test_session_sums_response_and_transcription_usage_in_openais_shape(
    session: CallSession,
) -> None:
    for n in range(3):
        session.realtime_event(parse_server_event(response_done(n)))
        session.realtime_event(parse_server_event(transcribed(n)))
    session.realtime_event(parse_server_event(response_done(9, usage=None)))  # none: nothing
    usage = session.stats.usage
    assert usage.reports == 6
    assert usage.to_json() == {
        "input_tokens": 3 * 1403,
        "output_tokens": 3 * 500,
        "total_tokens": 3 * 1903,
        "input_token_details": {
            "text_tokens": 3600,
            "audio_tokens": 609,
            "cached_tokens": 3264,
            "cached_tokens_details": {"text_tokens": 3072, "audio_tokens": 192},
        },
        "output_token_details": {"text_tokens": 300, "audio_tokens": 1200},
        "transcription": {
            "input_tokens": 120,
            "output_tokens": 27,
            "input_token_details": {"text_tokens": 24, "audio_tokens": 96},
            "seconds": 0.0,
        },
    }


@pytest.mark.parametrize(
    "bad",
    [None, "x", [], {"input_tokens": "12", "output_tokens": -3}, {"input_tokens": True}],
)
def test_malformed_usage_counts_as_zero(bad: Any) -> None:
    parsed = parse_usage(bad)
    assert parsed is None or parsed == TokenUsage()


def test_cost_is_exact_at_the_published_prices() -> None:
    usage = CallUsage()
    usage.add_response(parse_usage(RESPONSE_USAGE))
    usage.add_transcription(parse_usage(TRANSCRIPTION_USAGE))
    # gpt-realtime per 1M: text in 4.00 (176 uncached), cached text 0.40 (1024), audio in 32.00
    # (139 uncached), cached audio 0.40 (64), text out 16.00 (100), audio out 64.00 (400);
    # gpt-4o-mini-transcribe: text in 1.25 (8), audio in 3.00 (32), out 5.00 (9)
    # = 704 + 409.6 + 4448 + 25.6 + 1600 + 25600 + 10 + 96 + 45 = 32938.2 micro-USD
    assert call_cost_usd(usage, DEFAULT_TABLE, "gpt-realtime", "gpt-4o-mini-transcribe") == (
        0.032938
    )
    # the mini model and a dated snapshot name
    mini = call_cost_usd(usage, DEFAULT_TABLE, "gpt-realtime-mini-2025-10-06", None)
    assert mini is None  # it transcribed, but no transcription model is known
    usage.transcription = TokenUsage()
    mini = call_cost_usd(usage, DEFAULT_TABLE, "gpt-realtime-mini-2025-10-06", None)
    expected = 176 * 0.60 + 1024 * 0.06 + 139 * 10.00 + 64 * 0.30 + 100 * 2.40 + 400 * 20.00
    assert mini == round(expected / 1e6, 6) == 0.009816


def test_cached_tokens_without_details_count_against_text_first() -> None:
    usage = CallUsage()
    report = {**RESPONSE_USAGE, "input_token_details": {"text_tokens": 100, "audio_tokens": 50}}
    report["input_token_details"]["cached_tokens"] = 120  # 100 text + 20 audio
    usage.add_response(parse_usage(report))
    cost = call_cost_usd(usage, DEFAULT_TABLE, "gpt-realtime", None)
    expected = 100 * 0.40 + 20 * 0.40 + 30 * 32.00 + 100 * 16.00 + 400 * 64.00
    assert cost == round(expected / 1e6, 6)


def test_unknown_model_has_usage_but_no_cost() -> None:
    usage = CallUsage()
    usage.add_response(parse_usage(RESPONSE_USAGE))
    assert call_cost_usd(usage, DEFAULT_TABLE, "gpt-5-voice", None) is None
    assert unpriced_models(DEFAULT_TABLE, "gpt-5-voice", "whisper-1") == [
        "gpt-5-voice",
        "whisper-1",
    ]
    assert unpriced_models(DEFAULT_TABLE, "gpt-realtime", "gpt-4o-mini-transcribe") == []


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("prices.json", '{"models": {"gpt-5-voice": {"text_input": 1, "audio_output": 2.5}}}'),
        ("prices.toml", '[models."gpt-5-voice"]\ntext_input = 1\naudio_output = 2.5\n'),
    ],
)
def test_prices_file_adds_models_over_the_defaults(
    base_env: dict[str, str], tmp_path: Path, name: str, text: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    table = Settings.from_env({**base_env, "PRICES_FILE": str(path)}).cost.prices
    voice = table.get("gpt-5-voice")
    assert voice is not None
    assert (voice.text_input, voice.audio_output, voice.text_output) == (1.0, 2.5, 0.0)
    assert table.get("gpt-realtime") == DEFAULT_TABLE.get("gpt-realtime")
    assert str(path) in table.source


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("p.json", "{", "not valid JSON"),
        ("p.toml", "models = 3", '"models" table'),
        ("p.toml", "[models.m]\ntext_inptu = 1\n", "models.m.text_inptu: unknown price"),
        ("p.json", '{"models": {"m": {"text_input": -1}}}', "models.m.text_input: must be"),
    ],
)
def test_a_bad_prices_file_is_a_config_error_naming_the_variable(
    base_env: dict[str, str], tmp_path: Path, name: str, text: str, reason: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        Settings.from_env({**base_env, "PRICES_FILE": str(path)})
    assert "PRICES_FILE" in str(err.value) and reason in str(err.value)


def test_recording_settings_default_and_validate(base_env: dict[str, str]) -> None:
    rec = Settings.from_env(base_env).recording
    assert (rec.record_calls, rec.recordings_dir, rec.retention_days) == (
        False,
        Path("recordings"),
        30,
    )
    env = {**base_env, "RECORD_CALLS": "maybe", "RECORDING_RETENTION_DAYS": "-1"}
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env)
    assert "RECORD_CALLS" in str(err.value) and "RECORDING_RETENTION_DAYS" in str(err.value)

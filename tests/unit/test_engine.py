"""The call engine's plain helpers: close reasons, the Realtime upgrade request (media call
and SIP sideband), and the one summary line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from vonage_bridge.calls import MAX_CLOSE_REASON_BYTES, close_reason, known_call
from vonage_bridge.config import OpenAISettings, Settings
from vonage_bridge.core.events import TranscriptEntry
from vonage_bridge.realtime.connection import realtime_request
from vonage_bridge.records import CallSummary, log_summary


def openai_settings(tmp_path: Path, **env: str) -> OpenAISettings:
    return Settings.from_env(
        {
            "SERVER_URL": "http://127.0.0.1:3000",
            "OPENAI_API_KEY": "sk-test",
            "SYSTEM_MESSAGE_PATH": str(tmp_path / "none.txt"),
            "ALLOW_UNSIGNED_WEBHOOKS": "true",
            **env,
        }
    ).openai


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call ended", b"call ended"),
        ("a" * 123, b"a" * 123),
        ("a" * 200, b"a" * 123),
        # 122 ASCII bytes then a 2-byte letter: byte 123 is its first half, so it goes whole.
        ("a" * 122 + "é" + "b", b"a" * 122),
        # 3-byte characters: 41 of them fill 123 bytes exactly, the 42nd is dropped whole.
        ("€" * 50, ("€" * 41).encode()),
        # a 4-byte emoji straddling the limit
        ("a" * 121 + "\N{TELEPHONE RECEIVER}" * 2, b"a" * 121),
    ],
)
def test_close_reason_is_cut_to_123_bytes_at_a_character_boundary(
    text: str, expected: bytes
) -> None:
    reason = close_reason(text)
    assert reason == expected
    assert len(reason) <= MAX_CLOSE_REASON_BYTES
    reason.decode("utf-8")  # valid UTF-8 (RFC 6455 5.5.1), never a split character


def test_a_made_up_call_id_is_not_known() -> None:
    assert known_call("CA" + "1" * 32)
    assert not known_call("unknown-4a0c")


def test_media_call_request_names_the_model(tmp_path: Path) -> None:
    url, params, headers = realtime_request(openai_settings(tmp_path))
    assert url.startswith("ws") and url.endswith("/realtime")
    assert params == {"model": "gpt-realtime"}
    assert headers == {"Authorization": "Bearer sk-test"}


def test_sideband_request_names_the_call_not_a_model(tmp_path: Path) -> None:
    _, params, headers = realtime_request(openai_settings(tmp_path), "rtc_123")
    assert params == {"call_id": "rtc_123"}
    assert headers == {"Authorization": "Bearer sk-test"}


@pytest.mark.parametrize("call_id", [None, "rtc_123"])
def test_api_version_applies_to_media_calls_and_the_sideband(
    tmp_path: Path, call_id: str | None
) -> None:
    openai = openai_settings(tmp_path, OPENAI_API_VERSION="2025-04-01-preview")
    _, params, headers = realtime_request(openai, call_id)
    assert params["api-version"] == "2025-04-01-preview"
    assert ("call_id" in params) is (call_id is not None)
    assert headers == {"api-key": "sk-test"}


def test_summary_line_is_one_info_line_with_the_door_and_without_the_transcript(
    caplog: pytest.LogCaptureFixture,
) -> None:
    summary = CallSummary(
        call_uuid="rtc_1",
        front_door="openai-sip",
        duration_s=1.5,
        end_reason="openai-sip: end_call tool",
        frames_in=0,
        frames_out=0,
        bad_frames=0,
        underruns=0,
        responses=2,
        held_ms=0.0,
        ms_to_realtime=0.0,
        ms_from_realtime=0.0,
        transcript=[TranscriptEntry("caller", "a secret said on the phone")],
    )
    with caplog.at_level(logging.INFO, logger="vonage_bridge.records"):
        log_summary(summary)
    (record,) = caplog.records
    message = record.getMessage()
    assert message.startswith("call summary call_uuid=rtc_1 front_door=openai-sip ")
    assert message.endswith("end_reason='openai-sip: end_call tool'")
    assert "secret" not in message
    fields = record.summary  # type: ignore[attr-defined]
    assert fields["responses"] == 2 and "transcript" not in fields

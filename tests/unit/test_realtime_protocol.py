"""OpenAI Realtime GA wire format: appends, server events, session.update.

Source: https://platform.openai.com/docs/api-reference/realtime-client-events and
https://platform.openai.com/docs/api-reference/realtime-server-events."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from vonage_bridge.config import Settings
from vonage_bridge.core.assistant import (
    Assistant,
    CallContext,
    call_instructions_for,
    default_assistant,
    session_update,
)
from vonage_bridge.core.events import (
    AudioDelta,
    AudioDone,
    InputTranscriptCompleted,
    InputTranscriptFailed,
    OtherServerEvent,
    OutputTranscriptDone,
    RealtimeError,
    RealtimeEvent,
    ResponseCreated,
    ResponseDone,
    SessionCreated,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
)
from vonage_bridge.core.usage import TokenUsage
from vonage_bridge.errors import RemoteProtocolError
from vonage_bridge.realtime.instructions import PCM_24K
from vonage_bridge.realtime.protocol import (
    client_event,
    input_audio_append,
    parse_server_event,
)

PCM = bytes(range(256)) * 5  # 1280 bytes, every byte value
PCM_B64 = base64.b64encode(PCM).decode()


def assistant_of(tmp_path: Path, **env: str) -> Assistant:
    """The default assistant (built from the settings) of ``env``."""
    base = {
        "SERVER_URL": "abc.ngrok.app",
        "OPENAI_API_KEY": "sk-test",
        "SYSTEM_MESSAGE_PATH": str(tmp_path / "none.txt"),
        "ALLOW_UNSIGNED_WEBHOOKS": "true",
    }
    settings = Settings.from_env({**base, **env})
    return default_assistant(settings.openai, settings.call)


def call_instructions(system_message: str, *, caller: str | None, called: str | None) -> str:
    """The instructions of a call whose assistant has ``system_message`` and nothing more."""
    ctx = CallContext(Assistant(name="a").model_copy(update={"instructions": system_message}))
    return call_instructions_for(ctx, caller=caller, called=called)


# ---------------------------------------------------------------- client events


@pytest.mark.parametrize("pcm", [b"", b"\x00\x01", PCM, bytes(640) + b"\xff\x7f" * 100])
def test_input_audio_append_is_json_whose_audio_decodes_to_input(pcm: bytes) -> None:
    doc = json.loads(input_audio_append(pcm))
    assert doc["type"] == "input_audio_buffer.append"
    assert set(doc) == {"type", "audio"}
    assert base64.b64decode(doc["audio"], validate=True) == pcm


def test_client_event_is_compact_json_keeping_unicode() -> None:
    text = client_event({"type": "response.cancel", "note": "café"})
    assert text == '{"type":"response.cancel","note":"café"}'


# ---------------------------------------------------------------- server events

SESSION = {
    "type": "realtime",
    "object": "realtime.session",
    "id": "sess_001",
    "model": "gpt-realtime",
    "output_modalities": ["audio"],
    "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}}},
}

HANDLED: list[tuple[dict[str, Any], RealtimeEvent]] = [
    (
        {"type": "session.created", "event_id": "event_1", "session": SESSION},
        SessionCreated(),
    ),
    (
        {"type": "session.updated", "event_id": "event_2", "session": SESSION},
        SessionUpdated(SESSION),
    ),
    (
        {
            "type": "input_audio_buffer.speech_started",
            "event_id": "event_3",
            "audio_start_ms": 1000,
            "item_id": "item_001",
        },
        SpeechStarted("item_001", 1000),
    ),
    (
        {
            "type": "input_audio_buffer.speech_stopped",
            "event_id": "event_4",
            "audio_end_ms": 2350,
            "item_id": "item_001",
        },
        SpeechStopped("item_001", 2350),
    ),
    (
        {
            "type": "response.created",
            "event_id": "event_5",
            "response": {
                "object": "realtime.response",
                "id": "resp_001",
                "status": "in_progress",
                "output": [],
            },
        },
        ResponseCreated("resp_001"),
    ),
    (
        {
            "type": "response.output_audio.delta",
            "event_id": "event_6",
            "response_id": "resp_001",
            "item_id": "item_002",
            "output_index": 0,
            "content_index": 0,
            "delta": PCM_B64,
        },
        AudioDelta("resp_001", "item_002", PCM),
    ),
    (
        {
            "type": "response.output_audio.done",
            "event_id": "event_7",
            "response_id": "resp_001",
            "item_id": "item_002",
            "output_index": 0,
            "content_index": 0,
        },
        AudioDone("resp_001", "item_002"),
    ),
    (
        {
            "type": "response.output_audio_transcript.done",
            "event_id": "event_8",
            "response_id": "resp_001",
            "item_id": "item_002",
            "output_index": 0,
            "content_index": 0,
            "transcript": "Hello, how can I help?",
        },
        OutputTranscriptDone("resp_001", "item_002", "Hello, how can I help?"),
    ),
    (
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "event_id": "event_9",
            "item_id": "item_001",
            "content_index": 0,
            "transcript": "I'd like to book a table.",
            "usage": {"type": "duration", "seconds": 2},
        },
        InputTranscriptCompleted("item_001", "I'd like to book a table.", TokenUsage(seconds=2.0)),
    ),
    (
        {
            "type": "conversation.item.input_audio_transcription.failed",
            "event_id": "event_10",
            "item_id": "item_001",
            "content_index": 0,
            "error": {
                "type": "transcription_error",
                "code": "audio_unintelligible",
                "message": "The audio could not be transcribed.",
                "param": None,
            },
        },
        InputTranscriptFailed("item_001", "The audio could not be transcribed."),
    ),
    (
        {
            "type": "response.done",
            "event_id": "event_11",
            "response": {
                "object": "realtime.response",
                "id": "resp_001",
                "status": "cancelled",
                "status_details": {"type": "cancelled", "reason": "turn_detected"},
                "output": [],
                "usage": {"total_tokens": 10},
            },
        },
        ResponseDone("resp_001", "cancelled", usage=TokenUsage()),
    ),
    (
        {
            "type": "error",
            "event_id": "event_12",
            "error": {
                "type": "invalid_request_error",
                "code": "invalid_value",
                "message": "Invalid value: 'audio/pcmu'.",
                "param": "session.audio.input.format.type",
                "event_id": "client_evt_3",
            },
        },
        RealtimeError(
            type="invalid_request_error",
            code="invalid_value",
            message="Invalid value: 'audio/pcmu'.",
            param="session.audio.input.format.type",
            event_id="client_evt_3",
        ),
    ),
    (
        {
            "type": "error",
            "event_id": "event_13",
            "error": {"type": "server_error", "code": None, "message": "boom", "param": None},
        },
        RealtimeError(type="server_error", code=None, message="boom"),
    ),
]


@pytest.mark.parametrize(("doc", "expected"), HANDLED, ids=[d["type"] for d, _ in HANDLED])
def test_parse_server_event_handles_ga_event(doc: dict[str, Any], expected: RealtimeEvent) -> None:
    assert parse_server_event(json.dumps(doc)) == expected


def test_parse_server_event_accepts_bytes() -> None:
    raw = json.dumps({"type": "response.output_audio.delta", "delta": PCM_B64}).encode()
    event = parse_server_event(raw)
    assert isinstance(event, AudioDelta)
    assert event.audio == PCM


@pytest.mark.parametrize("status", [None, 3])
def test_parse_server_event_response_done_without_status_is_unknown(status: Any) -> None:
    doc = {"type": "response.done", "response": {"id": "resp_9", "status": status}}
    assert parse_server_event(json.dumps(doc)) == ResponseDone("resp_9", "unknown")


@pytest.mark.parametrize(
    "kind",
    [
        "rate_limits.updated",
        "conversation.item.added",
        "conversation.item.done",
        "input_audio_buffer.committed",
        "response.output_item.added",
        "response.content_part.done",
        "response.output_audio_transcript.delta",
        "conversation.item.truncated",
        "output_audio_buffer.cleared",
    ],
)
def test_parse_server_event_known_unhandled_type_is_other_known(kind: str) -> None:
    assert parse_server_event(json.dumps({"type": kind, "event_id": "e"})) == OtherServerEvent(
        kind, True
    )


@pytest.mark.parametrize(
    "kind", ["response.audio.delta", "response.audio_transcript.done", "brand.new.event"]
)
def test_parse_server_event_unknown_type_is_other_unknown(kind: str) -> None:
    """Beta names (``response.audio.delta``) are unknown to the GA bridge."""
    assert parse_server_event(json.dumps({"type": kind})) == OtherServerEvent(kind, False)


@pytest.mark.parametrize(
    "doc",
    [
        {"type": "response.output_audio.delta", "response_id": "r", "delta": "!!not base64!!"},
        {"type": "response.output_audio.delta", "response_id": "r", "delta": "AAA"},
        {"type": "response.output_audio.delta", "response_id": "r"},
        {"type": "response.output_audio.delta", "response_id": "r", "delta": 123},
        {"type": "response.output_audio.delta", "response_id": "r", "delta": None},
    ],
)
def test_parse_server_event_bad_audio_delta_raises(doc: dict[str, Any]) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_server_event(json.dumps(doc))


@pytest.mark.parametrize(
    "raw",
    ["not json", "", '["session.created"]', '{"event_id":"e"}', '{"type":3}', '{"type":null}'],
)
def test_parse_server_event_without_json_object_type_raises(raw: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_server_event(raw)


# ---------------------------------------------------------------- session.update


def test_session_update_has_ga_shape(tmp_path: Path) -> None:
    a = assistant_of(tmp_path, VAD_THRESHOLD="0.7", VAD_SILENCE_MS="800", OPENAI_VOICE="cedar")
    doc = json.loads(client_event(session_update(a, "Be brief.", audio_format=PCM_24K)))
    assert doc["type"] == "session.update"
    session = doc["session"]
    assert session["type"] == "realtime"
    assert session["model"] == "gpt-realtime"
    assert session["instructions"] == "Be brief."
    assert session["output_modalities"] == ["audio"]
    audio_in = session["audio"]["input"]
    audio_out = session["audio"]["output"]
    assert audio_in["format"] == {"type": "audio/pcm", "rate": 24000}
    assert audio_out["format"] == {"type": "audio/pcm", "rate": 24000}
    assert audio_out["voice"] == "cedar"
    vad = audio_in["turn_detection"]
    assert vad["type"] == "server_vad"
    assert vad["threshold"] == 0.7
    assert vad["silence_duration_ms"] == 800
    assert audio_in["transcription"] == {"model": "gpt-4o-mini-transcribe"}


@pytest.mark.parametrize(
    "beta_key",
    [
        "modalities",
        "input_audio_format",
        "output_audio_format",
        "voice",
        "turn_detection",
        "input_audio_transcription",
    ],
)
def test_session_update_has_no_beta_keys(tmp_path: Path, beta_key: str) -> None:
    session = session_update(assistant_of(tmp_path), "x", audio_format=PCM_24K)["session"]
    assert beta_key not in session


def test_session_update_without_transcription_model_omits_transcription(tmp_path: Path) -> None:
    a = assistant_of(tmp_path, OPENAI_TRANSCRIPTION_MODEL="none")
    assert a.transcription is None
    audio_in = session_update(a, "x", audio_format=PCM_24K)["session"]["audio"]["input"]
    assert "transcription" not in audio_in
    assert audio_in["turn_detection"]["type"] == "server_vad"


def test_session_update_transcription_language_is_passed(tmp_path: Path) -> None:
    a = assistant_of(tmp_path, OPENAI_TRANSCRIPTION_LANGUAGE="de")
    audio_in = session_update(a, "x", audio_format=PCM_24K)["session"]["audio"]["input"]
    assert audio_in["transcription"] == {"model": "gpt-4o-mini-transcribe", "language": "de"}


def test_call_instructions_include_caller_and_called_numbers() -> None:
    text = call_instructions("  Be kind.  ", caller="447700900000", called="447700900001")
    assert text.startswith("Be kind.")
    assert "447700900000" in text
    assert "447700900001" in text


def test_call_instructions_without_numbers_is_the_system_message() -> None:
    assert call_instructions("Be kind.\n", caller=None, called=None) == "Be kind."

"""The assistant model, its instructions and its Realtime session (``core.assistant``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from vonage_bridge.audio.formats import PCM16_24K, PCMU_8K, realtime_format_json
from vonage_bridge.config import Settings
from vonage_bridge.core.assistant import (
    Assistant,
    CallContext,
    call_instructions_for,
    default_assistant,
    field_problems,
    parse_assistants,
    session_config,
    session_update,
)
from vonage_bridge.core.call_data import CallInfo
from vonage_bridge.core.session import CallSession
from vonage_bridge.errors import ConfigError
from vonage_bridge.realtime.prewarm import session_update_for
from vonage_bridge.tools import build_registry
from vonage_bridge.vonage.routes import vonage_door

TOOLS = build_registry(
    transfer_number="+447700900999", rest_configured=True, tools_module=None
).declarations()


def problems(body: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        Assistant.model_validate(body)
    return dict(field_problems(caught.value))


# ------------------------------------------------------------------ the default: no change

INSTRUCTIONS_OF_BEFORE = (
    "You are a friendly, concise voice assistant speaking with a caller on the telephone. "
    "Keep answers short and natural, one or two sentences, and ask a question when you need "
    "more information.\n\n"
    "The caller's phone number is +447700900000 (national form 07700900000).\n\n"
    "The number they called is 447700900001."
)
"""What the pre-assistants ``call_instructions`` gave for the default persona and these numbers."""


def vad_of_before(threshold: float, silence_ms: int) -> dict[str, Any]:
    return {
        "type": "server_vad",
        "threshold": threshold,
        "prefix_padding_ms": 300,
        "silence_duration_ms": silence_ms,
        "create_response": True,
        "interrupt_response": True,
    }


# The session.update the pre-assistants code sent, written out (captured from it once, with
# the tool declarations passed through as given): (env, model, voice, turn detection,
# transcription or None).
BEFORE = [
    ({}, "gpt-realtime", "marin", vad_of_before(0.5, 500), {"model": "gpt-4o-mini-transcribe"}),
    (
        {"OPENAI_VOICE": "ash", "VAD_THRESHOLD": "0.7", "VAD_SILENCE_MS": "800"},
        "gpt-realtime",
        "ash",
        vad_of_before(0.7, 800),
        {"model": "gpt-4o-mini-transcribe"},
    ),
    (
        {"OPENAI_TRANSCRIPTION_MODEL": "none", "OPENAI_MODEL": "gpt-realtime-mini"},
        "gpt-realtime-mini",
        "marin",
        vad_of_before(0.5, 500),
        None,
    ),
    (
        {"OPENAI_TRANSCRIPTION_LANGUAGE": "ja"},
        "gpt-realtime",
        "marin",
        vad_of_before(0.5, 500),
        {"model": "gpt-4o-mini-transcribe", "language": "ja"},
    ),
]


@pytest.mark.parametrize(
    ("fmt", "fmt_json"),
    [(PCM16_24K, {"type": "audio/pcm", "rate": 24000}), (PCMU_8K, {"type": "audio/pcmu"})],
)
@pytest.mark.parametrize(("env", "model", "voice", "vad", "transcription"), BEFORE)
def test_the_default_assistant_gives_the_session_update_of_before(
    base_env: dict[str, str],
    env: dict[str, str],
    model: str,
    voice: str,
    vad: dict[str, Any],
    transcription: dict[str, Any] | None,
    fmt: Any,
    fmt_json: dict[str, Any],
) -> None:
    settings = Settings.from_env({**base_env, **env})
    ctx = CallContext(default_assistant(settings.openai, settings.call))
    text = call_instructions_for(ctx, caller="447700900000", called="447700900001")
    assert text == INSTRUCTIONS_OF_BEFORE
    audio_in: dict[str, Any] = {"turn_detection": vad, "format": fmt_json}
    if transcription is not None:
        audio_in["transcription"] = transcription
    expected = {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "model": model,
            "instructions": INSTRUCTIONS_OF_BEFORE,
            "audio": {"input": audio_in, "output": {"voice": voice, "format": fmt_json}},
            "tools": TOOLS,
            "tool_choice": "auto",
            "output_modalities": ["audio"],
        },
    }
    update = session_update(ctx.assistant, text, TOOLS, audio_format=realtime_format_json(fmt))
    assert update == expected
    # the same key order as before (the JSON on the wire is byte for byte the same)
    assert json.dumps(update) == json.dumps(expected)
    # SIP: no format, no output_modalities
    del audio_in["format"]
    config = {
        "type": "realtime",
        "model": model,
        "instructions": INSTRUCTIONS_OF_BEFORE,
        "audio": {"input": audio_in, "output": {"voice": voice}},
        "tools": TOOLS,
        "tool_choice": "auto",
    }
    assert session_config(ctx.assistant, text, TOOLS) == config
    assert json.dumps(session_config(ctx.assistant, text, TOOLS)) == json.dumps(config)


def test_the_default_takes_greeting_persona_and_limits_from_the_settings(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    persona = tmp_path / "persona.txt"
    persona.write_text("You are Ann. {FAQ_KB}", encoding="utf-8")
    kb = tmp_path / "kb.json"
    kb.write_text(json.dumps([{"q": "Hours?", "a": "9-5"}]), encoding="utf-8")
    env = {"SYSTEM_MESSAGE_PATH": str(persona), "FAQ_KB_PATH": str(kb), "GREETING_TEXT": ""}
    settings = Settings.from_env({**base_env, **env})
    a = default_assistant(settings.openai, settings.call, max_call_s=90, inactivity_timeout_s=0)
    assert (a.name, a.version, a.tools) == ("default", 0, None)
    assert a.instructions == "You are Ann. Q: Hours?\nA: 9-5"
    assert a.greeting.text == "" and a.greeting.language == "en-US"
    assert (a.max_call_s, a.inactivity_timeout_s) == (90, 0)


# ------------------------------------------------------------------ the model


def test_the_issue_example_is_a_valid_assistant() -> None:
    body = {
        "name": "sales",
        "numbers": ["+447700900001"],
        "instructions": "You are ... {caller} {FAQ_KB}",
        "faq": [{"question": "...", "answer": "..."}],
        "voice": "marin",
        "model": "gpt-realtime",
        "greeting": {"text": "Hello!", "language": "en-US"},
        "transcription": {"model": "gpt-4o-mini-transcribe", "language": "en"},
        "turn_detection": {"type": "semantic_vad", "eagerness": "auto"},
        "noise_reduction": "near_field",
        "tools": ["end_call", "transfer_call"],
        "max_call_s": 1800,
        "inactivity_timeout_s": 60,
        "record": False,
    }
    a = Assistant.model_validate(body)
    assert a.public_json() == {**body, "version": 0}


def test_every_bad_field_is_named() -> None:
    found = problems(
        {
            "name": "Sales Team",
            "numbers": ["+447700900001", "447700900002"],
            "voice": "robot",
            "greeting": {"text": "x" * 1501},
            "transcription": {"language": "en"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 50},
            "noise_reduction": "on",
            "max_call_s": 0,
            "inactivity_timeout_s": -1,
            "faq": [{"question": "q"}],
            "tools": ["bad name"],
            "extra": 1,
        }
    )
    assert set(found) == {
        "name",
        "numbers",
        "voice",
        "greeting.text",
        "transcription.model",
        "turn_detection.silence_duration_ms",
        "noise_reduction",
        "max_call_s",
        "inactivity_timeout_s",
        "faq.0.answer",
        "tools.0",
        "extra",
    }
    assert found["extra"] == "unknown field"
    assert "[1]" in found["numbers"] and "+" in found["numbers"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "NaN", "Infinity"])
def test_a_limit_that_is_not_a_finite_number_says_so(value: object) -> None:
    found = problems({"name": "a", "max_call_s": value, "inactivity_timeout_s": value})
    assert found == {
        "max_call_s": "Input should be a finite number",
        "inactivity_timeout_s": "Input should be a finite number",
    }


def test_numbers_are_normalised_and_unique() -> None:
    a = Assistant(name="a", numbers=("+81 80-1234-5678", "+1 (415) 555.0100"))
    assert a.numbers == ("+818012345678", "+14155550100")
    assert (
        "twice"
        in problems({"name": "a", "numbers": ["+447700900001", "+44 7700 900001"]})["numbers"]
    )


def test_turn_detection_needs_a_known_type() -> None:
    assert problems({"name": "a", "turn_detection": {"type": "push_to_talk"}}) == {
        "turn_detection": "type must be server_vad or semantic_vad"
    }
    found = problems({"name": "a", "turn_detection": {"type": "semantic_vad", "eagerness": "x"}})
    assert set(found) == {"turn_detection.eagerness"}


# ------------------------------------------------------------------ instructions


def test_placeholders_are_filled_once_and_unknown_ones_kept() -> None:
    a = Assistant(
        name="a",
        instructions="Hi {caller}, order {order_id} for {name}. {FAQ_KB} {missing} {not valid}",
        faq=({"question": "Q1", "answer": "A1"},),  # type: ignore[arg-type]
    )
    ctx = CallContext(a, variables={"order_id": "42", "name": "{caller}"}, instructions="Be brief.")
    text = call_instructions_for(ctx, caller="+818012345678", called=None)
    assert text == (
        "Hi +818012345678 (national form 08012345678), order 42 for {caller}. "
        "Q: Q1\nA: A1 {missing} {not valid}\n\nBe brief."
    )


def test_a_knowledge_base_without_its_placeholder_is_appended() -> None:
    a = Assistant(name="a", instructions="Help.", faq=({"question": "Q", "answer": "A"},))  # type: ignore[arg-type]
    text = call_instructions_for(CallContext(a), caller=None, called="447700900001")
    assert text == (
        "Help.\n\nKnowledge base (answer from it when it applies):\nQ: Q\nA: A"
        "\n\nThe number they called is 447700900001."
    )


# ------------------------------------------------------------------ the Realtime session


def test_an_assistant_becomes_its_session() -> None:
    a = Assistant(
        name="a",
        voice="cedar",
        model="gpt-realtime-mini",
        transcription=None,
        turn_detection={"type": "semantic_vad", "eagerness": "high"},  # type: ignore[arg-type]
        noise_reduction="near_field",
        tools=("end_call",),
    )
    s = session_update(a, "x", TOOLS, audio_format={"type": "audio/pcmu"})["session"]
    assert s["model"] == "gpt-realtime-mini"
    assert s["audio"]["output"] == {"voice": "cedar", "format": {"type": "audio/pcmu"}}
    assert s["audio"]["input"] == {
        "turn_detection": {
            "type": "semantic_vad",
            "eagerness": "high",
            "create_response": True,
            "interrupt_response": True,
        },
        "format": {"type": "audio/pcmu"},
        "noise_reduction": {"type": "near_field"},
    }
    assert [t["name"] for t in s["tools"]] == ["end_call"]
    none = session_config(a.model_copy(update={"tools": ()}), "x", TOOLS)
    assert "tools" not in none and "tool_choice" not in none


def test_the_call_session_and_its_warm_session_use_the_calls_assistant(
    settings: Settings,
) -> None:
    info = CallInfo("call-1", caller="447700900000", called="447700900001")
    ctx = CallContext(Assistant(name="a", voice="ash", tools=("end_call",)), variables={"x": "1"})
    door = vonage_door(16_000, settings.call.resample_quality)
    session = CallSession(
        info,
        openai=settings.openai,
        call=settings.call,
        path=door.path,
        commands=door.commands,
        tools=TOOLS,
        context=ctx,
    )
    update = session.realtime_opened()
    assert update == session_update_for(info, settings, TOOLS, PCM16_24K, ctx)
    assert json.loads(update)["session"]["audio"]["output"]["voice"] == "ash"


# ------------------------------------------------------------------ ASSISTANTS_FILE


def test_a_toml_file_gives_its_assistants() -> None:
    text = (
        '[[assistants]]\nname = "sales"\nnumbers = ["+447700900001"]\n'
        '[assistants.turn_detection]\ntype = "semantic_vad"\n\n'
        '[[assistants]]\nname = "support"\nvoice = "sage"\n'
    )
    sales, support = parse_assistants(text, toml=True)
    assert sales.turn_detection.type == "semantic_vad" and support.voice == "sage"


@pytest.mark.parametrize(
    ("text", "toml", "message"),
    [
        ('{"assistants": [{"name": "a", "voice": "x"}]}', False, "assistants[0] (a): voice:"),
        ('[{"name": "a"}, {"name": "a"}]', False, "assistants[1] (a): name: 'a' is used twice"),
        (
            '[{"name": "a", "numbers": ["+447700900001"]}, '
            '{"name": "b", "numbers": ["+447700900001"]}]',
            False,
            "assistants[1] (b): numbers: +447700900001 is already a's",
        ),
        ('{"name": "a"}', False, "must hold a list of assistants"),
        ("[[assistants]\n", True, "is not valid TOML"),
        ("[1]", False, "assistants[0]: must be an object"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_entry_and_field(
    text: str, toml: bool, message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        parse_assistants(text, toml=toml)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_bad_assistants_file_is_a_config_error_naming_the_variable(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "assistants.json"
    path.write_text('[{"name": "a", "colour": "red"}]', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**base_env, "ASSISTANTS_FILE": str(path), "MAX_CALL_S": "0"})
    lines = caught.value.problems
    assert f"ASSISTANTS_FILE='{path}': assistants[0] (a): colour: unknown field" in lines
    assert "MAX_CALL_S='0': must be between 0.1 and 86400.0" in lines
    with pytest.raises(ConfigError, match="file not found"):
        Settings.from_env({**base_env, "ASSISTANTS_FILE": str(tmp_path / "none.toml")})

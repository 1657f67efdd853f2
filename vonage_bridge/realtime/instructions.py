"""The Realtime session configuration for a phone call. Pure: no I/O.

The shape is the GA ``session.update`` (``RealtimeSessionCreateRequestGA`` in OpenAI's OpenAPI
spec).

Sources: https://platform.openai.com/docs/api-reference/realtime-client-events,
https://github.com/openai/openai-openapi
"""

from __future__ import annotations

from typing import Any

from ..config import OpenAISettings

NATIONAL_PREFIXES = {"81": "0", "44": "0"}
"""Country codes whose national form we know: ``+81 80 ...`` is dialled ``080 ...``."""


def national_form(e164: str) -> str | None:
    """The national form for a country code we know (``+818012345678`` -> ``08012345678``)."""
    for code, prefix in NATIONAL_PREFIXES.items():
        if e164.startswith("+" + code):
            return prefix + e164[1 + len(code) :]
    return None


def caller_label(caller: str | None) -> str | None:
    """The caller's number for the instructions: E.164, plus the national form if known.

    Vonage sends digits without ``+`` (``447700900000``); they are shown as E.164.
    """
    if not caller:
        return None
    e164 = "+" + caller if caller.isdigit() else caller
    national = national_form(e164)
    return f"{e164} (national form {national})" if national else e164


def call_instructions(system_message: str, *, caller: str | None, called: str | None) -> str:
    """The persona for one call: ``{caller}`` replaced by the caller's number (E.164 and
    national form), or, without that placeholder, the number appended in a sentence.

    ``caller`` and ``called`` are untrusted webhook fields; pass them through
    ``phone.bounded_headers`` (or the SIP header bounding) first: short, safe
    characters only.
    """
    label = caller_label(caller)
    parts = [system_message.replace("{caller}", label or "unknown").strip()]
    if label and "{caller}" not in system_message:
        parts.append(f"The caller's phone number is {label}.")
    if called:
        parts.append(f"The number they called is {called}.")
    return "\n\n".join(parts)


PCM_24K = {"type": "audio/pcm", "rate": 24_000}
"""OpenAI's only PCM format: 16-bit mono little-endian at 24000 Hz.

Source: https://platform.openai.com/docs/api-reference/realtime (audio formats)."""


def session_config(
    openai: OpenAISettings,
    instructions: str,
    tools: list[dict[str, Any]] | None = None,
    *,
    audio_format: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A GA session config (``RealtimeSessionCreateRequestGA``): model, instructions, voice,
    server VAD, input transcription, and the function ``tools`` (``tool_choice: auto``).

    Args:
        audio_format: set as input and output format (WebSocket path: :data:`PCM_24K`);
            ``None`` leaves it to OpenAI (SIP, where OpenAI carries the audio).
    Sources: https://platform.openai.com/docs/api-reference/realtime-client-events,
    https://platform.openai.com/docs/guides/realtime-sip (SIP).
    """
    audio_input: dict[str, Any] = {
        "turn_detection": {
            "type": "server_vad",
            "threshold": openai.vad_threshold,
            "prefix_padding_ms": 300,
            "silence_duration_ms": openai.vad_silence_ms,
            "create_response": True,
            "interrupt_response": True,
        },
    }
    audio_output: dict[str, Any] = {"voice": openai.voice}
    if audio_format is not None:
        audio_input["format"] = dict(audio_format)
        audio_output["format"] = dict(audio_format)
    if openai.transcription_model:
        transcription: dict[str, Any] = {"model": openai.transcription_model}
        if openai.transcription_language:
            transcription["language"] = openai.transcription_language
        audio_input["transcription"] = transcription
    session: dict[str, Any] = {
        "type": "realtime",
        "model": openai.model,
        "instructions": instructions,
        "audio": {"input": audio_input, "output": audio_output},
    }
    if tools:
        session["tools"] = tools
        session["tool_choice"] = "auto"
    return session


def session_update(
    openai: OpenAISettings,
    instructions: str,
    tools: list[dict[str, Any]] | None = None,
    *,
    audio_format: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``session.update`` for a WebSocket call: ``audio_format`` both ways (default
    :data:`PCM_24K`, the Vonage path; ``{"type": "audio/pcmu"}`` for Twilio), audio output
    only. Never the beta shape (it is refused with close 4000).

    Source: https://platform.openai.com/docs/guides/realtime (GA interface); the beta refusal
    reported in https://github.com/langwatch/scenario/issues/602.
    """
    fmt = PCM_24K if audio_format is None else audio_format
    session = session_config(openai, instructions, tools, audio_format=fmt)
    session["output_modalities"] = ["audio"]
    return {"type": "session.update", "session": session}

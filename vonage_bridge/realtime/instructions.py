"""The Realtime session configuration for a phone call. Pure: no I/O.

Source: protocols.md B1 (GA ``session.update``, ``RealtimeSessionCreateRequestGA``).
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
    ``telephony.ncco.bounded_headers`` (or the SIP header bounding) first: short, safe
    characters only.
    """
    label = caller_label(caller)
    parts = [system_message.replace("{caller}", label or "unknown").strip()]
    if label and "{caller}" not in system_message:
        parts.append(f"The caller's phone number is {label}.")
    if called:
        parts.append(f"The number they called is {called}.")
    return "\n\n".join(parts)


def session_update(
    openai: OpenAISettings, instructions: str, tools: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """``session.update`` for a call: ``audio/pcm`` at 24000 Hz both ways, voice, server VAD,
    input transcription, and the function ``tools`` (``tool_choice: auto``) if any. Never the
    beta shape (it is refused with close 4000). [OAI-BETA-EOL]
    """
    audio_input: dict[str, Any] = {
        "format": {"type": "audio/pcm", "rate": 24_000},
        "turn_detection": {
            "type": "server_vad",
            "threshold": openai.vad_threshold,
            "prefix_padding_ms": 300,
            "silence_duration_ms": openai.vad_silence_ms,
            "create_response": True,
            "interrupt_response": True,
        },
    }
    if openai.transcription_model:
        transcription: dict[str, Any] = {"model": openai.transcription_model}
        if openai.transcription_language:
            transcription["language"] = openai.transcription_language
        audio_input["transcription"] = transcription
    session: dict[str, Any] = {
        "type": "realtime",
        "model": openai.model,
        "instructions": instructions,
        "output_modalities": ["audio"],
        "audio": {
            "input": audio_input,
            "output": {"format": {"type": "audio/pcm", "rate": 24_000}, "voice": openai.voice},
        },
    }
    if tools:
        session["tools"] = tools
        session["tool_choice"] = "auto"
    return {"type": "session.update", "session": session}

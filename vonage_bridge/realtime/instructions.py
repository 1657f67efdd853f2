"""The Realtime session configuration for a phone call. Pure: no I/O.

Source: protocols.md B1 (GA ``session.update``, ``RealtimeSessionCreateRequestGA``).
"""

from __future__ import annotations

from typing import Any

from ..config import OpenAISettings


def call_instructions(system_message: str, *, caller: str | None, called: str | None) -> str:
    """The system message plus what we know about the call.

    ``caller`` and ``called`` are untrusted webhook fields; pass them through
    ``telephony.ncco.bounded_headers`` first (short, safe characters only).
    """
    parts = [system_message.strip()]
    if caller:
        parts.append(f"The caller's phone number is {caller}.")
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

"""The caller's number as the instructions show it, and OpenAI's PCM format. Pure: no I/O.

The instructions and the ``session.update`` of a call are built from its assistant in
``core.assistant`` (``call_instructions_for``, ``session_config``, ``session_update``).

Source: https://platform.openai.com/docs/api-reference/realtime-client-events
"""

from __future__ import annotations

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


PCM_24K = {"type": "audio/pcm", "rate": 24_000}
"""OpenAI's only PCM format: 16-bit mono little-endian at 24000 Hz.

Source: https://platform.openai.com/docs/api-reference/realtime (audio formats)."""

"""Token usage of one call, summed from the Realtime API's own reports. Pure: data only.

Every ``response.done`` carries the response's ``usage`` and every
``conversation.item.input_audio_transcription.completed`` the transcription's; a call's usage
is their sum, kept in OpenAI's own shape (:meth:`CallUsage.to_json`)::

    {"input_tokens", "output_tokens", "total_tokens",
     "input_token_details": {"text_tokens", "audio_tokens", "cached_tokens",
                             "cached_tokens_details": {"text_tokens", "audio_tokens"}},
     "output_token_details": {"text_tokens", "audio_tokens"},
     "transcription": {"input_tokens", "output_tokens",
                       "input_token_details": {"text_tokens", "audio_tokens"},
                       "seconds"}}

``seconds`` is what duration-billed transcription models (``whisper-1``) report instead of
tokens. A report that is missing or malformed counts as zero: the sums never raise.

Sources: https://platform.openai.com/docs/api-reference/realtime-server-events
(``response.done`` ``response.usage``; ``input_audio_transcription.completed`` ``usage``,
either ``{"type": "tokens", ...}`` or ``{"type": "duration", "seconds"}``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

__all__ = ["CallUsage", "TokenUsage", "parse_usage"]


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """One ``usage`` report, tokens (``seconds``: duration-billed transcription, s).

    ``cached_text`` / ``cached_audio`` split ``cached_tokens`` when the report has
    ``cached_tokens_details`` (both 0 otherwise)."""

    input_tokens: int = 0
    output_tokens: int = 0
    input_text: int = 0
    input_audio: int = 0
    cached: int = 0
    cached_text: int = 0
    cached_audio: int = 0
    output_text: int = 0
    output_audio: int = 0
    seconds: float = 0.0


def _obj(doc: dict[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def _n(doc: dict[str, Any], key: str) -> int:
    value = doc.get(key)
    # bool is an int: never count True as a token
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def parse_usage(value: object) -> TokenUsage | None:
    """A wire ``usage`` object as :class:`TokenUsage`; None when there is none (``null``, not
    an object). Unknown or malformed fields count as 0."""
    if not isinstance(value, dict):
        return None
    details = _obj(value, "input_token_details")
    cached = _obj(details, "cached_tokens_details")
    out = _obj(value, "output_token_details")
    seconds = value.get("seconds")
    return TokenUsage(
        input_tokens=_n(value, "input_tokens"),
        output_tokens=_n(value, "output_tokens"),
        input_text=_n(details, "text_tokens"),
        input_audio=_n(details, "audio_tokens"),
        cached=_n(details, "cached_tokens"),
        cached_text=_n(cached, "text_tokens"),
        cached_audio=_n(cached, "audio_tokens"),
        output_text=_n(out, "text_tokens"),
        output_audio=_n(out, "audio_tokens"),
        seconds=float(seconds)
        if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds > 0
        else 0.0,
    )


@dataclass(slots=True)
class CallUsage:
    """The usage of one call: responses and input transcription summed apart.

    Attributes:
        responses: the sum of every ``response.done`` usage.
        transcription: the sum of every input transcription usage.
        reports: how many usage reports were added (0: the call used nothing we were told of).
    """

    responses: TokenUsage = TokenUsage()
    transcription: TokenUsage = TokenUsage()
    reports: int = 0

    def add_response(self, usage: TokenUsage | None) -> None:
        """Add one ``response.done`` usage (None: nothing)."""
        if usage is not None:
            self.responses = _plus(self.responses, usage)
            self.reports += 1

    def add_transcription(self, usage: TokenUsage | None) -> None:
        """Add one input transcription usage (None: nothing)."""
        if usage is not None:
            self.transcription = _plus(self.transcription, usage)
            self.reports += 1

    def to_json(self) -> dict[str, Any]:
        """The sums in OpenAI's shape (the module docstring)."""
        r, t = self.responses, self.transcription
        return {
            "input_tokens": r.input_tokens,
            "output_tokens": r.output_tokens,
            "total_tokens": r.input_tokens + r.output_tokens,
            "input_token_details": {
                "text_tokens": r.input_text,
                "audio_tokens": r.input_audio,
                "cached_tokens": r.cached,
                "cached_tokens_details": {
                    "text_tokens": r.cached_text,
                    "audio_tokens": r.cached_audio,
                },
            },
            "output_token_details": {"text_tokens": r.output_text, "audio_tokens": r.output_audio},
            "transcription": {
                "input_tokens": t.input_tokens,
                "output_tokens": t.output_tokens,
                "input_token_details": {"text_tokens": t.input_text, "audio_tokens": t.input_audio},
                "seconds": round(t.seconds, 3),
            },
        }


def _plus(a: TokenUsage, b: TokenUsage) -> TokenUsage:
    return TokenUsage(*(getattr(a, f.name) + getattr(b, f.name) for f in fields(TokenUsage)))

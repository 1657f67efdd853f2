"""Assistants: who answers a call, and how. Pure: data and text, no I/O.

- :class:`Assistant`: a named configuration (instructions, knowledge base, voice, model,
  greeting, transcription, turn detection, noise reduction, tools, call limits). Its JSON
  shape is the API's and ``ASSISTANTS_FILE``'s; unknown fields are refused, and
  :func:`field_problems` names every bad field of a refused body;
- :class:`CallContext`: what one call adds to its assistant (extra instructions, variables
  for ``{name}`` placeholders, metadata for the record), handed to ``CallSession``;
- :func:`call_instructions_for`: the instructions of one call (``{caller}``, ``{FAQ_KB}`` and
  the call's ``{variables}`` filled in; unknown placeholders kept as written);
- :func:`session_config` / :func:`session_update`: the assistant as a GA Realtime session
  (voice, model, transcription, turn detection, noise reduction, its tools only).

The default assistant (``assistants.defaults``) is built from the settings, so a deployer who
ignores assistants gets exactly the session of before.

Sources: https://platform.openai.com/docs/api-reference/realtime-client-events/session/update
(``session.update``: ``audio.input.turn_detection`` ``server_vad`` / ``semantic_vad``,
``audio.input.noise_reduction`` ``near_field`` / ``far_field`` / null, ``tools``),
https://platform.openai.com/docs/guides/realtime-vad (turn detection).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..config import CallSettings, OpenAISettings
from ..config_values import VOICES, voice
from ..persona import DEFAULT_SYSTEM_MESSAGE
from ..phone import e164_digits
from ..realtime.instructions import caller_label

__all__ = [
    "DEFAULT_NAME",
    "Assistant",
    "CallContext",
    "FaqEntry",
    "Greeting",
    "SemanticVad",
    "ServerVad",
    "Transcription",
    "call_instructions_for",
    "faq_text",
    "field_problems",
    "session_config",
    "session_update",
]

DEFAULT_NAME = "default"
"""The assistant of every number bound to none (built from the settings unless one of this
name is stored)."""
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
"""Assistant names: lower-case letters, digits, ``-`` and ``_``; a URL path segment as is."""
MAX_INSTRUCTIONS_CHARS = 50_000
MAX_FAQ_ENTRIES = 500
MAX_NUMBERS = 100
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]{0,63})\}")
"""``{name}`` in instructions: ``caller``, ``FAQ_KB`` or a per-call variable."""


class _Strict(BaseModel):
    """Unknown fields are refused (a 400 naming them, never silently dropped)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, allow_inf_nan=False
    )


class FaqEntry(_Strict):
    """One question and its answer, rendered into ``{FAQ_KB}`` as ``Q: ...`` / ``A: ...``."""

    question: str = Field(min_length=1, max_length=2_000)
    answer: str = Field(min_length=1, max_length=10_000)


class Greeting(_Strict):
    """Said first: by the carrier (Vonage NCCO ``talk``, Twilio ``<Say>``, in ``language``),
    or on OpenAI SIP by the model. An empty ``text``: no greeting (SIP: a short one)."""

    text: str = Field(default="", max_length=1_500)
    language: str = Field(default="en-US", min_length=2, max_length=16)


class Transcription(_Strict):
    """Caller speech transcription (``audio.input.transcription``); ``language``: ISO-639-1."""

    model: str = Field(min_length=1, max_length=64)
    language: str | None = Field(default=None, min_length=2, max_length=16)


class ServerVad(_Strict):
    """Server VAD: speech is audio above ``threshold`` (0-1); the turn ends after
    ``silence_duration_ms`` of silence; ``prefix_padding_ms`` of audio before speech is kept."""

    type: Literal["server_vad"]
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    prefix_padding_ms: int = Field(default=300, ge=0, le=5_000)
    silence_duration_ms: int = Field(default=500, ge=100, le=5_000)


class SemanticVad(_Strict):
    """Semantic VAD: the turn ends when the model judges the caller finished; ``eagerness``
    says how soon."""

    type: Literal["semantic_vad"]
    eagerness: Literal["low", "medium", "high", "auto"] = "auto"


TurnDetection = Annotated[ServerVad | SemanticVad, Field(discriminator="type")]


def _default_turn_detection() -> ServerVad:
    return ServerVad(type="server_vad")


class Assistant(_Strict):
    """A named assistant (the JSON shape of ``/assistants`` and ``ASSISTANTS_FILE``).

    Attributes:
        name: see :data:`NAME_PATTERN`.
        numbers: E.164 numbers (``+`` and 7-15 digits; spaces, dashes and dots are dropped)
            whose inbound calls it answers; a number belongs to one assistant at most.
        instructions: the persona; ``{caller}``, ``{FAQ_KB}`` and per-call ``{variables}``
            are filled in per call (:func:`call_instructions_for`).
        faq: the knowledge base, rendered into ``{FAQ_KB}``.
        voice: a built-in voice or a custom voice id ``voice_...``.
        model: the Realtime model.
        greeting: what is said first.
        transcription: caller transcription; null turns it off.
        turn_detection: :class:`ServerVad` or :class:`SemanticVad`.
        noise_reduction: ``near_field``, ``far_field`` or null (off).
        tools: the names of the tools it may use; null: every tool the service has.
        max_call_s: the call ends at this length, s (after a goodbye; told to wrap up
            before).
        inactivity_timeout_s: silence (no caller speech, no assistant audio) this long, s,
            makes it ask once whether the caller is still there, then end the call; 0: off.
        record: whether its calls are recorded (used by call recording).
        version: read-only: 1 when first stored, +1 on each change; 0 for the built-in
            default. Ignored in a request body.
    """

    name: str = Field(pattern=NAME_PATTERN)
    numbers: tuple[str, ...] = Field(default=(), max_length=MAX_NUMBERS)
    instructions: str = Field(default=DEFAULT_SYSTEM_MESSAGE, min_length=1, max_length=50_000)
    faq: tuple[FaqEntry, ...] = Field(default=(), max_length=MAX_FAQ_ENTRIES)
    voice: str = "marin"
    model: str = Field(default="gpt-realtime", min_length=1, max_length=64)
    greeting: Greeting = Greeting()
    transcription: Transcription | None = Transcription(model="gpt-4o-mini-transcribe")
    turn_detection: TurnDetection = Field(default_factory=_default_turn_detection)
    noise_reduction: Literal["near_field", "far_field"] | None = None
    tools: tuple[Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")], ...] | None = None
    max_call_s: float = Field(default=1800.0, gt=0, le=86_400)
    inactivity_timeout_s: float = Field(default=60.0, ge=0, le=86_400)
    record: bool = False
    version: int = Field(default=0, ge=0)

    @field_validator("voice", mode="before")
    @classmethod
    def _voice(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError(f"must be one of {', '.join(VOICES)} or a custom voice id voice_...")
        return voice(value)

    @field_validator("numbers", mode="before")
    @classmethod
    def _numbers(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            return value  # pydantic says what is wrong
        out: list[str] = []
        for i, number in enumerate(value):
            if not isinstance(number, str):
                raise ValueError(f"[{i}] must be a string such as +447700900001")
            cleaned = re.sub(r"[\s\-.()]", "", number)
            if not cleaned.startswith("+"):
                raise ValueError(f"[{i}] must be E.164 with a leading + (e.g. +447700900001)")
            try:
                e164 = "+" + e164_digits(cleaned)
            except ValueError as exc:
                raise ValueError(f"[{i}] {exc}") from None
            if e164 in out:
                raise ValueError(f"[{i}] {e164} is listed twice")
            out.append(e164)
        return tuple(out)

    def public_json(self) -> dict[str, Any]:
        """The JSON the API returns (and a PUT accepts back): every field, ``version`` too."""
        return self.model_dump(mode="json")

    @property
    def tool_names(self) -> frozenset[str] | None:
        """Its tools as a set; None: every tool."""
        return None if self.tools is None else frozenset(self.tools)


def field_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """``(field, problem)`` for each error of a refused assistant, in order: ``field`` as a
    dotted path (``greeting.text``, ``faq.2.answer``; ``numbers`` for a bad number, whose
    index is in the problem), ``problem`` in pydantic's words or ours."""
    out: list[tuple[str, str]] = []
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        if (
            len(loc) >= 2
            and loc[0] == "turn_detection"
            and loc[1] in ("server_vad", "semantic_vad")
        ):
            del loc[1]  # the union's tag, not a field
        path = ".".join(loc) or "(body)"
        kind = error["type"]
        if kind == "extra_forbidden":
            problem = "unknown field"
        elif kind == "value_error":
            problem = str(error.get("ctx", {}).get("error", error["msg"]))
        elif kind == "union_tag_invalid":
            problem = "type must be server_vad or semantic_vad"
        else:
            problem = error["msg"]
        out.append((path, problem))
    return out


def default_assistant(
    openai: OpenAISettings,
    call: CallSettings,
    *,
    max_call_s: float = 1800.0,
    inactivity_timeout_s: float = 60.0,
) -> Assistant:
    """The assistant of every call no stored assistant answers: today's configuration from
    the environment (``OPENAI_*``, ``VAD_*``, ``GREETING_*``) and the persona file with its
    knowledge base already in it, named :data:`DEFAULT_NAME`, version 0, every tool.

    Built without validation: each value passed its own variable's check (a persona with a
    large knowledge base may exceed what the API accepts in a body).
    """
    transcription = (
        Transcription.model_construct(
            model=openai.transcription_model, language=openai.transcription_language
        )
        if openai.transcription_model
        else None
    )
    return Assistant.model_construct(
        name=DEFAULT_NAME,
        numbers=(),
        instructions=call.system_message,
        faq=(),
        voice=openai.voice,
        model=openai.model,
        greeting=Greeting.model_construct(text=call.greeting_text, language=call.greeting_language),
        transcription=transcription,
        turn_detection=ServerVad.model_construct(
            type="server_vad",
            threshold=openai.vad_threshold,
            prefix_padding_ms=300,
            silence_duration_ms=openai.vad_silence_ms,
        ),
        noise_reduction=None,
        tools=None,
        max_call_s=max_call_s,
        inactivity_timeout_s=inactivity_timeout_s,
        record=False,
        version=0,
    )


# ------------------------------------------------------------------ one call


@dataclass(frozen=True, slots=True)
class CallContext:
    """One call's assistant and what the call adds to it.

    Attributes:
        assistant: who answers (its ``name`` and ``version`` go to the call record).
        instructions: added after the assistant's instructions (e.g. from ``POST /connect``).
        variables: values for ``{name}`` placeholders in the instructions (flat strings).
        metadata: free JSON kept on the call record (the session never reads it).
    """

    assistant: Assistant
    instructions: str | None = None
    variables: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)


def faq_text(faq: Sequence[FaqEntry]) -> str:
    """The knowledge base as instruction text: ``Q: ...`` / ``A: ...`` pairs, a blank line
    between them (as ``FAQ_KB_PATH`` JSON files are rendered)."""
    return "\n\n".join(f"Q: {e.question}\nA: {e.answer}" for e in faq)


def call_instructions_for(ctx: CallContext, *, caller: str | None, called: str | None) -> str:
    """The instructions of one call.

    One pass over the assistant's instructions: ``{caller}`` becomes the caller's number
    (E.164, with the national form when known; ``unknown`` without one), ``{FAQ_KB}`` the
    knowledge base, ``{name}`` the call's variable ``name``; any other ``{...}`` stays as
    written (never an error). Values are not searched again, so a variable cannot inject a
    placeholder. Then, as before assistants: without a ``{caller}`` placeholder the caller's
    number is added in a sentence, and the number called; a knowledge base with no
    ``{FAQ_KB}`` to go in is appended under a heading; the call's extra instructions last,
    their placeholders filled the same way.

    Args:
        ctx: the call's assistant, extra instructions and variables.
        caller / called: untrusted webhook fields, already bounded (``phone.bounded_headers``).
    """
    template = ctx.assistant.instructions
    faq = faq_text(ctx.assistant.faq)
    label = caller_label(caller)
    variables = ctx.variables

    def fill(match: re.Match[str]) -> str:
        """The value of one ``{name}`` placeholder; an unknown name is left as written."""
        name = match.group(1)
        if name == "caller":
            return label or "unknown"
        if name == "FAQ_KB":
            return faq
        value = variables.get(name)
        return match.group(0) if value is None else value

    text = PLACEHOLDER.sub(fill, template).strip()
    if faq and "{FAQ_KB}" not in template:
        text = f"{text}\n\nKnowledge base (answer from it when it applies):\n{faq}"
    parts = [text]
    if label and "{caller}" not in template:
        parts.append(f"The caller's phone number is {label}.")
    if called:
        parts.append(f"The number they called is {called}.")
    if ctx.instructions and ctx.instructions.strip():
        parts.append(PLACEHOLDER.sub(fill, ctx.instructions).strip())
    return "\n\n".join(parts)


# ------------------------------------------------------------------ Realtime session


def turn_detection_json(turn: ServerVad | SemanticVad) -> dict[str, Any]:
    """``audio.input.turn_detection``: the server answers each turn itself and cancels a reply
    the caller talks over (``create_response``, ``interrupt_response``; barge-in relies on
    the latter)."""
    if isinstance(turn, SemanticVad):
        body: dict[str, Any] = {"type": "semantic_vad", "eagerness": turn.eagerness}
    else:
        body = {
            "type": "server_vad",
            "threshold": turn.threshold,
            "prefix_padding_ms": turn.prefix_padding_ms,
            "silence_duration_ms": turn.silence_duration_ms,
        }
    body["create_response"] = True
    body["interrupt_response"] = True
    return body


def session_config(
    assistant: Assistant,
    instructions: str,
    tools: Sequence[dict[str, Any]] | None = None,
    *,
    audio_format: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The assistant as a GA session config (``RealtimeSessionCreateRequestGA``).

    Args:
        instructions: the call's (:func:`call_instructions_for`).
        tools: ``session.tools`` declarations; only those the assistant may use are kept
            (``tool_choice: auto`` when any is left).
        audio_format: set as input and output format; None leaves it to OpenAI (SIP).
    Returns:
        ``type``, ``model``, ``instructions``, ``audio.input`` (turn detection, transcription
        unless off, noise reduction unless null: a fresh session has none), ``audio.output``
        (voice), and the tools.
    """
    audio_input: dict[str, Any] = {"turn_detection": turn_detection_json(assistant.turn_detection)}
    audio_output: dict[str, Any] = {"voice": assistant.voice}
    if audio_format is not None:
        audio_input["format"] = dict(audio_format)
        audio_output["format"] = dict(audio_format)
    if assistant.transcription is not None:
        transcription: dict[str, Any] = {"model": assistant.transcription.model}
        if assistant.transcription.language:
            transcription["language"] = assistant.transcription.language
        audio_input["transcription"] = transcription
    if assistant.noise_reduction is not None:
        audio_input["noise_reduction"] = {"type": assistant.noise_reduction}
    session: dict[str, Any] = {
        "type": "realtime",
        "model": assistant.model,
        "instructions": instructions,
        "audio": {"input": audio_input, "output": audio_output},
    }
    allowed = assistant.tool_names
    kept = [t for t in tools or () if allowed is None or t.get("name") in allowed]
    if kept:
        session["tools"] = kept
        session["tool_choice"] = "auto"
    return session


def session_update(
    assistant: Assistant,
    instructions: str,
    tools: Sequence[dict[str, Any]] | None = None,
    *,
    audio_format: dict[str, Any],
) -> dict[str, Any]:
    """``session.update`` for a WebSocket call (:func:`session_config` with ``audio_format``
    both ways, audio output only)."""
    session = session_config(assistant, instructions, tools, audio_format=audio_format)
    session["output_modalities"] = ["audio"]
    return {"type": "session.update", "session": session}


# ------------------------------------------------------------------ ASSISTANTS_FILE


def parse_assistants(text: str, *, toml: bool) -> tuple[Assistant, ...]:
    """The assistants of an ``ASSISTANTS_FILE``: TOML (``[[assistants]]`` tables) or JSON (a
    list, or an object with an ``assistants`` list), each in the API's shape.

    Raises:
        ValueError: one line naming the entry and each bad field (``assistants[1] (sales):
            voice: ...``), or a name or number used twice, or a syntax error.
    Sources: https://toml.io/en/v1.0.0#array-of-tables, RFC 8259 (JSON).
    """
    try:
        doc: Any = tomllib.loads(text) if toml else json.loads(text)
    except ValueError as exc:  # tomllib.TOMLDecodeError and JSONDecodeError are ValueErrors
        raise ValueError(f"is not valid {'TOML' if toml else 'JSON'} ({exc})") from None
    if isinstance(doc, dict) and set(doc) == {"assistants"}:
        doc = doc["assistants"]
    if not isinstance(doc, list):
        raise ValueError("must hold a list of assistants (TOML: [[assistants]] tables)")
    out: list[Assistant] = []
    owner: dict[str, str] = {}
    for i, entry in enumerate(doc):
        where = f"assistants[{i}]"
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            where += f" ({entry['name'][:64]})"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: must be an object")
        try:
            assistant = Assistant.model_validate({**entry, "version": 0})
        except ValidationError as exc:
            fields = "; ".join(f"{f}: {p}" for f, p in field_problems(exc))
            raise ValueError(f"{where}: {fields}") from None
        if any(a.name == assistant.name for a in out):
            raise ValueError(f"{where}: name: {assistant.name!r} is used twice")
        for number in assistant.numbers:
            if number in owner:
                raise ValueError(f"{where}: numbers: {number} is already {owner[number]}'s")
            owner[number] = assistant.name
        out.append(assistant)
    return tuple(out)

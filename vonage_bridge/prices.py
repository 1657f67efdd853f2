"""What a call cost: token prices per model, and a call's usage priced. Pure apart from
reading ``PRICES_FILE``.

Prices are US dollars per million tokens. :data:`DEFAULT_PRICES` are OpenAI's published
standard-tier prices as stated on https://platform.openai.com/docs/pricing on 2026-11-25
(Realtime API: ``gpt-realtime``, ``gpt-realtime-mini``; transcription:
``gpt-4o-mini-transcribe``, ``gpt-4o-transcribe``). Prices change: ``PRICES_FILE`` (JSON or
TOML) overrides or adds models, each a table of the six prices below (missing ones are 0)::

    [models."gpt-realtime"]           # or {"models": {"gpt-realtime": {...}}} in JSON
    text_input = 4.00
    text_cached_input = 0.40
    text_output = 16.00
    audio_input = 32.00
    audio_cached_input = 0.40
    audio_output = 64.00

A model is looked up by its name, then without a snapshot date (``gpt-realtime-2025-08-28``
-> ``gpt-realtime``). A call whose model (or transcription model, when it transcribed
anything) has no price has its usage recorded and ``cost_usd`` null.

Cost of a response's usage: uncached text and audio input, cached text and audio input, text
and audio output, each at its price. ``cached_tokens`` without ``cached_tokens_details`` is
counted against the text input first (instructions and tools, the start of every prompt
and so of every cached prefix, are text). Transcription: text and audio input,
text output (a report without details counts its input as audio). Sums are done in
``Decimal`` and rounded to 1e-6 USD, so equal usage gives exactly equal costs.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

from .core.usage import CallUsage, TokenUsage

__all__ = [
    "DEFAULT_PRICES",
    "ModelPrices",
    "PriceTable",
    "call_cost_usd",
    "load_prices",
]

PRICES_DATE = "2026-11-25"
"""When :data:`DEFAULT_PRICES` were taken from https://platform.openai.com/docs/pricing."""
_MILLION = Decimal(1_000_000)
_MICRO_USD = Decimal("0.000001")
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True, slots=True)
class ModelPrices:
    """One model's prices, USD per million tokens."""

    text_input: float = 0.0
    text_cached_input: float = 0.0
    text_output: float = 0.0
    audio_input: float = 0.0
    audio_cached_input: float = 0.0
    audio_output: float = 0.0


_KEYS = tuple(f.name for f in fields(ModelPrices))

DEFAULT_PRICES: dict[str, ModelPrices] = {
    "gpt-realtime": ModelPrices(4.00, 0.40, 16.00, 32.00, 0.40, 64.00),
    "gpt-realtime-mini": ModelPrices(0.60, 0.06, 2.40, 10.00, 0.30, 20.00),
    "gpt-4o-mini-transcribe": ModelPrices(text_input=1.25, audio_input=3.00, text_output=5.00),
    "gpt-4o-transcribe": ModelPrices(text_input=2.50, audio_input=6.00, text_output=10.00),
}
"""OpenAI's standard-tier prices on :data:`PRICES_DATE`
(https://platform.openai.com/docs/pricing)."""


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Prices by model name; ``source`` says where they came from (for the start-up log)."""

    models: dict[str, ModelPrices]
    source: str = f"built-in ({PRICES_DATE})"

    def get(self, model: str) -> ModelPrices | None:
        """The prices of ``model``, or of it without its snapshot date; None if unknown."""
        found = self.models.get(model)
        if found is None:
            found = self.models.get(_SNAPSHOT.sub("", model))
        return found


DEFAULT_TABLE = PriceTable(dict(DEFAULT_PRICES))


def load_prices(path: str) -> PriceTable:
    """``PRICES_FILE``: the defaults, with the file's models added or replacing them.

    Args:
        path: a ``.json`` file, or TOML (any other name): ``{"models": {name: {key: price}}}``
            with the keys of :class:`ModelPrices`, prices in USD per million tokens.
    Raises:
        ValueError: unreadable file, bad JSON/TOML, an unknown key, or a price that is not a
            number >= 0 (the message names the model and key).
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read it: {exc.strerror or exc}") from None
    try:
        doc: Any = json.loads(text) if file.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if file.suffix.lower() == ".json" else "TOML"
        raise ValueError(f"not valid {kind}: {exc}") from None
    models = doc.get("models") if isinstance(doc, dict) else None
    if not isinstance(models, dict) or not models:
        raise ValueError('must hold a "models" table of model name -> prices')
    table = dict(DEFAULT_PRICES)
    for name, prices in models.items():
        table[str(name)] = _model_prices(str(name), prices)
    return PriceTable(table, f"{path} over the built-in ({PRICES_DATE})")


def _model_prices(name: str, prices: object) -> ModelPrices:
    if not isinstance(prices, dict):
        raise ValueError(f"models.{name}: must be a table of prices")
    values: dict[str, float] = {}
    for key, value in prices.items():
        if key not in _KEYS:
            raise ValueError(f"models.{name}.{key}: unknown price (known: {', '.join(_KEYS)})")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"models.{name}.{key}: must be a number >= 0 (USD per 1M tokens)")
        values[key] = float(value)
    return ModelPrices(**values)


def _d(x: float) -> Decimal:
    return Decimal(repr(x))


def _response_cost(u: TokenUsage, p: ModelPrices) -> Decimal:
    cached_text, cached_audio = u.cached_text, u.cached_audio
    if u.cached and not (cached_text or cached_audio):
        cached_text = min(u.cached, u.input_text)
        cached_audio = u.cached - cached_text
    return (
        max(u.input_text - cached_text, 0) * _d(p.text_input)
        + cached_text * _d(p.text_cached_input)
        + max(u.input_audio - cached_audio, 0) * _d(p.audio_input)
        + cached_audio * _d(p.audio_cached_input)
        + u.output_text * _d(p.text_output)
        + u.output_audio * _d(p.audio_output)
    )


def _transcription_cost(u: TokenUsage, p: ModelPrices) -> Decimal:
    text, audio = u.input_text, u.input_audio
    if not (text or audio):
        audio = u.input_tokens
    return text * _d(p.text_input) + audio * _d(p.audio_input) + u.output_tokens * _d(p.text_output)


def call_cost_usd(
    usage: CallUsage, table: PriceTable, model: str, transcription_model: str | None
) -> float | None:
    """The call's cost in USD, rounded to 1e-6; None when a model it used has no price.

    Args:
        usage: the call's summed usage.
        table: the prices.
        model: the Realtime model of the call.
        transcription_model: the input transcription model (None: off); only priced when
            the call has transcription usage.
    """
    prices = table.get(model)
    if prices is None:
        return None
    total = _response_cost(usage.responses, prices)
    t = usage.transcription
    if t.input_tokens or t.output_tokens or t.input_text or t.input_audio:
        t_prices = table.get(transcription_model) if transcription_model else None
        if t_prices is None:
            return None
        total += _transcription_cost(t, t_prices)
    return float((total / _MILLION).quantize(_MICRO_USD))


def unpriced_models(table: PriceTable, model: str, transcription_model: str | None) -> list[str]:
    """The configured models :func:`call_cost_usd` cannot price (for the start-up WARNING)."""
    wanted = [model] + ([transcription_model] if transcription_model else [])
    return [m for m in wanted if table.get(m) is None]

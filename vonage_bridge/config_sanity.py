"""The obvious mistakes start-up refuses, and the guesses it only warns about. Pure.

Each rule reads the non-empty variables as given (text) and gives a line naming the variable:

- a value left as the ``.env.example`` placeholder (:data:`PLACEHOLDERS`), or one that looks
  like a placeholder (``...``, ``CHANGE-ME``, ``<your key>``) in a secret or an identifier;
- ``OPENAI_MODEL`` that is not a Realtime model: not in :data:`REALTIME_MODELS` and not of a
  Realtime family (:data:`REALTIME_MODEL_RE`), unless ``OPENAI_MODEL_CHECK=off`` (new model
  names) or Azure (``OPENAI_API_VERSION``: the model is a deployment name, so only a warning);
- ``OPENAI_TRANSCRIPTION_LANGUAGE`` that is not an ISO-639-1 code (``en``, ``de``);
- ``CONNECT_API_KEY`` shorter than :data:`MIN_CONNECT_API_KEY` characters.

``TRANSFER_NUMBER`` without a way to transfer needs the parsed settings and is checked in
:func:`transfer_problem`. A ``SERVER_URL`` that is not a URL is refused by its parser
(:func:`.config_values.public_url`).

Sources: Realtime models, https://platform.openai.com/docs/models (``gpt-realtime``,
``gpt-realtime-mini``, ``gpt-4o-realtime-preview``, ``gpt-4o-mini-realtime-preview`` and their
dated snapshots); the transcription ``language`` is ISO-639-1,
https://platform.openai.com/docs/api-reference/realtime-client-events/session/update;
the codes, https://www.loc.gov/standards/iso639-2/php/code_list.php.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PLACEHOLDERS = {
    "SERVER_URL": ("abc123.ngrok.app",),
    "OPENAI_API_KEY": ("sk-...",),
}
"""Values ``.env.example`` ships that must be replaced (the other values there are defaults
or empty)."""

_PLACEHOLDER_RE = re.compile(r"\.\.\.|change-?me|^<.*>$|^your[-_ ]|^x{6,}$", re.IGNORECASE)
_LOOKS_CHECKED = (
    "SERVER_URL",
    "OPENAI_API_KEY",
    "MEDIA_TOKEN_SECRET",
    "CONNECT_API_KEY",
    "VONAGE_APPLICATION_ID",
    "VONAGE_SIGNATURE_SECRET",
    "OPENAI_WEBHOOK_SECRET",
    "OPENAI_PROJECT_ID",
    "TWILIO_AUTH_TOKEN",
)
"""Variables whose value is never free text, so ``...`` or ``<...>`` in it is a placeholder."""

REALTIME_MODELS = frozenset(
    {
        "gpt-realtime",
        "gpt-realtime-2025-08-28",
        "gpt-realtime-mini",
        "gpt-realtime-mini-2025-10-06",
        "gpt-4o-realtime-preview",
        "gpt-4o-realtime-preview-2024-10-01",
        "gpt-4o-realtime-preview-2024-12-17",
        "gpt-4o-realtime-preview-2025-06-03",
        "gpt-4o-mini-realtime-preview",
        "gpt-4o-mini-realtime-preview-2024-12-17",
    }
)
"""Realtime models known when this was written."""

REALTIME_MODEL_RE = re.compile(
    r"gpt-realtime(-[a-z0-9.-]+)?|gpt-4o(-mini)?-realtime-preview(-[0-9-]+)?"
)
"""Names of the Realtime families, for snapshots newer than :data:`REALTIME_MODELS`."""

MIN_CONNECT_API_KEY = 16
"""Shortest ``CONNECT_API_KEY`` accepted: it guards paid outbound calls and the call records."""

ISO_639_1 = frozenset(
    """aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv
    cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr
    ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw
    ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv
    ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr
    ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi
    yo za zh zu""".split()
)
"""The two-letter codes of ISO 639-1."""

_LANGUAGE_NAMES = {
    "english": "en",
    "german": "de",
    "deutsch": "de",
    "french": "fr",
    "spanish": "es",
    "italian": "it",
    "japanese": "ja",
    "chinese": "zh",
    "portuguese": "pt",
    "dutch": "nl",
}


def is_realtime_model(name: str) -> bool:
    """Whether ``name`` is a known Realtime model or of a Realtime family."""
    return name in REALTIME_MODELS or REALTIME_MODEL_RE.fullmatch(name) is not None


def _on(value: str) -> bool:
    return value.strip().lower() not in ("off", "false", "0", "no")


def sanity_problems(given: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """``(problems, warnings)`` for the non-empty variables ``given``: each a line naming the
    variable; problems stop start-up, warnings are logged. Secrets are never shown."""
    problems: list[str] = []
    warnings: list[str] = []
    for name in _LOOKS_CHECKED:
        value = given.get(name, "").strip()
        if not value:
            continue
        shown = "***" if name != "SERVER_URL" else repr(value)
        bare = value.split("://", 1)[-1].rstrip("/") if name == "SERVER_URL" else value
        if bare in PLACEHOLDERS.get(name, ()):
            problems.append(
                f"{name}={shown}: is the placeholder from .env.example; set your own value"
            )
        elif _PLACEHOLDER_RE.search(value):
            problems.append(f"{name}={shown}: looks like a placeholder; set your own value")
    model = given.get("OPENAI_MODEL", "").strip()
    if model and _on(given.get("OPENAI_MODEL_CHECK", "on")) and not is_realtime_model(model):
        line = (
            f"OPENAI_MODEL={model!r}: is not a Realtime model (gpt-realtime, gpt-realtime-mini, "
            "gpt-4o-realtime-preview, ...); set OPENAI_MODEL_CHECK=off for a newer name"
        )
        if given.get("OPENAI_API_VERSION", "").strip():
            warnings.append(line + " (Azure: if it is a deployment name, ignore this)")
        else:
            problems.append(line)
    language = given.get("OPENAI_TRANSCRIPTION_LANGUAGE", "").strip()
    if language and language not in ISO_639_1:
        hint = _LANGUAGE_NAMES.get(language.lower()) or (
            language[:2].lower() if language[:2].lower() in ISO_639_1 else None
        )
        problems.append(
            f"OPENAI_TRANSCRIPTION_LANGUAGE={language!r}: must be an ISO-639-1 code "
            f"(two lower-case letters{f', e.g. {hint!r}' if hint else ', e.g. en'})"
        )
    connect_key = given.get("CONNECT_API_KEY", "").strip()
    if connect_key and len(connect_key) < MIN_CONNECT_API_KEY:
        problems.append(
            f"CONNECT_API_KEY=***: is shorter than {MIN_CONNECT_API_KEY} characters (it guards "
            "paid outbound calls and the call records; e.g. openssl rand -hex 16)"
        )
    key = given.get("OPENAI_API_KEY", "").strip()
    if key and not given.get("OPENAI_API_VERSION") and not key.startswith("sk-"):
        warnings.append(
            "OPENAI_API_KEY=***: does not start with sk- like OpenAI's keys "
            "(fine for another compatible server)"
        )
    return problems, warnings


def transfer_problem(
    transfer_number: str | None, *, vonage_rest: bool, twilio_rest: bool, sip: bool
) -> str | None:
    """A line when ``TRANSFER_NUMBER`` is set but no front door can transfer: the Vonage Voice
    API (``VONAGE_APPLICATION_ID`` and its private key), Twilio REST (``TWILIO_ACCOUNT_SID``
    and ``TWILIO_AUTH_TOKEN``) or the OpenAI SIP connector (``OPENAI_WEBHOOK_SECRET``, SIP
    REFER); else None."""
    if not transfer_number or vonage_rest or twilio_rest or sip:
        return None
    return (
        "TRANSFER_NUMBER is set but no front door can transfer a call; set "
        "VONAGE_APPLICATION_ID and VONAGE_PRIVATE_KEY(_PATH) (Vonage), TWILIO_AUTH_TOKEN "
        "(Twilio) or OPENAI_WEBHOOK_SECRET (SIP), or unset TRANSFER_NUMBER"
    )

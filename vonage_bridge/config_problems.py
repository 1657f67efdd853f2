"""The lines of a :class:`~vonage_bridge.errors.ConfigError`, one per problem, each naming the
variable and its value (secrets as ``***``, URL passwords masked; paths shown). Pure.

:func:`env_problems` finds what no single field can see (variables that go together);
:func:`describe` words one pydantic validation error. ``Settings.from_env`` raises them all
at once. Source: https://docs.pydantic.dev/latest/errors/validation_errors/
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

SECRETS = frozenset(
    ("OPENAI_API_KEY", "MEDIA_TOKEN_SECRET", "VONAGE_PRIVATE_KEY", "CONNECT_API_KEY")
    + ("VONAGE_SIGNATURE_SECRET", "TWILIO_AUTH_TOKEN", "OPENAI_WEBHOOK_SECRET")
    + ("CALLBACK_SECRET",)
)
"""Variables whose value a :class:`~vonage_bridge.errors.ConfigError` shows as ``***``."""
_REASONS = {
    "int_parsing": "is not an integer",
    "int_from_float": "is not an integer",
    "float_parsing": "is not a number",
    "bool_parsing": "must be true or false",
    "string_too_long": "is longer than {max_length} characters",
    "too_short": "must be at least {min_length} bytes long",
}
_BOOL = TypeAdapter(bool)
_URL_PASSWORD = re.compile(r"(://[^/@:\s]*:)[^/@\s]*@")
_OPT_OUT = (
    "or set ALLOW_UNSIGNED_WEBHOOKS=true to accept unsigned webhooks (local runs only: "
    "UNSIGNED_CALLS_PER_MINUTE then bounds the calls)"
)


def env_problems(given: Mapping[str, str]) -> list[str]:
    """A line for each combination of the non-empty variables ``given`` that start-up refuses:
    both private-key forms, a Twilio token without its account, and a front door that would
    take unsigned webhooks without ``ALLOW_UNSIGNED_WEBHOOKS``: the Vonage one (always
    mounted) without ``VONAGE_SIGNATURE_SECRET``, the Twilio one (``TWILIO_ACCOUNT_SID``)
    without ``TWILIO_AUTH_TOKEN``. An invalid ``ALLOW_UNSIGNED_WEBHOOKS`` counts as false (it
    is reported on its own line). Sources:
    https://developer.nexmo.com/voice/voice-api/guides/signed-webhooks,
    https://www.twilio.com/docs/usage/webhooks/webhooks-security
    """
    problems = []
    if given.get("VONAGE_PRIVATE_KEY", "").strip() and given.get("VONAGE_PRIVATE_KEY_PATH"):
        problems.append("VONAGE_PRIVATE_KEY and VONAGE_PRIVATE_KEY_PATH: set only one")
    if given.get("TWILIO_AUTH_TOKEN", "").strip() and not given.get("TWILIO_ACCOUNT_SID"):
        problems.append(
            "TWILIO_ACCOUNT_SID is required when TWILIO_AUTH_TOKEN is set "
            "(the account the token belongs to, AC...)"
        )
    try:
        allowed = _BOOL.validate_python(given.get("ALLOW_UNSIGNED_WEBHOOKS", "false").strip())
    except ValidationError:
        allowed = False
    if allowed:
        return problems
    if not given.get("VONAGE_SIGNATURE_SECRET", "").strip():
        problems.append(
            "VONAGE_SIGNATURE_SECRET is required: without it anyone who reaches the answer URL "
            "gets a media token and a paid Realtime session (set the signature secret of the "
            f"Vonage account, Dashboard settings; {_OPT_OUT})"
        )
    if given.get("TWILIO_ACCOUNT_SID", "").strip() and not given.get("TWILIO_AUTH_TOKEN", ""):
        problems.append(
            "TWILIO_AUTH_TOKEN is required when TWILIO_ACCOUNT_SID is set: without it anyone "
            "who reaches /twilio/incoming-call gets a media token and a paid Realtime session "
            f"(the account's Auth Token, Twilio console; {_OPT_OUT})"
        )
    return problems


def describe(error: ErrorDetails, fields: Mapping[str, FieldInfo]) -> str:
    """One line for a validation error of a settings field: the variable, its value (secrets
    hidden, URL passwords masked), what is wrong. ``fields``: each variable's field, where a
    bound error finds both bounds (``ge``, ``le``) of the field it names."""
    name, kind, ctx = str(error["loc"][-1]), error["type"], error.get("ctx", {})
    if kind == "missing":
        return f"{name} is required but not set"
    if kind in ("greater_than_equal", "less_than_equal"):
        meta = fields[name].metadata
        lo, hi = (next(getattr(m, k) for m in meta if hasattr(m, k)) for k in ("ge", "le"))
        reason = f"must be between {lo} and {hi}"
    elif kind == "value_error":
        reason = str(ctx["error"])
    else:
        reason = _REASONS[kind].format(**ctx) if kind in _REASONS else error["msg"]
    shown = "***" if name in SECRETS else _URL_PASSWORD.sub(r"\1***@", repr(error["input"]))
    return f"{name}={shown}: {reason}"

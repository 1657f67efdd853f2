"""The ``POST /connect`` body, checked field by field. Pure: no I/O.

:func:`parse_connect` turns the JSON object into a :class:`ConnectRequest` or raises
:class:`InvalidField` naming the first bad field (unknown fields are refused, never dropped).
Numbers are parsed with ``phonenumbers``: ``"+81 80-1234-5678"`` becomes ``+818012345678``;
digits without ``+`` are read as E.164 as before; a national number (``080-1234-5678``) needs
``region`` (an ISO 3166-1 alpha-2 code such as ``JP``).

Sources: E.164 and libphonenumber (https://github.com/google/libphonenumber, the
``phonenumbers`` port https://github.com/daviddrysdale/python-phonenumbers); Vonage Advanced
Machine Detection (https://developer.vonage.com/en/api/voice#createCall); Twilio
``MachineDetection`` (https://www.twilio.com/docs/voice/answering-machine-detection).
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import phonenumbers

from ..errors import InvalidField
from .call_context import RESERVED_VARIABLES, ConnectContext, MachineDetection

__all__ = [
    "FIELDS",
    "MAX_INSTRUCTIONS_CHARS",
    "MAX_METADATA_BYTES",
    "MAX_VARIABLE_CHARS",
    "MAX_VARIABLES",
    "ConnectRequest",
    "InvalidField",
    "parse_connect",
    "parse_number",
]

FIELDS = (
    "to",
    "from",
    "region",
    "via",
    "assistant",
    "instructions",
    "variables",
    "metadata",
    "status_url",
    "machine_detection",
)
"""Every field ``POST /connect`` takes."""
VIAS = ("vonage", "twilio")
MAX_VARIABLES = 32
MAX_VARIABLE_CHARS = 1000
MAX_INSTRUCTIONS_CHARS = 8000
MAX_MESSAGE_CHARS = 1000
MAX_METADATA_BYTES = 2048
"""``metadata`` as compact UTF-8 JSON, at most."""
MAX_URL_CHARS = 2048
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_ASSISTANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_REGION = re.compile(r"[A-Za-z]{2}")
_LOOPBACK_NAMES = frozenset({"localhost"})


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    """A checked ``POST /connect`` body.

    Attributes:
        to: the callee, E.164 with ``+``.
        from_: the caller id, E.164 with ``+``; None: the carrier's default setting.
        via: ``vonage`` or ``twilio``.
        context: assistant, instructions, variables and metadata.
        status_url: where outcomes are posted, or None.
        machine_detection: voicemail handling, or None (off).
    """

    to: str
    from_: str | None
    via: Literal["vonage", "twilio"]
    context: ConnectContext
    status_url: str | None = None
    machine_detection: MachineDetection | None = None


def parse_number(value: object, region: str | None) -> str:
    """A phone number as E.164 with ``+``.

    Accepts ``+`` and the international number with any spacing or dashes; digits without
    ``+`` (``818012345678``, as Vonage writes numbers) when no ``region`` is given; a
    national number (``080-1234-5678``) with ``region``.

    Raises:
        ValueError: not a string, or not a possible number (the message says why).
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a phone number string, e.g. +14155550100")
    text = value.strip()
    if len(text) > 32:
        raise ValueError("is too long for a phone number")
    if region is None and not text.startswith("+"):
        if not text.isdigit() or text.startswith("0"):
            raise ValueError(
                "is not an E.164 phone number (e.g. +14155550100); a national number needs region"
            )
        text = "+" + text
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise ValueError("is not a phone number (e.g. +14155550100)") from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError("is not a possible phone number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_connect(body: dict[str, Any], *, allow_insecure_urls: bool = False) -> ConnectRequest:
    """Check a ``POST /connect`` JSON object.

    Args:
        body: the parsed JSON object.
        allow_insecure_urls: ``ALLOW_UNSIGNED_WEBHOOKS=true``: a ``status_url`` may be
            ``http://`` to a loopback host (local runs and tests); otherwise https only.
    Raises:
        InvalidField: the first bad field: ``code`` ``unknown_field`` (``field`` ``body``, the
            message names each), ``missing_field`` or ``invalid_number`` (``to`` / ``from``),
            ``invalid_field`` for the rest.
    """
    unknown = sorted(k for k in body if k not in FIELDS)
    if unknown:
        names = ", ".join(repr(k[:64]) for k in unknown[:10])
        raise InvalidField(
            "body", f"unknown field(s) {names}; known: {', '.join(FIELDS)}", code="unknown_field"
        )
    region = _region(body.get("region"))
    to = _number(body, "to", region, required=True)
    assert to is not None  # required
    from_ = _number(body, "from", region, required=False)
    via = body.get("via", "vonage")
    if via not in VIAS:
        raise InvalidField("via", f"must be one of {', '.join(VIAS)}")
    context = ConnectContext(
        assistant=_assistant(body.get("assistant")),
        instructions=_text(body.get("instructions"), "instructions", MAX_INSTRUCTIONS_CHARS),
        variables=_variables(body.get("variables")),
        metadata=_metadata(body.get("metadata")),
    )
    return ConnectRequest(
        to=to,
        from_=from_,
        via=via,
        context=context,
        status_url=_status_url(body.get("status_url"), allow_insecure_urls),
        machine_detection=_machine_detection(body.get("machine_detection")),
    )


def _region(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _REGION.fullmatch(value):
        raise InvalidField("region", "must be a two-letter ISO 3166-1 region code, e.g. JP")
    region = value.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidField("region", f"{region} is not a region phonenumbers knows")
    return region


def _number(body: dict[str, Any], name: str, region: str | None, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None:
        if not required:
            return None
        raise InvalidField(name, "is required", code="missing_field")
    try:
        return parse_number(value, region)
    except ValueError as exc:
        raise InvalidField(name, str(exc), code="invalid_number") from None


def _text(value: object, name: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidField(name, "must be a string")
    if len(value) > limit:
        raise InvalidField(name, f"is longer than {limit} characters")
    return value if value.strip() else None


def _assistant(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _ASSISTANT.fullmatch(value):
        raise InvalidField("assistant", "must be a name of 1-64 letters, digits, '_', '-' or '.'")
    return value


def _variables(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidField("variables", 'must be an object of strings, e.g. {"name": "Ann"}')
    if len(value) > MAX_VARIABLES:
        raise InvalidField("variables", f"has more than {MAX_VARIABLES} keys")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not _VARIABLE.fullmatch(key):
            raise InvalidField(
                "variables", f"{key[:64]!r} is not a name like [A-Za-z_][A-Za-z0-9_]{{0,63}}"
            )
        if key in RESERVED_VARIABLES:
            raise InvalidField("variables", f"{key!r} is reserved (the persona fills it)")
        if not isinstance(item, str):
            raise InvalidField("variables", f"{key}: must be a string")
        if len(item) > MAX_VARIABLE_CHARS:
            raise InvalidField("variables", f"{key}: longer than {MAX_VARIABLE_CHARS} characters")
        out[key] = item
    return out


def _metadata(value: object) -> dict[str, object] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidField("metadata", "must be a JSON object")
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_METADATA_BYTES:
        raise InvalidField("metadata", f"is larger than {MAX_METADATA_BYTES} bytes of JSON")
    return value


def _status_url(value: object, allow_insecure: bool) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_URL_CHARS:
        raise InvalidField("status_url", f"must be a URL of at most {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InvalidField("status_url", "is not a URL") from None
    if not host or parts.username or parts.password or parts.fragment:
        raise InvalidField("status_url", "must be https://host/path, without user or fragment")
    if parts.scheme == "https":
        return value
    if parts.scheme == "http" and allow_insecure and _is_loopback(host):
        return value
    hint = " (http only to a loopback host with ALLOW_UNSIGNED_WEBHOOKS=true)"
    raise InvalidField("status_url", f"must be an https:// URL{hint}")


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _machine_detection(value: object) -> MachineDetection | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidField("machine_detection", 'must be an object like {"on_machine": "hangup"}')
    extra = sorted(k for k in value if k not in ("on_machine", "message"))
    if extra:
        raise InvalidField("machine_detection", f"unknown field(s) {', '.join(extra)}")
    on_machine = value.get("on_machine")
    message = _text(value.get("message"), "machine_detection", MAX_MESSAGE_CHARS)
    if on_machine == "hangup":
        return MachineDetection("hangup", message)
    if on_machine == "leave_message":
        if message is None:
            raise InvalidField("machine_detection", "leave_message needs a message")
        return MachineDetection("leave_message", message)
    raise InvalidField("machine_detection", "on_machine must be hangup or leave_message")

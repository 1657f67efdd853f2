"""Phone numbers and untrusted call fields. Pure.

Numbers go to Vonage as E.164 digits without ``+``; fields taken from a webhook (caller,
called number, call id) are bounded before they travel on in NCCO websocket ``headers`` or
TwiML ``<Parameter>``s.

Source: ITU-T E.164; Vonage Voice API reference (``from``/``to`` numbers,
https://developer.vonage.com/en/api/voice); Vonage WebSockets guide (``headers`` limit,
https://developer.vonage.com/en/voice/voice-api/concepts/websockets).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

MAX_HEADERS_BYTES = 512
"""Vonage caps the ``headers`` object of a websocket endpoint at 512 bytes of JSON (Vonage
WebSockets guide, see the module sources)."""
MAX_HEADER_VALUE_CHARS = 64
_UNSAFE = re.compile(r"[^\w+\-.:@ ]")
_E164 = re.compile(r"\+?([1-9][0-9]{6,14})")  # fullmatch; ASCII digits only


def bounded_headers(fields: Mapping[str, object]) -> dict[str, str]:
    """Untrusted call fields made safe for the endpoint ``headers``.

    Each value becomes a string of at most 64 characters from a small safe set; empty values
    are left out; fields are dropped from the end if the JSON would exceed 512 bytes.
    """
    out: dict[str, str] = {}
    for key, value in fields.items():
        if value is None:
            continue
        text = _UNSAFE.sub("", str(value))[:MAX_HEADER_VALUE_CHARS]
        if text:
            out[key] = text
    while out and len(json.dumps(out, separators=(",", ":")).encode()) > MAX_HEADERS_BYTES:
        out.popitem()
    return out


def e164_digits(value: object) -> str:
    """A phone number in E.164 form, with or without ``+``, as the digits Vonage wants.

    ``"+818012345678"`` and ``"818012345678"`` both give ``"818012345678"``; spaces, dashes,
    a leading 0 and anything shorter than 7 or longer than 15 digits are refused.

    Raises:
        ValueError: if ``value`` is not such a string.
    Source: https://developer.vonage.com/en/voice/voice-api/ncco-reference (``connect``
    ``from``); the vonage-utils SDK's ``PhoneNumber`` type, ``^[1-9]\\d{6,14}$``
    (https://github.com/Vonage/vonage-python-sdk).
    """
    if not isinstance(value, str):
        raise ValueError("must be an E.164 phone number string, e.g. +14155550100")
    match = _E164.fullmatch(value)
    if match is None:
        raise ValueError("is not an E.164 phone number (e.g. +14155550100)")
    return match.group(1)

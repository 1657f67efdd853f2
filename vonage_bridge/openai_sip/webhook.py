"""OpenAI SIP webhooks: signature check, ``realtime.call.incoming`` parsing, the caller's
number, screening, and the accept body. Pure: no I/O, no clock (times are passed in; the
Standard Webhooks library reads the clock for its 5-minute tolerance).

Sources: Realtime SIP guide (https://platform.openai.com/docs/guides/realtime-sip: webhook
body, call control), Standard Webhooks (https://www.standardwebhooks.com/).
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from ..config import SipSettings
from ..core.assistant import Assistant, session_config
from ..core.jsonbody import loads_object
from ..errors import WebhookRejected

INCOMING_CALL = "realtime.call.incoming"
MAX_HEADERS = 64
MAX_HEADER_NAME = 64
MAX_HEADER_VALUE = 512
MAX_CALL_ID = 128
BUSY = 486
DECLINE = 603

_SAFE = re.compile(r"[^\x20-\x7e]")
_CALL_ID = re.compile(r"[A-Za-z0-9_\-]{1,128}")
_SIP_NUMBER = re.compile(r"(?:sips?|tel):(\+?[0-9][0-9\-.()]{5,20})(?=[@;>?]|$)", re.IGNORECASE)


def webhook_verifier(secret: str) -> Webhook:
    """The verifier for ``OPENAI_WEBHOOK_SECRET`` (``whsec_<base64>``)."""
    return Webhook(secret)


def verify_webhook(verifier: Webhook, body: bytes, headers: Mapping[str, str]) -> str:
    """Check a webhook's Standard Webhooks signature over the raw ``body``; 5 minutes'
    tolerance either way. Returns its ``webhook-id``.

    Raises:
        WebhookRejected: missing headers, no matching signature, a timestamp out of
            tolerance, or malformed signature entries (the library raises ``ValueError``
            for an entry without a comma, ``binascii.Error`` for bad base64).
    """
    wanted = {k: v for k, v in headers.items() if k.lower().startswith("webhook-")}
    try:
        verifier.verify(body, wanted, json_parse=False)
    except WebhookVerificationError as exc:
        raise WebhookRejected(str(exc) or "invalid signature") from None
    except (ValueError, TypeError, binascii.Error):  # UnicodeDecodeError is a ValueError
        raise WebhookRejected("malformed webhook-signature or body") from None
    msg_id = {k.lower(): v for k, v in wanted.items()}.get("webhook-id", "")
    return safe_text(msg_id, 256)


def safe_text(value: object, limit: int) -> str:
    """Untrusted text made short and printable ASCII."""
    if not isinstance(value, str):
        return ""
    return _SAFE.sub("?", value[:limit])


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """A ``realtime.call.incoming`` event.

    Attributes:
        call_id: ``rtc_...`` (safe characters only).
        sip_headers: header name -> first value, bounded and printable (untrusted).
        caller / called: E.164 with ``+`` from the ``From`` / ``To`` URIs, when found.
    """

    call_id: str
    sip_headers: dict[str, str]
    caller: str | None
    called: str | None


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified webhook: its ``type``, and the call when it is an incoming call."""

    type: str
    call: IncomingCall | None = None


def parse_event(body: bytes) -> WebhookEvent:
    """Parse a verified webhook body.

    Raises:
        WebhookRejected: not a JSON object with a ``type`` (JSON nested deeper than 32 levels
            included), or an incoming call without a usable ``call_id``.
    """
    doc = loads_object(body, WebhookRejected, "body")
    if not isinstance(doc.get("type"), str):
        raise WebhookRejected("body is not an event object with a type")
    kind = safe_text(doc["type"], 64)
    if kind != INCOMING_CALL:
        return WebhookEvent(kind)
    data = doc.get("data")
    data = data if isinstance(data, dict) else {}
    call_id = data.get("call_id")
    if not isinstance(call_id, str) or not _CALL_ID.fullmatch(call_id):
        raise WebhookRejected("realtime.call.incoming without a valid data.call_id")
    headers = sip_headers(data.get("sip_headers"))
    return WebhookEvent(
        kind,
        IncomingCall(
            call_id=call_id,
            sip_headers=headers,
            caller=number_from_uri(headers.get("from", "")),
            called=number_from_uri(headers.get("to", "")),
        ),
    )


def sip_headers(value: object) -> dict[str, str]:
    """``[{name, value}, ...]`` as lower-case name -> first value, bounded and printable."""
    out: dict[str, str] = {}
    if not isinstance(value, list):
        return out
    for entry in value[:MAX_HEADERS]:
        if not isinstance(entry, dict):
            continue
        name = safe_text(entry.get("name"), MAX_HEADER_NAME).strip().lower()
        if name and name not in out:
            out[name] = safe_text(entry.get("value"), MAX_HEADER_VALUE)
    return out


def number_from_uri(header: str) -> str | None:
    """The phone number of a SIP ``From``/``To`` value as E.164 with ``+``, or None.

    ``<sip:+818012345678@pstn.twilio.com;user=phone>`` -> ``+818012345678``; a user part
    that is not 7-15 digits (``sip:alice@...``, anonymous) gives None.
    """
    match = _SIP_NUMBER.search(header)
    if match is None:
        return None
    digits = re.sub(r"[^0-9]", "", match.group(1))
    if not 7 <= len(digits) <= 15 or digits.startswith("0"):
        return None
    return "+" + digits


def screen(caller: str | None, sip: SipSettings, live_calls: int) -> int | None:
    """The SIP status to reject a call with, or None to accept it: 603 for a denied caller
    (or one missing from a non-empty allow list), 486 past ``max_calls``."""
    digits = caller.removeprefix("+") if caller else None
    if digits is not None and digits in sip.deny_from:
        return DECLINE
    if sip.allow_from and digits not in sip.allow_from:
        return DECLINE
    if sip.max_calls is not None and live_calls >= sip.max_calls:
        return BUSY
    return None


def accept_session(
    assistant: Assistant, instructions: str, tools: list[dict[str, Any]]
) -> dict[str, Any]:
    """The ``/accept`` body: the call's assistant as a GA session config (its tools only).
    The audio formats are OpenAI's business on SIP, so only voice, transcription, turn
    detection and noise reduction are set
    (https://platform.openai.com/docs/guides/realtime-sip)."""
    return session_config(assistant, instructions, tools)


def greeting_event(greeting_text: str) -> dict[str, Any]:
    """``response.create`` asking the model to greet the caller (``GREETING_TEXT``)."""
    if greeting_text:
        text = f"Greet the caller now, saying exactly: {greeting_text}"
    else:
        text = "Greet the caller briefly and ask how you can help."
    return {"type": "response.create", "response": {"instructions": text}}

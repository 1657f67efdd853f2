"""Fake Twilio's HTTP side of an inbound call: the signed Voice webhook and the TwiML answer.

Entry ring (I/O): used by ``sim/twilio.py`` (``FakeTwilioCaller``), never by the core.

- Signing: ``X-Twilio-Signature`` is the HMAC-SHA1 of the URL and the sorted form fields,
  keyed with the Auth Token (the ``twilio`` package's ``RequestValidator`` computes it here);
  a WebSocket upgrade is signed over the stream URL alone.
- Routing: behind a TLS-terminating proxy (as on Fly), Twilio signs the public URL while the
  request reaches the bridge's local address with ``X-Forwarded-Proto`` / ``X-Forwarded-Host``.
- TwiML: the ``<Say>`` text before ``<Connect>``, then ``<Connect><Stream url=...>`` (the
  bidirectional stream) with its ``<Parameter>`` children.

Sources: Twilio webhooks (https://www.twilio.com/docs/usage/webhooks/voice-webhooks); webhook
security (https://www.twilio.com/docs/usage/security#validating-requests) and
``twilio/request_validator.py`` in https://github.com/twilio/twilio-python; TwiML ``<Stream>``
(https://www.twilio.com/docs/voice/twiml/stream).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from twilio.request_validator import RequestValidator

from .phone import CallerError

__all__ = [
    "API_VERSION",
    "SignatureMode",
    "TwilioCallerError",
    "TwimlAnswer",
    "parse_twiml",
    "post_voice_webhook",
    "signed_request",
]

API_VERSION: Final = "2010-04-01"
"""The ``ApiVersion`` form field Twilio posts."""

SignatureMode = Literal["valid", "invalid", "missing"]
"""How a request is signed: correctly, with a wrong Auth Token, or not at all."""

_WS_SCHEMES: Final = {"https": "wss", "http": "ws"}


class TwilioCallerError(CallerError):
    """The bridge did something real Twilio would reject (bad TwiML, refused upgrade, ...).

    Attributes:
        status: HTTP status of the failed request or refused upgrade, if there was one.
        body: response body or handshake message, if any.
    """


@dataclass(frozen=True, slots=True)
class TwimlAnswer:
    """What the bridge's TwiML asked for.

    Attributes:
        say: text of each ``<Say>`` before ``<Connect>``, in order.
        stream_url: the ``<Connect><Stream url=...>``, exactly as given.
        parameters: ``<Parameter name value>`` children of ``<Stream>``; they come back in
            ``start.customParameters``.
        stream_name: the ``<Stream name=...>`` attribute, or None.
        twiml: the raw response body.

    Source: https://www.twilio.com/docs/voice/twiml/stream (``<Connect><Stream>``).
    """

    say: tuple[str, ...]
    stream_url: str
    parameters: Mapping[str, str]
    stream_name: str | None
    twiml: str


def signed_request(
    url: str,
    params: Mapping[str, str],
    *,
    webhook_url: str,
    auth_token: str | None,
    mode: SignatureMode,
    public_base_url: str | None,
) -> tuple[str, dict[str, str]]:
    """Where a request for ``url`` goes and its headers, signed as Twilio signs it.

    Without ``public_base_url`` the request goes to ``url`` and ``url`` is signed. With it,
    ``url``'s path and query are signed under the public origin (wss for a socket), the
    request goes to ``webhook_url``'s (local) origin, and ``X-Forwarded-Proto`` /
    ``X-Forwarded-Host`` carry the public scheme and host.

    Args:
        url: the URL as the bridge gave it (the webhook, or the TwiML's stream URL).
        params: the form fields (none for a WebSocket upgrade).
        webhook_url: the bridge's Voice webhook URL: its origin is the local address.
        auth_token: the Auth Token; None sends no ``X-Twilio-Signature``.
        mode: sign correctly, with a wrong token, or not at all.
        public_base_url: the bridge's public origin (e.g. ``"https://bridge.fly.dev"``), or
            None when there is no proxy.

    Returns:
        ``(target URL, headers)``.

    Source: ``compute_signature`` in ``twilio/request_validator.py``
    (https://github.com/twilio/twilio-python).
    """
    target, signed, headers = _route(url, webhook_url, public_base_url)
    if auth_token is not None and mode != "missing":
        token = auth_token if mode == "valid" else auth_token + "-wrong"
        headers["X-Twilio-Signature"] = RequestValidator(token).compute_signature(
            signed, dict(params)
        )
    return target, headers


def _route(url: str, webhook_url: str, public: str | None) -> tuple[str, str, dict[str, str]]:
    """``(target URL, signed URL, proxy headers)`` for a request to ``url``."""
    if public is None:
        return url, url, {}
    parts = urlsplit(url)
    pub = urlsplit(public)
    local = urlsplit(webhook_url)
    is_ws = parts.scheme in ("ws", "wss")
    pub_scheme = _WS_SCHEMES[pub.scheme] if is_ws else pub.scheme
    local_scheme = _WS_SCHEMES[local.scheme] if is_ws else local.scheme
    signed = urlunsplit((pub_scheme, pub.netloc, parts.path, parts.query, ""))
    target = urlunsplit((local_scheme, local.netloc, parts.path, parts.query, ""))
    return target, signed, {"X-Forwarded-Proto": pub.scheme, "X-Forwarded-Host": pub.netloc}


async def post_voice_webhook(
    http: aiohttp.ClientSession,
    webhook_url: str,
    params: Mapping[str, str],
    *,
    auth_token: str | None,
    mode: SignatureMode,
    public_base_url: str | None,
) -> TwimlAnswer:
    """POST the Voice webhook's form fields as Twilio does and parse the TwiML answer.

    Args:
        http: the session to post with.
        webhook_url: the bridge's Voice webhook URL.
        params: the form fields (``CallSid``, ``AccountSid``, ``From``, ``To`` ...).
        auth_token, mode, public_base_url: how to sign and route it (see
            :func:`signed_request`).

    Returns:
        The parsed TwiML.

    Raises:
        TwilioCallerError: if the status is not 200, the content type is not XML (Twilio
            error 12300), the body is not a TwiML ``<Response>``, or it has no
            ``<Connect><Stream url>``.
        aiohttp.ClientError: if the request itself fails.

    Source: https://www.twilio.com/docs/usage/webhooks/voice-webhooks.
    """
    target, headers = signed_request(
        webhook_url,
        params,
        webhook_url=webhook_url,
        auth_token=auth_token,
        mode=mode,
        public_base_url=public_base_url,
    )
    headers["User-Agent"] = "TwilioProxy/1.1"
    async with http.post(target, data=dict(params), headers=headers) as response:
        status = response.status
        content_type = response.content_type
        body = await response.text()
    if status != 200:
        raise TwilioCallerError(f"webhook returned HTTP {status}", status=status, body=body)
    if "xml" not in content_type:
        raise TwilioCallerError(
            f"webhook content type {content_type!r} is not XML (Twilio error 12300)",
            status=status,
            body=body,
        )
    return parse_twiml(body)


def parse_twiml(body: str) -> TwimlAnswer:
    """Parse a Voice webhook's TwiML answer.

    Args:
        body: the response body.

    Returns:
        The ``<Say>`` texts before ``<Connect>``, and the ``<Connect><Stream>``.

    Raises:
        TwilioCallerError: if the body is not XML with a ``<Response>`` root, or has no
            ``<Connect><Stream url>`` (``<Start><Stream>`` is one-way and not enough).

    Source: https://www.twilio.com/docs/voice/twiml/stream (``<Connect><Stream>``,
    ``<Parameter>``).
    """
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise TwilioCallerError(
            f"webhook did not return XML: {exc}", status=200, body=body
        ) from exc
    if root.tag != "Response":
        raise TwilioCallerError(
            f"TwiML root is <{root.tag}>, expected <Response>", status=200, body=body
        )
    say: list[str] = []
    for verb in root:
        if verb.tag == "Say":
            say.append("".join(verb.itertext()).strip())
        elif verb.tag == "Connect":
            stream = verb.find("Stream")
            url = stream.get("url") if stream is not None else None
            if stream is None or not url:
                raise TwilioCallerError("<Connect> has no <Stream url=...>", status=200, body=body)
            parameters: dict[str, str] = {}
            for parameter in stream.findall("Parameter"):
                name = parameter.get("name")
                if not name:
                    raise TwilioCallerError("<Parameter> without a name", status=200, body=body)
                parameters[name] = parameter.get("value", "")
            return TwimlAnswer(
                say=tuple(say),
                stream_url=url,
                parameters=parameters,
                stream_name=stream.get("name"),
                twiml=body,
            )
    raise TwilioCallerError(
        "TwiML has no <Connect><Stream> (a bidirectional Media Stream)", status=200, body=body
    )

"""Twilio request validation: check the ``X-Twilio-Signature`` Twilio puts on its Voice
webhook and on the Media Streams WebSocket upgrade. Pure: takes plain values, no aiohttp.

The signature is base64 HMAC-SHA1, keyed with the account's Auth Token, over the full URL
Twilio requested followed, for a form POST, by each parameter name and value in sorted-name
order; a WebSocket upgrade has no parameters. The HMAC, the port variants (with and without
``:443``/``:80``) and the constant-time comparison are ``twilio.request_validator``'s; this
module only decides which URLs to try and turns a mismatch into our errors.

Which URL Twilio signed is the hard part behind a proxy (Fly, ngrok): the request we see is
``http://internal:8080/...`` while Twilio signed ``https://public.example/...``, and for the
media socket Twilio signs the ``wss://`` URL. :func:`candidate_urls` lists, in order, our
configured public URL, then the URL rebuilt from ``X-Forwarded-Proto``/``X-Forwarded-Host``
(or the request's own scheme and host); for an upgrade each in its ``ws(s)`` form, then its
``http(s)`` form (peers differ; TAC maps https to wss).

Errors (both 403, as the issue asks and as Twilio's own examples answer; the codes differ)::

    Forbidden   403  twilio_signature_missing: no X-Twilio-Signature header
    Forbidden   403  twilio_signature_invalid: the header matches none of the URLs

Sources: Twilio webhook security (https://www.twilio.com/docs/usage/security);
twilio-python's ``RequestValidator`` (https://github.com/twilio/twilio-python,
``twilio/request_validator.py``). Other Media Streams bridges validate the upgrade too, behind
proxies that set X-Forwarded-Proto/Host, and sign it in the https or the wss form.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlunsplit

from twilio.request_validator import RequestValidator

from ..config import PublicUrl
from ..errors import Forbidden

try:
    from twilio.request_validator import get_signature_algorithm as _get_signature_algorithm
except ImportError:  # pragma: no cover  # twilio releases before SharedKey signatures
    _get_signature_algorithm = None

__all__ = [
    "SIGNATURE_HEADER",
    "SIGNATURE_SETTINGS_HEADER",
    "candidate_urls",
    "sign_request",
    "signature_algorithm",
    "verify_twilio_signature",
]

SIGNATURE_HEADER = "X-Twilio-Signature"
SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
"""``key=<sharedKeyId>,algorithm=HMAC_SHA256`` on webhooks signed with a SharedKey."""

HMAC_SHA1 = "HMAC_SHA1"
"""The Auth Token signature; the default."""
ALGORITHMS = (HMAC_SHA1, "HMAC_SHA256")
"""What ``twilio.request_validator`` can check."""

_WS_SCHEME = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
_HTTP_SCHEME = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


def candidate_urls(
    *,
    public_url: str | PublicUrl,
    path_qs: str,
    scheme: str,
    host: str,
    forwarded_proto: str | None,
    forwarded_host: str | None,
    websocket: bool,
) -> list[str]:
    """The URLs Twilio may have signed for one request, deduplicated, most likely first.

    Args:
        public_url: ``SERVER_URL`` as :class:`PublicUrl`, or its http(s) form as text.
        path_qs: the request's path and query as received (``/twilio/media-stream?t=...``),
            not re-encoded: Twilio signs the URL as it sent it.
        scheme: the request's own scheme (``http`` or ``https``; ``ws``/``wss`` accepted).
        host: the request's own ``Host`` (``internal:8080``).
        forwarded_proto / forwarded_host: ``X-Forwarded-Proto`` / ``X-Forwarded-Host``, or
            None; of a comma-separated list (several proxies) the first value counts.
        websocket: True for the media socket's upgrade: the ``ws(s)`` form of each URL is
            tried first, then its ``http(s)`` form.
    Returns:
        Full URLs: the public URL + ``path_qs``, then the one rebuilt from the forwarded
        headers, then the one from the request's own scheme and host.
    Raises:
        ValueError: if ``public_url`` is text that :meth:`PublicUrl.parse` refuses.
    Source: https://www.twilio.com/docs/usage/security (the URL Twilio signs).
    """
    public = public_url if isinstance(public_url, PublicUrl) else PublicUrl.parse(public_url)
    path = path_qs if path_qs.startswith("/") else "/" + path_qs
    bases: list[str] = [public.ws, public.http] if websocket else [public.http]
    proto = _first(forwarded_proto) or scheme
    own_scheme = scheme.strip().lower()
    for scheme_name, netloc in (
        (proto.strip().lower(), _first(forwarded_host) or host),
        (own_scheme, host),
    ):
        if scheme_name not in _WS_SCHEME or not netloc.strip():
            continue
        if websocket:
            bases.append(urlunsplit((_WS_SCHEME[scheme_name], netloc.strip(), "", "", "")))
        bases.append(urlunsplit((_HTTP_SCHEME[scheme_name], netloc.strip(), "", "", "")))
    urls: list[str] = []
    for base in bases:
        url = base + path
        if url not in urls:
            urls.append(url)
    return urls


def signature_algorithm(settings_header: str | None) -> str:
    """The algorithm named by ``X-Twilio-Webhooks-Signature-Settings``: ``HMAC_SHA1`` (the
    Auth Token signature) when the header is absent or names none, else e.g. ``HMAC_SHA256``.

    Source: twilio-python ``request_validator.py`` ``get_signature_algorithm``
    (https://github.com/twilio/twilio-python).
    """
    if not settings_header or _get_signature_algorithm is None:
        return HMAC_SHA1
    return str(_get_signature_algorithm(settings_header))


def verify_twilio_signature(
    auth_token: str,
    urls: Sequence[str],
    params: Mapping[str, str] | None,
    signature: str | None,
    *,
    algorithm: str | None = None,
) -> str:
    """Check ``X-Twilio-Signature`` against each candidate URL.

    Args:
        auth_token: ``TWILIO_AUTH_TOKEN`` (or the SharedKey secret when the request carries
            ``X-Twilio-Webhooks-Signature-Settings``).
        urls: from :func:`candidate_urls`; must not be empty.
        params: the form POST parameters (a multidict is fine: repeated names are signed
            too); None or empty for a WebSocket upgrade or a GET.
        signature: the header value, or None when it is missing.
        algorithm: :func:`signature_algorithm` of the settings header; None means HMAC_SHA1.
    Returns:
        The URL the signature matched (for a debug log).
    Raises:
        Forbidden: ``twilio_signature_missing`` when the header is missing or blank;
            ``twilio_signature_invalid`` when it matches none of ``urls``, or
            ``algorithm`` is one the library does not support.
        ValueError: if ``urls`` is empty or ``auth_token`` is blank (a bug of the caller).
    Source: https://www.twilio.com/docs/usage/security; twilio-python's ``RequestValidator``.
    """
    if not urls:
        raise ValueError("no candidate URL to check the Twilio signature against")
    if not auth_token.strip():
        raise ValueError("the Twilio auth token is blank")
    if signature is None or not signature.strip():
        raise Forbidden(f"{SIGNATURE_HEADER} header missing", code="twilio_signature_missing")
    algorithm = (algorithm or HMAC_SHA1).upper()
    if algorithm not in ALGORITHMS:
        raise Forbidden(
            f"{SIGNATURE_SETTINGS_HEADER} names an unsupported algorithm",
            code="twilio_signature_invalid",
        )
    validator = RequestValidator(auth_token)
    for url in urls:
        if _validate(validator, url, params, signature.strip(), algorithm):
            return url
    raise Forbidden(
        f"{SIGNATURE_HEADER} does not match the request ({len(urls)} URL form(s) tried: "
        "check TWILIO_AUTH_TOKEN and that SERVER_URL is the URL configured at Twilio)",
        code="twilio_signature_invalid",
    )


def sign_request(
    auth_token: str,
    url: str,
    params: Mapping[str, str] | None = None,
    *,
    algorithm: str | None = None,
) -> str:
    """The ``X-Twilio-Signature`` Twilio would send for ``url`` and form ``params``; for the
    fakes in ``sim/`` and for tests.

    Raises:
        ValueError: if ``algorithm`` is not one the library supports.
    Source: twilio-python ``request_validator.py`` ``compute_signature``
    (https://github.com/twilio/twilio-python).
    """
    validator = RequestValidator(auth_token)
    algorithm = (algorithm or HMAC_SHA1).upper()
    if algorithm == HMAC_SHA1:  # keeps twilio releases without the algorithm argument working
        return str(validator.compute_signature(url, params or {}))
    return str(validator.compute_signature(url, params or {}, algorithm))


def _validate(
    validator: RequestValidator,
    url: str,
    params: Mapping[str, str] | None,
    signature: str,
    algorithm: str,
) -> bool:
    # A multidict (aiohttp's form) is passed as is: the library signs repeated names too.
    if algorithm == HMAC_SHA1:
        return bool(validator.validate(url, params or {}, signature))
    return bool(validator.validate(url, params or {}, signature, algorithm=algorithm))


def _first(header: str | None) -> str | None:
    """The first value of a comma-separated proxy header, or None when absent or blank."""
    if header is None:
        return None
    value = header.split(",", 1)[0].strip()
    return value or None

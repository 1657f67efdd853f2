"""Whether a public URL's host is one Vonage or Twilio could ever reach. Pure.

Used by ``change_url.py`` (which refuses such a host unless ``--force``) and
``vonage-bridge doctor`` (which fails it unless ``--allow-local``). Loopback, private,
link-local and unspecified addresses are not reachable from the internet (RFC 1918, RFC 4193,
RFC 6890); ``localhost`` names loopback (RFC 6761); ``example.*``, ``.test``, ``.invalid``,
``.example`` and ``.local`` are reserved names no carrier resolves (RFC 2606, RFC 6762);
``abc123.ngrok.app`` is the placeholder of ``.env.example``.
Sources: https://www.rfc-editor.org/rfc/rfc6890, https://www.rfc-editor.org/rfc/rfc2606
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from .config_sanity import PLACEHOLDERS

RESERVED_SUFFIXES = (".test", ".invalid", ".example", ".local", ".localhost", ".internal")
EXAMPLE_DOMAINS = ("example.com", "example.org", "example.net")


def host_refusal(url: str) -> str | None:
    """Why the host of ``url`` (an ``http(s)``/``ws(s)`` URL) cannot be reached by a carrier,
    as a phrase (``"is a loopback address"``), or None when it may be reachable."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if not host:
        return "has no host"
    if host in PLACEHOLDERS["SERVER_URL"]:
        return "is the placeholder from .env.example"
    if host == "localhost" or host.endswith(".localhost"):
        return "is a loopback name (only this machine reaches it)"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host.endswith(RESERVED_SUFFIXES) or any(
            host == d or host.endswith("." + d) for d in EXAMPLE_DOMAINS
        ):
            return "is a reserved example or local name that no carrier resolves"
        return None
    if address.is_loopback:
        return "is a loopback address (only this machine reaches it)"
    if address.is_unspecified:
        return "is the unspecified address"
    if address.is_private or address.is_link_local:
        return "is a private address (not reachable from the internet)"
    return None

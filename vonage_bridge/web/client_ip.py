"""The client's address, as far as we can trust it: :func:`client_address`.

Behind a reverse proxy (Fly.io's, a load balancer) every request comes from the proxy, so the
TCP peer's address is the proxy's: a limit keyed on it (the console's failed logins) would be
one limit for everyone, which anyone could trip to lock everyone out. ``CLIENT_IP_HEADER``
names the header the proxy puts the client's address in:

- a header holding one address, such as Fly.io's ``Fly-Client-IP``: that address;
- ``X-Forwarded-For``: its last (rightmost) entry, the one the proxy next to us appended;
  the entries before it were sent by the client and prove nothing.

Only set it behind a proxy that always sets that header: reached directly, a client can put
any address in it. A header that is missing or does not hold an IP address falls back to the
TCP peer's address.

Sources: Fly.io request headers (https://fly.io/docs/networking/request-headers/), MDN on
X-Forwarded-For (https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/X-Forwarded-For),
RFC 7239 section 5.2.
"""

from __future__ import annotations

import ipaddress

from aiohttp import web

from .keys import SETTINGS

__all__ = ["client_address"]

_FORWARDED_FOR = "x-forwarded-for"


def client_address(request: web.Request) -> str:
    """The client's IP address (text), or ``"-"`` when there is none (a Unix socket).

    Returns:
        With ``CLIENT_IP_HEADER`` set and that header holding an IP address (for
        ``X-Forwarded-For``, its rightmost entry), that address in its normal form;
        otherwise the TCP peer's address (``request.remote``).
    """
    header = request.app[SETTINGS].server.client_ip_header
    if header is not None:
        value = request.headers.get(header)
        if value is not None:
            if header.lower() == _FORWARDED_FOR:
                value = value.rsplit(",", 1)[-1]
            try:
                return str(ipaddress.ip_address(value.strip()))
            except ValueError:
                pass
    return request.remote or "-"

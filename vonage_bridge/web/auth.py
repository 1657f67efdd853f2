"""The ``X-API-Key`` guard shared by the API routes (``POST /connect``, ``GET /calls``).

The key is ``CONNECT_API_KEY``, a secret of its own (peers compared it with the Vonage
application id, which is not a secret), compared in constant time.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from ..errors import FeatureDisabled, Forbidden, Unauthorized
from .keys import SETTINGS


def require_api_key(request: web.Request, *, feature: str, disabled_code: str) -> None:
    """Check the request's ``X-API-Key`` against ``CONNECT_API_KEY``.

    Args:
        feature: what is guarded, for the error text (e.g. ``"POST /connect"``).
        disabled_code: the error code when ``CONNECT_API_KEY`` is unset.
    Raises:
        FeatureDisabled: ``CONNECT_API_KEY`` unset (503): the feature is off.
        Unauthorized: header missing (401).
        Forbidden: wrong key (403).
    """
    api_key = request.app[SETTINGS].vonage.connect_api_key
    if not api_key:
        raise FeatureDisabled(
            f"{feature} is off: set CONNECT_API_KEY to turn it on", code=disabled_code
        )
    given = request.headers.get("X-API-Key")
    if not given:
        raise Unauthorized("X-API-Key header missing", code="api_key_missing")
    if not hmac.compare_digest(
        given.encode("utf-8", "replace"), api_key.get_secret_value().encode("utf-8")
    ):
        raise Forbidden("X-API-Key is not valid", code="api_key_invalid")

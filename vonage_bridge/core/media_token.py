"""Short-lived per-call tokens for the media WebSocket URI. Pure: time is passed in.

The answer URL mints ``exp`` and ``token = HMAC-SHA256(secret, "<call_uuid>.<exp>")`` into the
websocket URI; the upgrade is refused (and no Realtime session, which costs money, is opened)
unless the token matches the call UUID and has not expired. Comparison is constant-time.

Source: field-notes.md 1.9 and 6.8 (per-call token in the media WS URL).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from ..errors import Forbidden


@dataclass(frozen=True, slots=True)
class MediaToken:
    """A minted token: ``exp`` in Unix seconds and the URL-safe token text."""

    call_uuid: str
    exp: int
    token: str


class MediaTokenSigner:
    """Mints and checks media tokens.

    Args:
        secret: the server secret (``MEDIA_TOKEN_SECRET``, or random per process).
        ttl_s: seconds a token stays valid after minting; it must outlast the greeting.
    """

    __slots__ = ("_secret", "ttl_s")

    def __init__(self, secret: bytes, ttl_s: int) -> None:
        if len(secret) < 16:
            raise ValueError("media token secret must be at least 16 bytes")
        self._secret = secret
        self.ttl_s = ttl_s

    def _sign(self, call_uuid: str, exp: int) -> str:
        mac = hmac.new(self._secret, f"{call_uuid}.{exp}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:24]).decode("ascii")

    def mint(self, call_uuid: str, now: float) -> MediaToken:
        """A token for ``call_uuid`` valid until ``now + ttl_s`` (seconds, Unix time)."""
        exp = int(now) + self.ttl_s
        return MediaToken(call_uuid, exp, self._sign(call_uuid, exp))

    def verify(self, call_uuid: str, exp: str, token: str, now: float) -> None:
        """Check a token taken from the upgrade request's query string.

        Raises:
            Forbidden: if any part is missing, malformed, expired or does not match.
        """
        if not call_uuid or not exp or not token:
            raise Forbidden("media token missing", code="media_token_missing")
        try:
            exp_s = int(exp)
        except ValueError:
            raise Forbidden("media token malformed", code="media_token_invalid") from None
        expected = self._sign(call_uuid, exp_s)
        if not hmac.compare_digest(expected.encode(), token.encode("utf-8", "replace")):
            raise Forbidden("media token does not match", code="media_token_invalid")
        if now > exp_s:
            raise Forbidden("media token expired", code="media_token_expired")

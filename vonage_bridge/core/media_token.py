"""Short-lived, single-use per-call tokens for the media WebSocket URI. Pure: time is passed in.

The answer URL mints ``exp`` and ``token = HMAC-SHA256(secret, "<call_uuid>.<exp>")`` into the
websocket URI (Twilio: into the stream's ``<Parameter>``s); the upgrade is refused (and no
Realtime session, which costs money, is opened) unless the token matches the call id, has not
expired and has not been used before. Comparison is constant-time.

A token is spent by :meth:`MediaTokenSigner.redeem` and remembered (its call id and token) until
it expires, so reconnecting to a finished call's media URI is refused. The memory is per
instance and bounded (:data:`MAX_USED_TOKENS`, the oldest use forgotten first); with
PostgreSQL the media routes also spend the token in the shared ``claims`` table
(``web.claims.spend_shared``), so it opens one socket across every instance. The call store
writes a record once, so even a replay that gets past it cannot replace the call's record.

Sources: HMAC (RFC 2104, https://www.rfc-editor.org/rfc/rfc2104); the ``connect`` action's
websocket ``uri`` (https://developer.vonage.com/en/voice/voice-api/ncco-reference); Twilio's
``<Stream>`` ``<Parameter>`` (https://www.twilio.com/docs/voice/twiml/stream).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from ..errors import Forbidden
from .replay import SeenIds

MAX_USED_TOKENS = 10_000
"""Spent tokens remembered per instance; past this the oldest use is forgotten (that token
could then be used again until it expires: the call store still keeps the first record)."""


@dataclass(frozen=True, slots=True)
class MediaToken:
    """A minted token: ``exp`` in Unix seconds and the URL-safe token text."""

    call_uuid: str
    exp: int
    token: str


class MediaTokenSigner:
    """Mints, checks and spends media tokens.

    Args:
        secret: the server secret (``MEDIA_TOKEN_SECRET``, or random per process), at least
            16 bytes.
        ttl_s: seconds a token stays valid after minting; it must outlast the greeting.
        max_used: spent tokens remembered (see :data:`MAX_USED_TOKENS`).

    Raises:
        ValueError: the secret is shorter than 16 bytes, or ``max_used`` is less than 1.
    """

    __slots__ = ("_secret", "_used", "ttl_s")

    def __init__(self, secret: bytes, ttl_s: int, *, max_used: int = MAX_USED_TOKENS) -> None:
        if len(secret) < 16:
            raise ValueError("media token secret must be at least 16 bytes")
        self._secret = secret
        self.ttl_s = ttl_s
        self._used = SeenIds(max_used)  # (call_uuid, token) until the token expires

    def _sign(self, call_uuid: str, exp: int) -> str:
        mac = hmac.new(self._secret, f"{call_uuid}.{exp}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:24]).decode("ascii")

    def mint(self, call_uuid: str, now: float) -> MediaToken:
        """A token for ``call_uuid`` valid until ``now + ttl_s`` (seconds, Unix time)."""
        exp = int(now) + self.ttl_s
        return MediaToken(call_uuid, exp, self._sign(call_uuid, exp))

    def _check(self, call_uuid: str, exp: str, token: str, now: float) -> int:
        """``exp`` as Unix seconds, once the token is known to be ours, valid and unused."""
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
        if self._used.seen((call_uuid, token), now):
            raise Forbidden("media token already used", code="media_token_used")
        return exp_s

    def verify(self, call_uuid: str, exp: str, token: str, now: float) -> None:
        """Check a token taken from the upgrade request's query string (or the Twilio stream's
        parameters) without spending it.

        Args:
            call_uuid / exp / token: as the request gave them (``exp`` in Unix seconds).
            now: Unix time, s.

        Raises:
            Forbidden: ``media_token_missing`` (a part is empty), ``media_token_invalid``
                (malformed or does not match), ``media_token_expired``, or
                ``media_token_used`` (:meth:`redeem` already spent it).
        """
        self._check(call_uuid, exp, token, now)

    def redeem(self, call_uuid: str, exp: str, token: str, now: float) -> None:
        """Check a token as :meth:`verify` does and spend it: it is remembered until it
        expires, and every later :meth:`verify` or :meth:`redeem` of it is refused.

        Raises:
            Forbidden: as :meth:`verify`.
        """
        exp_s = self._check(call_uuid, exp, token, now)  # refuses a spent token
        self._used.check_and_add((call_uuid, token), now, expires_at=exp_s)

"""A bounded, expiring memory of ids already seen: the replay and duplicate guard of the
webhooks. Pure: no I/O, no clock (``now`` is passed in, Unix time in s).

Used for OpenAI's ``webhook-id`` (a retried delivery is answered once) and for Vonage's
signed-webhook JWTs (a token is accepted once, by its ``jti``). The memory is per instance;
with PostgreSQL, the webhook ids, SIP calls, media tokens and Twilio streams are also claimed
once across every instance (``cluster.Cluster.claim_once``), after this memory answered. Its
size is capped, the oldest id evicted first, so a flood of fresh ids cannot grow it; an evicted
id would be accepted again, so size the cap above the ids one instance sees within their
lifetime.

Also the single-use memory of the media tokens (``core.media_token``: a spent token is
refused until it expires) and of the Twilio streams already started (a replayed Voice webhook
mints a fresh token for the same CallSid): an id is any hashable key there, e.g.
``(call_uuid, token)``.

Sources: https://www.standardwebhooks.com/ (``webhook-id`` dedupe),
https://developer.nexmo.com/voice/voice-api/guides/signed-webhooks (``jti``, ``iat``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

__all__ = ["SeenIds"]


class SeenIds:
    """The last ``capacity`` ids, each remembered until it expires.

    Args:
        capacity: most ids kept (at least 1); adding one more evicts the oldest.
        ttl_s: how long (s) an id is remembered when :meth:`check_and_add` is given no
            ``expires_at``.
    Raises:
        ValueError: ``capacity`` below 1 or ``ttl_s`` not positive.
    """

    __slots__ = ("_expiry", "capacity", "ttl_s")

    def __init__(self, capacity: int = 1024, ttl_s: float = 3600.0) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        if not ttl_s > 0:
            raise ValueError(f"ttl_s must be positive, not {ttl_s}")
        self.capacity = capacity
        self.ttl_s = ttl_s
        self._expiry: OrderedDict[Hashable, float] = OrderedDict()  # id -> when it expires

    def seen(self, key: Hashable, now: float) -> bool:
        """Whether ``key`` was seen and has not expired by ``now`` (read-only)."""
        until = self._expiry.get(key)
        return until is not None and until >= now

    def check_and_add(self, key: Hashable, now: float, *, expires_at: float | None = None) -> bool:
        """Whether ``key`` was seen and has not expired by ``now``; remembers it either way,
        until ``expires_at`` (Unix time, s; default ``now + ttl_s``), as the newest id. Seen
        again, it is remembered until the later of its two expiries."""
        expiry = self._expiry
        while expiry:  # drop expired ids from the old end (ids behind it go by the cap)
            oldest, until = next(iter(expiry.items()))
            if until >= now:
                break
            del expiry[oldest]
        known = expiry.get(key)
        seen = known is not None and known >= now
        new = now + self.ttl_s if expires_at is None else expires_at
        expiry[key] = new if known is None else max(known, new)
        expiry.move_to_end(key)
        while len(expiry) > self.capacity:
            expiry.popitem(last=False)
        return seen

    def __len__(self) -> int:
        return len(self._expiry)

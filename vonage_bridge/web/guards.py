"""Per-instance guards of the answer and event webhooks, kept on the app
(``web.keys.GUARDS``): the replay memory of Vonage's signed-webhook tokens.

It is per instance: several instances behind one URL each accept a replayed token once.

Source: https://developer.nexmo.com/voice/voice-api/guides/signed-webhooks
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.replay import SeenIds
from ..vonage.signing import LEEWAY_S, MAX_AGE_S

SEEN_JWTS_CAPACITY = 16_384
"""Vonage tokens remembered at most (about 3 MB): a token lives ``MAX_AGE_S + LEEWAY_S``
(6 min), so this holds 45 signed webhooks a second, several per call, before the oldest is
evicted early (an evicted token would be accepted once more)."""


@dataclass(slots=True)
class WebhookGuards:
    """The guards of one app.

    Attributes:
        seen_jwts: Vonage signed-webhook tokens already used (``vonage.signing``): each is
            good once, on the answer and event URLs and the media handshake.
    """

    seen_jwts: SeenIds

    @classmethod
    def new(cls) -> WebhookGuards:
        """Fresh guards for one app."""
        return cls(seen_jwts=SeenIds(SEEN_JWTS_CAPACITY, ttl_s=MAX_AGE_S + 2 * LEEWAY_S))

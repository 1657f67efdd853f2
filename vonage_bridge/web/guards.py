"""Per-instance guards of the answer and event webhooks, kept on the app
(``web.keys.GUARDS``): the replay memory of Vonage's signed-webhook tokens, and the limit on
media tokens minted by unsigned answer URLs (``ALLOW_UNSIGNED_WEBHOOKS=true``).

Both are per instance: several instances behind one URL each accept a replayed token once,
and each mints up to ``UNSIGNED_CALLS_PER_MINUTE`` unsigned calls a minute.

Sources: https://developer.nexmo.com/voice/voice-api/guides/signed-webhooks,
https://www.rfc-editor.org/rfc/rfc6585#section-4 (429).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..config import Settings
from ..core.ratelimit import MintLimit
from ..core.replay import SeenIds
from ..errors import TooManyRequests
from ..vonage.signing import LEEWAY_S, MAX_AGE_S

log = logging.getLogger(__name__)

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
        unsigned_calls: media tokens minted by unsigned answer URLs (Vonage and Twilio
            together) in the last minute, at most ``UNSIGNED_CALLS_PER_MINUTE``.
    """

    seen_jwts: SeenIds
    unsigned_calls: MintLimit

    @classmethod
    def for_settings(cls, settings: Settings) -> WebhookGuards:
        """Fresh guards for an app built with ``settings``."""
        return cls(
            seen_jwts=SeenIds(SEEN_JWTS_CAPACITY, ttl_s=MAX_AGE_S + 2 * LEEWAY_S),
            unsigned_calls=MintLimit(settings.webhooks.unsigned_calls_per_minute),
        )

    def refuse_unsigned_call(self, now: float) -> TooManyRequests | None:
        """Count one media token about to be minted for an unsigned answer request (``now``:
        monotonic time, s): None to go on, or the 429 to answer with, past
        ``UNSIGNED_CALLS_PER_MINUTE``. Call it inside the call's ``logs.call_context``: the
        refusals are logged there, the first at once and then one line a minute with their
        count. Answer the 429 without raising it (``middleware.error_response``): the
        middleware would log every request of a flood.
        """
        limit = self.unsigned_calls
        if limit.take(now):
            return None
        refused = limit.report_due(now)
        if refused:
            log.warning(
                "unsigned answer URLs over UNSIGNED_CALLS_PER_MINUTE=%d: %d call(s) refused "
                "with 429 since the last such line (sign the webhooks, or raise the limit)",
                limit.per_minute,
                refused,
            )
        return TooManyRequests(
            "too many unsigned calls this minute; try again later", code="too_many_calls"
        )

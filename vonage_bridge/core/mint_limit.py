"""How many media tokens unsigned answer URLs may mint: at most ``per_minute`` in any 60 s
(a sliding window). Pure: no I/O, no clock (``now`` is passed in, s, from a monotonic clock).

With ``ALLOW_UNSIGNED_WEBHOOKS=true`` anyone who reaches an unsigned answer URL gets a media
token, and with it a paid Realtime session; this bounds the cost. The count is per instance.
Memory: one float per allowed call of the last minute (``per_minute`` at most).
"""

from __future__ import annotations

from collections import deque

__all__ = ["WINDOW_S", "MintLimit"]

WINDOW_S = 60.0
"""The window (s) the limit counts over, and the least time between two reports."""


class MintLimit:
    """At most ``per_minute`` tokens in any :data:`WINDOW_S`; refusals are counted so that
    they can be logged once a minute (:meth:`report_due`), not once per request.

    Args:
        per_minute: tokens allowed per window, at least 1.
    Raises:
        ValueError: ``per_minute`` below 1.
    """

    def __init__(self, per_minute: int) -> None:
        if per_minute < 1:
            raise ValueError(f"per_minute must be at least 1, not {per_minute}")
        self.per_minute = per_minute
        self._minted: deque[float] = deque(maxlen=per_minute)  # when, oldest first
        self._refused = 0
        self._reported_at: float | None = None

    def take(self, now: float) -> bool:
        """Mint one token at ``now`` if fewer than ``per_minute`` were minted in the last
        :data:`WINDOW_S`: True; else count a refusal: False."""
        minted = self._minted
        if len(minted) == self.per_minute and now - minted[0] < WINDOW_S:
            self._refused += 1
            return False
        minted.append(now)  # the deque's maxlen drops the oldest
        return True

    def report_due(self, now: float) -> int:
        """The refusals to log now, counted since the last report: the first refusal is
        reported at once, later ones at most once per :data:`WINDOW_S`; 0 when none is due."""
        if self._refused == 0:
            return 0
        if self._reported_at is not None and now - self._reported_at < WINDOW_S:
            return 0
        refused, self._refused, self._reported_at = self._refused, 0, now
        return refused

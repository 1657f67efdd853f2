"""Rate limits. Pure: time is passed in (seconds on any monotonic clock); nothing here reads a
clock. Two policies, for two different questions:

- :class:`TokenBucket`: how fast may something arrive, with a bounded burst? The bridge uses
  one per call on the caller's audio, counted in seconds of audio: a phone network delivers
  audio at real time (Vonage and Twilio send one 20 ms frame every 20 ms), so audio arriving
  faster than that is not a caller speaking, and forwarding it to Realtime would bill us for
  it. The bucket refills at ``rate`` units per second up to ``burst`` units; each arrival
  takes its cost in units, and one that finds too few is refused (the caller drops it). It
  runs once per frame (50 a second per call): :meth:`TokenBucket.take` allocates nothing and
  costs a few float operations.
- :class:`MintLimit`: how many media tokens may unsigned answer URLs mint? At most
  ``per_minute`` in any :data:`WINDOW_S` (a sliding window, so the figure an operator sets
  in ``UNSIGNED_CALLS_PER_MINUTE`` is exactly what any minute allows; a bucket would let a
  full burst through again after a partial refill). With ``ALLOW_UNSIGNED_WEBHOOKS=true``
  anyone who reaches an unsigned answer URL gets a media token, and with it a paid Realtime
  session; this bounds the cost. The count is per instance. Memory: one float per allowed
  call of the last minute (``per_minute`` at most).

Source: RFC 2697 ("A Single Rate Three Color Marker"), section 3: its committed bucket (a
rate and a burst size), refusing instead of colouring.
"""

from __future__ import annotations

from collections import deque

__all__ = ["WINDOW_S", "MintLimit", "TokenBucket"]

WINDOW_S = 60.0
"""The window (s) :class:`MintLimit` counts over, and the least time between two reports."""
_EPS = 1e-9
"""Rounding slack: 50 takes of 0.02 from 1.0 must all pass (binary floats drift by ~1e-16)."""


class TokenBucket:
    """``burst`` units of credit, refilled at ``rate`` units per second.

    Args:
        rate: units credited per second (1.0 with units of seconds of audio: real time).
        burst: the most credit that can build up, units; also the credit at ``now``.
        now: the current time, s.
    Raises:
        ValueError: if ``rate`` or ``burst`` is not positive.
    """

    __slots__ = ("rate", "burst", "_credit", "_stamp")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError(f"rate and burst must be positive, got {rate} and {burst}")
        self.rate = rate
        self.burst = burst
        self._credit = burst
        self._stamp = now

    def take(self, now: float, cost: float) -> bool:
        """Take ``cost`` units at time ``now`` (s, never before the previous call's).

        Returns:
            True if the credit covered it (it is spent); False if not (nothing is spent,
            the arrival is over the rate).
        """
        credit = self._credit + (now - self._stamp) * self.rate
        if credit > self.burst:
            credit = self.burst
        self._stamp = now
        if credit + _EPS >= cost:
            self._credit = credit - cost
            return True
        self._credit = credit
        return False

    def credit(self, now: float) -> float:
        """The credit there would be at ``now``, units (read-only)."""
        return min(self.burst, self._credit + (now - self._stamp) * self.rate)


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

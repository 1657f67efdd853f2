"""A token bucket: polices how fast something may arrive, with a bounded burst. Pure: time is
passed in (seconds on any monotonic clock); nothing here reads a clock.

The bridge uses one per call on the caller's audio, counted in seconds of audio: a phone
network delivers audio at real time (Vonage and Twilio send one 20 ms frame every 20 ms), so
audio arriving faster than that is not a caller speaking, and forwarding it to Realtime would
bill us for it. The bucket refills at ``rate`` units per second up to ``burst`` units; each
arrival takes its cost in units, and one that finds too few is refused (the caller drops it).

It runs once per frame (50 a second per call): :meth:`take` allocates nothing and costs a
few float operations.

Source: RFC 2697 ("A Single Rate Three Color Marker"), section 3: its committed bucket (a
rate and a burst size), refusing instead of colouring.
"""

from __future__ import annotations

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

"""What the call session needs from a front door's wire format: playback commands. Pure.

Each ``<front door>/wire.py`` renders these as its own text messages: Vonage
``{"action":"clear"}`` / ``{"action":"notify","payload":…}``, Twilio ``{"event":"clear",…}`` /
``{"event":"mark",…}``. The session calls them without knowing which front door it is on.

Source: protocols.md A3 (Vonage notify/clear), C (Twilio mark/clear); style.md 7.2.
"""

from __future__ import annotations

from typing import Protocol


class PlaybackCommands(Protocol):
    """Renders the caller-side playback control messages of one front door."""

    def clear(self) -> str:
        """Drop the caller's queued playback now (barge-in)."""
        ...

    def mark(self, item: str, ms: int) -> str:
        """A playback marker: echoed back (parsed as ``events.PlaybackMarked(item, ms)``)
        once everything sent before it has been played to the caller."""
        ...

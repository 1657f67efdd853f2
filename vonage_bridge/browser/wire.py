"""The browser phone's WebSocket wire format (``/console/phone/ws``). Pure: no I/O.

Our own small dialect, spoken by the console's ``phone.js``, shaped like Vonage's media
socket so that the call engine treats it the same way:

- audio both ways: binary messages, each one 20 ms frame of 16-bit little-endian linear PCM
  (L16) mono at 16 kHz (640 bytes), as the page's capture AudioWorklet produces them;
- server -> page, JSON text: ``{"event": "clear"}`` (barge-in: drop the queued reply audio
  now; the page answers ``{"event": "cleared"}``) and ``{"event": "mark", "item": ID,
  "ms": N}`` (a playback marker: the page echoes it once everything sent before it has been
  played);
- page -> server, JSON text: the ``mark`` echo, ``cleared``, and ``{"event": "dtmf",
  "digit": "5"}`` for a key press on the page's keypad.

Sources: WebSocket messages (RFC 6455); the AudioWorklet the page uses
(https://developer.mozilla.org/en-US/docs/Web/API/AudioWorkletProcessor); the Vonage
dialect it mirrors (https://developer.vonage.com/en/voice/voice-api/concepts/websockets).
"""

from __future__ import annotations

import json

from ..core.events import (
    CallerDtmf,
    CallerEvent,
    PlaybackCleared,
    PlaybackMarked,
    UnknownCallerMessage,
)
from ..core.jsonbody import loads_object
from ..errors import RemoteProtocolError

SAMPLE_RATE_HZ = 16_000
FRAME_BYTES = 640
"""One 20 ms frame of L16 at 16 kHz."""
DTMF_DIGITS = frozenset("0123456789*#")
MAX_EVENT_NAME = 64
CLEAR_COMMAND = '{"event":"clear"}'


def parse_text(raw: str) -> CallerEvent:
    """One text message from the page.

    Raises:
        RemoteProtocolError: not a JSON object, or a known event with bad fields.
    """
    doc = loads_object(raw, RemoteProtocolError)
    event = doc.get("event")
    if event == "mark":
        item, ms = doc.get("item"), doc.get("ms")
        if isinstance(item, str) and isinstance(ms, int) and not isinstance(ms, bool):
            return PlaybackMarked(item, ms)
        raise RemoteProtocolError("mark without a string item and an integer ms")
    if event == "cleared":
        return PlaybackCleared()
    if event == "dtmf":
        digit = doc.get("digit")
        if not isinstance(digit, str) or digit not in DTMF_DIGITS:
            raise RemoteProtocolError(f"dtmf with bad digit {digit!r:.20}")
        return CallerDtmf(digit, None)
    return UnknownCallerMessage(str(event)[:MAX_EVENT_NAME])


class BrowserCommands:
    """The page's playback commands (``core.frontdoor.PlaybackCommands``)."""

    __slots__ = ()

    def clear(self) -> str:
        """See :meth:`PlaybackCommands.clear`: ``{"event":"clear"}``."""
        return CLEAR_COMMAND

    def mark(self, item: str, ms: int) -> str:
        """See :meth:`PlaybackCommands.mark`: ``{"event":"mark","item":ID,"ms":N}``."""
        return json.dumps({"event": "mark", "item": item, "ms": ms}, separators=(",", ":"))


BROWSER_COMMANDS = BrowserCommands()

"""Vonage Voice WebSocket wire format: text messages in, commands out. Pure: no I/O.

Binary messages are audio frames and never pass through here (hot path). Text messages are
JSON with an ``event`` key, parsed with their nesting bounded (``core.jsonbody``).

Sources: Vonage WebSockets (https://developer.vonage.com/en/voice/voice-api/concepts/websockets);
``websocket:notify`` / ``clear`` / ``websocket:cleared`` as Pipecat's Vonage serializer uses
them (https://github.com/pipecat-ai/pipecat, ``src/pipecat/serializers/vonage.py``) and the
third-party AsyncAPI description (https://asyncapi.apis.io/asyncapis/vonage/vonage-asyncapi/).
"""

from __future__ import annotations

import json
from typing import Any

from ..core.events import (
    CallerConnected,
    CallerDtmf,
    CallerEvent,
    PlaybackCleared,
    PlaybackMarked,
    UnknownCallerMessage,
)
from ..core.jsonbody import loads_object
from ..errors import RemoteProtocolError

SUPPORTED_RATES_HZ = (8_000, 16_000, 24_000)
DTMF_DIGITS = frozenset("0123456789*#")
MAX_EVENT_NAME = 64
"""An unknown event's name is kept (for the one warning) cut to this many characters."""
CLEAR_COMMAND = '{"action":"clear"}'
"""Drops Vonage's queued playback at once (barge-in); answered by ``websocket:cleared``."""


def parse_content_type(content_type: str) -> int:
    """Sample rate in Hz of an ``audio/l16;rate=N`` content type.

    Raises:
        RemoteProtocolError: if it is not L16 at 8, 16 or 24 kHz.
    """
    parts = [p.strip().lower() for p in content_type.split(";")]
    if parts[0] != "audio/l16":
        raise RemoteProtocolError(f"unsupported content-type {content_type!r:.80}")
    for p in parts[1:]:
        if p.startswith("rate="):
            try:
                rate = int(p[5:])
            except ValueError:
                break
            if rate in SUPPORTED_RATES_HZ:
                return rate
    raise RemoteProtocolError(f"unsupported content-type {content_type!r:.80}")


def parse_text(raw: str) -> CallerEvent:
    """Parse one text message from Vonage.

    Raises:
        RemoteProtocolError: on non-JSON, JSON nested deeper than 32 levels, a non-object,
            or a known event with bad fields.
    """
    doc = loads_object(raw, RemoteProtocolError)
    event = doc.get("event")
    if event == "websocket:connected":
        content_type = doc.get("content-type")
        if not isinstance(content_type, str):
            raise RemoteProtocolError("websocket:connected without content-type")
        rate = parse_content_type(content_type)
        headers = {k: v for k, v in doc.items() if k not in ("event", "content-type")}
        return CallerConnected(content_type, rate, headers)
    if event == "websocket:dtmf":
        digit = doc.get("digit")
        nested = doc.get("dtmf")
        if digit is None and isinstance(nested, dict):  # defensive, as Pipecat does
            digit = nested.get("digit")
        if not isinstance(digit, str) or digit not in DTMF_DIGITS:
            raise RemoteProtocolError(f"websocket:dtmf with bad digit {digit!r:.20}")
        duration = doc.get("duration")
        return CallerDtmf(digit, duration if isinstance(duration, int) else None)
    if event == "websocket:notify":
        payload = doc.get("payload")
        if isinstance(payload, dict):
            item, ms = payload.get("item"), payload.get("ms")
            if isinstance(item, str) and isinstance(ms, int) and not isinstance(ms, bool):
                return PlaybackMarked(item, ms)
        return UnknownCallerMessage("websocket:notify")  # not one of our markers
    if event == "websocket:cleared":
        return PlaybackCleared()
    return UnknownCallerMessage(str(event)[:MAX_EVENT_NAME])


def notify_command(payload: dict[str, Any]) -> str:
    """``{"action":"notify","payload":…}``: Vonage echoes the payload in ``websocket:notify``
    once every frame sent before it has been played."""
    return json.dumps({"action": "notify", "payload": payload}, separators=(",", ":"))


class VonageCommands:
    """Vonage's playback commands (``core.frontdoor.PlaybackCommands``): ``clear``, and
    ``notify`` with payload ``{"item": <item id>, "ms": <ms of it sent>}``."""

    __slots__ = ()

    def clear(self) -> str:
        """See :meth:`PlaybackCommands.clear`: ``{"action":"clear"}``."""
        return CLEAR_COMMAND

    def mark(self, item: str, ms: int) -> str:
        """See :meth:`PlaybackCommands.mark`: a ``notify`` action with payload ``{"item": item,
        "ms": ms}``."""
        return notify_command({"item": item, "ms": ms})


VONAGE_COMMANDS = VonageCommands()

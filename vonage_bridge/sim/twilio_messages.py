"""Twilio Media Streams messages as the fake Twilio caller sends and checks them.

Entry ring: used by ``sim/twilio.py`` (``FakeTwilioCaller``), never by the core. No I/O.

- Sent (Twilio -> bridge): ``connected``, ``start``, ``media`` (160 bytes of 8 kHz mu-law per
  20 ms, base64), ``mark`` (the echo), ``dtmf`` and ``stop``, plus the malformed messages
  real Twilio never sends (:func:`malformed_message`), to test the bridge's error handling.
- Received (bridge -> Twilio): ``media``, ``mark`` and ``clear``, each with our
  ``streamSid``; anything else is a :class:`BadMessage` (:func:`parse_bridge_message`).

Source: Twilio Media Streams messages
(https://www.twilio.com/docs/voice/media-streams/websocket-messages).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import Callable
from typing import Any, Final, Literal, get_args

from .audio import MULAW_RATE_HZ, MULAW_SILENCE

__all__ = [
    "DTMF_DIGITS",
    "FRAME_BYTES",
    "BadMessage",
    "call_ids",
    "MalformedKind",
    "connected_message",
    "dtmf_message",
    "malformed_message",
    "mark_message",
    "media_message",
    "new_sid",
    "pad_frame",
    "parse_bridge_message",
    "start_message",
    "stop_message",
]

FRAME_BYTES: Final = 160
"""Bytes of mu-law in one 20 ms ``media`` message at 8 kHz (one byte per sample)."""

DTMF_DIGITS: Final = frozenset("0123456789*#")

MEDIA_FORMAT: Final = {"encoding": "audio/x-mulaw", "sampleRate": MULAW_RATE_HZ, "channels": 1}
"""``start.mediaFormat`` of a Media Stream."""

MalformedKind = Literal[
    "bad_json", "bad_base64", "wrong_stream_sid", "missing_media", "short_frame", "binary"
]
"""What :func:`malformed_message` builds; see there."""
MALFORMED_KINDS: Final = frozenset(get_args(MalformedKind))

BridgeEvent = Literal["media", "mark", "clear"]


class BadMessage(ValueError):
    """A message from the bridge that real Twilio would not accept; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def new_sid(prefix: str) -> str:
    """A Twilio-style SID: two letters (``CA``, ``AC``, ``MZ`` ...) and 32 hex digits."""
    return prefix + secrets.token_hex(16)


# -- sent ------------------------------------------------------------------------------------


def pad_frame(frame: bytes) -> bytes:
    """``frame`` padded to a whole 20 ms with mu-law silence: Twilio never sends less."""
    return frame + MULAW_SILENCE * (FRAME_BYTES - len(frame))


def connected_message() -> dict[str, Any]:
    """The first message on a Media Stream."""
    return {"event": "connected", "protocol": "Call", "version": "1.0.0"}


def call_ids(account_sid: str, call_sid: str) -> dict[str, str]:
    """The ``accountSid`` and ``callSid`` that ``start`` and ``stop`` carry."""
    return {"accountSid": account_sid, "callSid": call_sid}


def start_message(
    sequence: str, stream_sid: str, ids: dict[str, str], parameters: dict[str, str]
) -> dict[str, Any]:
    """``start``: the stream's ids (:func:`call_ids`), the inbound track, the TwiML's
    ``<Parameter>`` values."""
    return {
        "event": "start",
        "sequenceNumber": sequence,
        "streamSid": stream_sid,
        "start": {
            "streamSid": stream_sid,
            **ids,
            "tracks": ["inbound"],
            "customParameters": parameters,
            "mediaFormat": dict(MEDIA_FORMAT),
        },
    }


def media_message(
    sequence: str, stream_sid: str, chunk: str, timestamp_ms: str, audio: bytes
) -> dict[str, Any]:
    """``media`` on the inbound track; ``timestamp_ms`` is ms since ``start``."""
    return {
        "event": "media",
        "sequenceNumber": sequence,
        "streamSid": stream_sid,
        "media": _media_body(chunk, timestamp_ms, audio),
    }


def mark_message(sequence: str, stream_sid: str, name: str) -> dict[str, Any]:
    """The echo of the bridge's ``mark`` named ``name``, once the audio before it played."""
    return {
        "event": "mark",
        "sequenceNumber": sequence,
        "streamSid": stream_sid,
        "mark": {"name": name},
    }


def dtmf_message(sequence: str, stream_sid: str, digit: str) -> dict[str, Any]:
    """One key press on the inbound track."""
    return {
        "event": "dtmf",
        "streamSid": stream_sid,
        "sequenceNumber": sequence,
        "dtmf": {"track": "inbound_track", "digit": digit},
    }


def stop_message(sequence: str, stream_sid: str, ids: dict[str, str]) -> dict[str, Any]:
    """``stop``: the caller hung up (ids from :func:`call_ids`); sent before the close frame."""
    return {"event": "stop", "sequenceNumber": sequence, "streamSid": stream_sid, "stop": ids}


def malformed_message(
    kind: MalformedKind, next_sequence: Callable[[], str], stream_sid: str
) -> str | bytes:
    """One message real Twilio never sends, ready for the socket (text or binary).

    Args:
        kind: ``bad_json`` (text that is not JSON), ``bad_base64`` (a ``media`` whose payload
            is not base64), ``wrong_stream_sid`` (a valid ``media`` for another stream),
            ``missing_media`` (``media`` without its ``media`` object), ``short_frame`` (a
            ``media`` of 100 bytes), ``binary`` (a binary message).
        next_sequence: gives the next ``sequenceNumber`` (taken only for a JSON ``media``).
        stream_sid: our stream's SID.

    Raises:
        ValueError: if kind is unknown.
    """
    if kind not in MALFORMED_KINDS:
        raise ValueError(f"unknown malformed message kind {kind!r}")
    if kind == "bad_json":
        return '{"event": "media", '
    if kind == "binary":
        return MULAW_SILENCE * FRAME_BYTES
    message: dict[str, Any] = {
        "event": "media",
        "sequenceNumber": next_sequence(),
        "streamSid": stream_sid,
    }
    good = _media_body("0", "0", MULAW_SILENCE * FRAME_BYTES)
    if kind == "bad_base64":
        message["media"] = {**good, "payload": "not base64!"}
    elif kind == "wrong_stream_sid":
        message["streamSid"] = new_sid("MZ")
        message["media"] = good
    elif kind == "short_frame":
        message["media"] = _media_body("0", "0", MULAW_SILENCE * 100)
    # missing_media: no "media" object at all
    return json.dumps(message)


def _media_body(chunk: str, timestamp_ms: str, audio: bytes) -> dict[str, str]:
    return {
        "track": "inbound",
        "chunk": chunk,
        "timestamp": timestamp_ms,
        "payload": base64.b64encode(audio).decode("ascii"),
    }


# -- received --------------------------------------------------------------------------------


def parse_bridge_message(data: str, stream_sid: str) -> tuple[BridgeEvent, dict[str, Any], Any]:
    """Check one text message from the bridge as Twilio would.

    Args:
        data: the message text.
        stream_sid: our stream's SID; every message must carry it.

    Returns:
        ``(event, message, value)``: for ``media`` the decoded audio (bytes), for ``mark``
        its name (str), for ``clear`` None.

    Raises:
        BadMessage: text that is not a JSON object, an unknown or missing ``event``, another
            ``streamSid``, a ``media`` without a valid base64 ``payload``, a ``mark`` without
            a string name.
    """
    message = _json_object(data)
    event = message.get("event")
    if event not in ("media", "mark", "clear"):
        raise BadMessage(f"unknown event {event!r}")
    if message.get("streamSid") != stream_sid:
        raise BadMessage(f"wrong streamSid {message.get('streamSid')!r}")
    if event == "media":
        media = message.get("media")
        payload = media.get("payload") if isinstance(media, dict) else None
        if not isinstance(payload, str):
            raise BadMessage("media without a payload string")
        try:
            return "media", message, base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise BadMessage("media payload is not base64") from None
    if event == "mark":
        mark = message.get("mark")
        name = mark.get("name") if isinstance(mark, dict) else None
        if not isinstance(name, str):
            raise BadMessage("mark without a name string")
        return "mark", message, name
    return "clear", message, None


def _json_object(data: str) -> dict[str, Any]:
    try:
        message = json.loads(data)
    except ValueError:
        raise BadMessage("not JSON") from None
    if isinstance(message, dict):
        return message
    raise BadMessage("not a JSON object")

"""What the call engine needs from a media front door's wire: :class:`FrontDoor`. Pure.

A front door is one carrier's media socket: how caller messages parse, how reply audio is
rendered, its playback commands (:class:`PlaybackCommands`) and its :class:`AudioPath`.
``bridge.run_call`` and ``CallSession`` use only this, never a provider name:

=========  =============================  ==============================  ==================
door       caller audio                   reply audio                     marker / clear
=========  =============================  ==============================  ==================
Vonage     binary, one 20 ms L16 frame    binary, exactly one frame per   ``notify`` /
           per message                    message                         ``clear``
Twilio     base64 mu-law in ``media``     one ``media`` message per       ``mark`` / ``clear``
           text messages                  batch of frames
browser    binary, one 20 ms L16 frame    binary, exactly one frame per   ``mark`` / ``clear``
           (16 kHz) per message           message                         (JSON text)
=========  =============================  ==============================  ==================

Each ``<provider>/routes.py`` builds its door per call (the Twilio commands carry the
stream's ``streamSid``; the Vonage path runs at the rate ``websocket:connected`` gave).
Carrier-side controls that do I/O (REST hang-up, transfer) are not here: they are
``bridge.CallControl``.

Sources: Vonage WebSockets
(https://developer.vonage.com/en/voice/voice-api/concepts/websockets), Twilio Media Streams
messages (https://www.twilio.com/docs/voice/media-streams/websocket-messages).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..audio.path import AudioPath
from .events import CallerEvent

CARRIER_SILENT_S = 30.0
"""A carrier's caller socket with no message for this long (s) is dead, and the call ends.

Vonage and Twilio stream the caller's audio for the whole call, silence included (one
message every 20 ms), so a socket that goes quiet has lost its peer without a close (a
half-open TCP connection). This check, in the call's once-a-second watch, replaces a
WebSocket ping heartbeat: aiohttp re-arms its heartbeat on every read, a callback per frame.
Sources: https://developer.vonage.com/en/voice/voice-api/concepts/websockets (audio frames),
https://www.twilio.com/docs/voice/media-streams/websocket-messages (``media`` messages)."""


class PlaybackCommands(Protocol):
    """Renders the caller-side playback control messages of one front door."""

    def clear(self) -> str:
        """Drop the caller's queued playback now (barge-in)."""
        ...

    def mark(self, item: str, ms: int) -> str:
        """A playback marker: echoed back (parsed as ``events.PlaybackMarked(item, ms)``)
        once everything sent before it has been played to the caller."""
        ...


@dataclass(frozen=True, slots=True)
class FrontDoor:
    """One call's media front door, as the engine sees it.

    Attributes:
        name: the call record's ``front_door`` value (``store.FRONT_DOORS``: ``vonage``,
            ``twilio``); also used in log lines and end reasons.
        path: the call's audio path (one per call: it holds resampler state).
        commands: renders ``clear`` and playback markers.
        parse: one text message -> caller audio (``bytes``: Twilio ``media``) or an event;
            raises ``errors.RemoteProtocolError`` on a message it cannot use.
        binary_audio: caller audio arrives as binary messages (Vonage); when False a binary
            message is a protocol error (Twilio sends only text).
        media: renders a batch of reply frames as one text message (Twilio); None sends
            each 20 ms frame as its own binary message (Vonage: exactly one per message).
        silent_limit_s: the call ends when the caller socket has sent nothing for this long
            (s; :data:`CARRIER_SILENT_S` for a carrier that streams audio all call long);
            None: no such check (a browser may stop sending while muted).
    """

    name: str
    path: AudioPath
    commands: PlaybackCommands
    parse: Callable[[str], bytes | CallerEvent]
    binary_audio: bool = True
    media: Callable[[bytes], str] | None = None
    silent_limit_s: float | None = None

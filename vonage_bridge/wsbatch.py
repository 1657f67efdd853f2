"""Several WebSocket messages to the caller in one transport write (hot path). Shell.

(And :func:`inbox`: how many of the caller's messages aiohttp has already read, so that
frames that arrived together go up together.)

aiohttp writes each ``send_bytes`` / ``send_str`` straight to the transport, and an asyncio
transport with an empty buffer makes one ``send()`` system call per write: a batch of five
Vonage frames (one binary message each, as Vonage requires) and its ``notify`` cost six
system calls. :class:`BatchSender` frames the messages itself (RFC 6455 section 5.2: FIN, the
opcode, the payload length; a server's frames are not masked, section 5.1) and hands the whole
batch to the transport in one ``write``, so the kernel gets one ``send()`` per batch.

The caller uses aiohttp's own ``send_bytes`` / ``send_str`` instead, one message at a time,
whenever :attr:`BatchSender.ready` is False: when the socket negotiated permessage-deflate
(RFC 7692), when aiohttp's writer is not what this module expects, or while the transport's
buffer is above its high-water mark (a slow peer: aiohttp's sends then wait for it to drain).

Sources: RFC 6455 (https://www.rfc-editor.org/rfc/rfc6455#section-5.2);
https://developer.vonage.com/en/voice/voice-api/concepts/websockets (one 20 ms frame per
binary message).
"""

from __future__ import annotations

from collections.abc import Sized
from struct import Struct

from aiohttp import ClientConnectionResetError, web
from aiohttp.http import WebSocketWriter

_LEN2 = Struct("!BBH").pack
_LEN8 = Struct("!BBQ").pack
_FIN_TEXT = 0x81
_FIN_BINARY = 0x82


def frame_header(first_byte: int, length: int) -> bytes:
    """An unmasked frame header (server to client, RFC 6455 section 5.2).

    Args:
        first_byte: FIN and the opcode (``0x81`` text, ``0x82`` binary).
        length: the payload's length in bytes (>= 0).
    Returns:
        2, 4 or 10 bytes: the 7-bit, 16-bit or 64-bit length form.
    Raises:
        ValueError: a negative length.
    """
    if length < 0:
        raise ValueError("length must be >= 0")
    if length < 126:
        return bytes((first_byte, length))
    if length < 65536:
        return _LEN2(first_byte, 126, length)
    return _LEN8(first_byte, 127, length)


class BatchSender:
    """Writes a batch of binary frames and an optional text message to one server socket.

    Args:
        ws: a prepared server WebSocket (the caller's media socket).
        frame_bytes: the usual binary frame size (its header is built once); other sizes
            work too.
    """

    __slots__ = ("_ws", "_writer", "_head", "_frame_bytes", "_parts")

    def __init__(self, ws: web.WebSocketResponse, frame_bytes: int) -> None:
        self._ws = ws
        # aiohttp keeps the socket's frame writer private; without it (or with compression)
        # every batch goes through the public sends.
        writer = getattr(ws, "_writer", None)
        self._writer: WebSocketWriter | None = (
            writer if not ws.compress and _usable(writer) else None
        )
        self._frame_bytes = frame_bytes
        self._head = frame_header(_FIN_BINARY, frame_bytes)
        self._parts: list[bytes] = []  # reused: no list per batch

    @property
    def ready(self) -> bool:
        """Whether :meth:`write` may be used now: aiohttp's writer is usable, the socket
        has no compression, and the transport is not over its high-water mark."""
        writer = self._writer
        return writer is not None and not writer.protocol.writing_paused

    def add(self, frames: list[bytes], *texts: str | None) -> None:
        """Queue ``frames`` (one binary message each), then ``texts`` (one text message each,
        in order; ``None`` is skipped) for the next :meth:`flush`."""
        parts, head, fb = self._parts, self._head, self._frame_bytes
        for frame in frames:
            parts.append(head if len(frame) == fb else frame_header(_FIN_BINARY, len(frame)))
            parts.append(frame)
        for text in texts:
            if text is not None:
                data = text.encode("utf-8")
                parts.append(frame_header(_FIN_TEXT, len(data)))
                parts.append(data)

    def flush(self) -> None:
        """Write everything queued by :meth:`add`, in one transport write. Only when
        :attr:`ready`; it does not wait: the transport buffers what the kernel does not take
        at once. What was queued is dropped if the write fails.

        Raises:
            aiohttp.ClientConnectionResetError: the socket is closing (as aiohttp's sends).
        """
        writer = self._writer
        assert writer is not None, "flush() only when ready"
        parts = self._parts
        try:
            if not parts:
                return
            transport = writer.transport
            if transport.is_closing() or self._ws.closed:
                raise ClientConnectionResetError("Cannot write to closing transport")
            transport.write(b"".join(parts))
        finally:
            parts.clear()

    def write(self, frames: list[bytes], *texts: str | None) -> None:
        """:meth:`add` then :meth:`flush`: one batch, one write."""
        self.add(frames, *texts)
        self.flush()


def inbox(ws: web.WebSocketResponse) -> Sized | None:
    """The messages aiohttp has already read from ``ws`` and not yet handed out, or None.

    Its length says how many messages the next ``receive()`` calls return at once, without
    waiting (each frame the peer sent is queued as it is parsed, before the reader task runs).
    aiohttp keeps this queue private (``ws._reader._buffer``, a deque in both its Cython and its
    Python reader); None when it is not there, and callers then assume nothing is waiting.
    """
    buffer = getattr(getattr(ws, "_reader", None), "_buffer", None)
    return buffer if isinstance(buffer, Sized) else None


def _usable(writer: object) -> bool:
    """Whether ``writer`` has what :meth:`BatchSender.send` uses (aiohttp's
    ``WebSocketWriter``: a ``transport`` with ``write`` and ``is_closing``, any event loop's,
    and a ``protocol`` with ``writing_paused``)."""
    transport = getattr(writer, "transport", None)
    protocol = getattr(writer, "protocol", None)
    return (
        callable(getattr(transport, "write", None))
        and callable(getattr(transport, "is_closing", None))
        and hasattr(protocol, "writing_paused")
    )

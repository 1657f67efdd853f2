"""A live call as the rest of the service sees it: its carrier controls, its registration,
and how its sockets are closed. Shell.

- :class:`CallControl`: the carrier-side controls that do I/O (REST hang-up and transfer:
  ``vonage.voice_api.CallHangUp``, ``twilio.rest.TwilioHangUp``, both on
  :class:`RestHangUp`; the SIP sideband's refer and hangup);
- :class:`LiveCall`: a call with an open media socket, hung up and closed on shutdown (its
  end reason then :data:`SHUTDOWN_REASON`), or asked to say goodbye and end when a drain
  runs out of time (:meth:`LiveCall.end_politely`, ``web.lifecycle``);
- :class:`CallDeps`: what the engine needs from the app for one call;
- :func:`close_socket`: every socket we close gets a ``WSCloseCode`` and a reason cut to the
  123 bytes a close frame holds, at a UTF-8 character boundary (RFC 6455, section 5.5.1);
- :class:`SocketOpening`: a media socket's first messages, read with a deadline, and the
  socket closed with a reason (and one log line) when they do not come or cannot be used.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Generic, Protocol, TypeVar

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web

from .assistants.book import Assistants
from .cluster import LiveRegistry
from .config import Settings
from .core.events import TranscriptEntry
from .errors import BridgeError, RemoteProtocolError
from .hub import CallHub
from .logs import call_context
from .store import CallStore
from .tools import ToolRegistry

log = logging.getLogger(__name__)

UNKNOWN_CALL_PREFIX = "unknown-"
"""Call ids we made up because the answer webhook carried none: such a call cannot be hung
up or transferred over REST."""
SHUTDOWN_REASON = "server shutting down"
"""The end reason (record, summary line, close frame, REST hang-up log) of a call the service
ended because it is stopping."""
DRAIN_REASON = "server draining: ended after DRAIN_TIMEOUT_S"
"""The end reason of a call a drain ended politely (goodbye, REST hang-up) when
``DRAIN_TIMEOUT_S`` ran out."""
MAX_CLOSE_REASON_BYTES = 123
"""A close frame's reason fits in 123 bytes of UTF-8 (RFC 6455 5.5: 125-byte control payload
minus the 2-byte code)."""


def known_call(call_id: str) -> bool:
    """Whether ``call_id`` is the carrier's (not one we made up with
    :data:`UNKNOWN_CALL_PREFIX`)."""
    return not call_id.startswith(UNKNOWN_CALL_PREFIX)


# ------------------------------------------------------------------ carrier controls


class CallControl(Protocol):
    """The carrier-side controls of one call that do I/O (REST or SIP)."""

    async def hang_up(self, reason: str) -> object:
        """End the call on the carrier's side, at most once; ``reason`` is for the log.
        Failures are logged, never raised."""
        ...

    async def transfer(self, number: str) -> None:
        """Connect the caller to ``number`` (E.164 digits); our leg of the call ends.

        Raises:
            Exception: the carrier refused it (the tool reports the error to the model).
        """
        ...


class RestHangUp:
    """Hangs one call up over its carrier's REST API, at most once; failures are logged,
    never raised. The hang-up half of a REST :class:`CallControl`.

    Used from a call's cleanup (``bridge.run_call``) and from server shutdown, whichever comes
    first. A subclass names its carrier (:attr:`carrier`, for the log lines), the errors that
    make an attempt fail (:attr:`failures`) and the logger to use (:attr:`log`), and
    implements :meth:`_end` and ``transfer``.

    Attributes:
        done: True once an attempt has been made (whatever its outcome).
    """

    __slots__ = ("done",)

    carrier: ClassVar[str]
    failures: ClassVar[tuple[type[BridgeError], ...]]
    log: ClassVar[logging.Logger]

    def __init__(self) -> None:
        self.done = False

    async def __call__(self, reason: str) -> bool:
        """Hang up, the first time only; ``reason`` is for the log.

        Returns:
            False if this attempt failed (logged as a warning); True if the carrier ended the
            call, it had already ended (both logged at info), or an earlier call already
            tried.
        """
        if self.done:
            return True
        self.done = True
        try:
            ended = await self._end()
        except self.failures as exc:
            self.log.warning("%s hang-up failed (%s): %s", self.carrier, reason, exc.message)
            return False
        if ended:
            self.log.info("hung up the call over %s REST (%s)", self.carrier, reason)
        else:
            self.log.info("%s call had already ended (%s)", self.carrier, reason)
        return True

    async def hang_up(self, reason: str) -> bool:
        """:meth:`CallControl.hang_up`: the same as calling this object."""
        return await self(reason)

    async def _end(self) -> bool:
        """End the call over REST: True if it ended now, False if it had already ended.

        Raises:
            BridgeError: one of :attr:`failures` when the attempt failed.
        """
        raise NotImplementedError


@dataclass(slots=True)
class LiveCall:
    """A call with an open media socket (Vonage or Twilio): hung up over its
    :class:`CallControl` (when there is one) and closed with 1001 on shutdown.
    ``call_uuid`` is the door's call id (Vonage call UUID, Twilio call SID)."""

    call_uuid: str
    ws: web.WebSocketResponse
    task: asyncio.Task[object]
    control: CallControl | None = None
    ending: str | None = None
    """Set when the service ends the call from outside (shutdown): its end reason, given by
    the record and the summary line instead of how the socket closed."""
    wind_down: asyncio.Event = field(default_factory=asyncio.Event)
    """Set by :meth:`end_politely` and :meth:`hold_replies`; the call's goodbye task
    (``bridge.run_call``) waits on it."""
    holding: bool = False
    """Set by :meth:`hold_replies`: the assistant keeps quiet (an answering machine's greeting
    plays) until the call ends or :meth:`leave_message`."""
    message: str | None = None
    """Set by :meth:`leave_message`: what the assistant says before the call ends, instead of
    the drain's goodbye."""

    def end_politely(self, reason: str) -> None:
        """Ask the call to end itself: the assistant says goodbye (bounded in time), then the
        call is hung up over REST and its socket closed with 1001; ``reason`` is its end
        reason (record, summary line). Returns at once."""
        self.ending = reason
        self.wind_down.set()

    def hold_replies(self) -> None:
        """An answering machine answered (outbound voicemail): cancel the reply in progress,
        clear the caller's playback and hold every reply until :meth:`leave_message` (done by
        the goodbye task, ``CallSession.hold_replies``). Returns at once."""
        self.holding = True
        self.wind_down.set()

    def leave_message(self, message: str, reason: str) -> None:
        """The machine's beep: the assistant says ``message`` word for word (bounded in time),
        then the call is hung up over REST and its socket closed with 1001, as
        :meth:`end_politely`; ``reason`` is its end reason. Returns at once."""
        self.message = message
        self.end_politely(reason)

    async def hang_up_within(self, reason: str, timeout_s: float) -> None:
        """Hang the call up over its :class:`CallControl` (nothing without one), waiting at
        most ``timeout_s`` seconds; what is logged carries the call id. Never raises: an
        unanswered hang-up is logged as a warning and left unfinished."""
        if self.control is None:
            return
        with call_context(self.call_uuid[:64]):  # tagged as the routes tag the call
            try:
                async with asyncio.timeout(timeout_s):
                    await self.control.hang_up(reason)
            except TimeoutError:
                log.warning(
                    "REST hang-up (%s) unanswered after %.1f s: closing the socket without it",
                    reason,
                    timeout_s,
                )
            except Exception as exc:  # the contract says never; keep shutdown going anyway
                log.warning("REST hang-up (%s) failed: %s", reason, exc.__class__.__name__)


@dataclass(frozen=True, slots=True)
class CallDeps:
    """What every call needs from the application (built by ``web.keys.call_deps``).

    Attributes:
        settings: the settings.
        http: the shared client session (Realtime sockets, REST).
        tools: the tools the model may call.
        store: the call-record store; None when records are off.
        calls: the live media calls by call id (shutdown closes them).
        assistants: which assistant answers a call; None: the default built from
            ``settings`` for every call.
        hub: where the call publishes its start, transcript lines and end (the operator
            console's live page); None publishes nothing.
        registry: the live calls of every instance (``cluster``); None without a store.
        on_transcript: ``(call_uuid, entry)`` for each transcript line as it happens (live
            transcripts on the bus, ``bus.transcript_publisher``); None: not published.
    """

    settings: Settings
    http: aiohttp.ClientSession
    tools: ToolRegistry
    store: CallStore | None
    calls: dict[str, LiveCall]
    assistants: Assistants | None = None
    hub: CallHub | None = None
    registry: LiveRegistry | None = None
    on_transcript: Callable[[str, TranscriptEntry], None] | None = None


# ------------------------------------------------------------------ closing sockets


def close_reason(text: str) -> bytes:
    """``text`` as a close reason: UTF-8 cut to :data:`MAX_CLOSE_REASON_BYTES`, never inside
    a character (RFC 6455 5.5.1: the reason must be valid UTF-8)."""
    raw = text.encode("utf-8")
    if len(raw) <= MAX_CLOSE_REASON_BYTES:
        return raw
    return raw[:MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore").encode("utf-8")


async def close_socket(
    ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse,
    code: WSCloseCode,
    reason: str,
) -> None:
    """Close ``ws`` with ``code`` and ``reason`` (cut by :func:`close_reason`)."""
    await ws.close(code=code, message=close_reason(reason))


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SocketOpening(Generic[T]):
    """How a front door's media socket opens: the text message it waits for, parsed.

    Attributes:
        socket: the socket's name in the log lines (``"Twilio stream"``).
        awaited: the message waited for, in reasons and log lines (``"websocket:connected"``).
        timeout_s: how long the opening may take, s.
        parse: the front door's text parser; raises ``RemoteProtocolError`` on a bad message.
        log: the front door's logger.
    """

    socket: str
    awaited: str
    timeout_s: float
    parse: Callable[[str], T]
    log: logging.Logger

    def deadline(self) -> float:
        """The event-loop time by which the opening must be done, from now."""
        return asyncio.get_running_loop().time() + self.timeout_s

    async def receive(self, ws: web.WebSocketResponse, deadline: float) -> T | None:
        """The next message, parsed; or None once ``ws`` is closed and the reason logged::

        nothing by ``deadline``       1002 "no {awaited} within {timeout_s} s"  WARNING
        the peer closed the socket    (no close frame of ours)                 INFO
        a binary message              1002 "expected a JSON text message"      WARNING
        ``parse`` refused the text    1003 its RemoteProtocolError message     WARNING
        """
        left = deadline - asyncio.get_running_loop().time()
        log = self.log
        try:
            msg = await ws.receive(timeout=max(left, 0.001))
        except TimeoutError:
            reason = f"no {self.awaited} within {self.timeout_s:g} s"
            await close_socket(ws, WSCloseCode.PROTOCOL_ERROR, reason)
            log.warning("%s closed: %s", self.socket, reason)
            return None
        if msg.type is not WSMsgType.TEXT:
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                log.info("%s closed before %s", self.socket, self.awaited)
            else:
                await close_socket(ws, WSCloseCode.PROTOCOL_ERROR, "expected a JSON text message")
                log.warning(
                    "%s closed: %s message before %s", self.socket, msg.type.name, self.awaited
                )
            return None
        try:
            return self.parse(msg.data)
        except RemoteProtocolError as exc:
            await close_socket(ws, WSCloseCode.UNSUPPORTED_DATA, exc.message)
            log.warning("%s closed: %s", self.socket, exc.message)
            return None


def transcript_listener(deps: CallDeps, call_uuid: str) -> Callable[[TranscriptEntry], None] | None:
    """What a call's session calls with each transcript entry as it is added
    (``CallSession.on_transcript``): the console's live page on this instance
    (``deps.hub``) and the live transcripts of every instance (``deps.on_transcript``, the
    bus); None when neither is there. Called on transcript events only, never per frame."""
    sinks: list[Callable[[TranscriptEntry], None]] = []
    if deps.hub is not None:
        sinks.append(functools.partial(deps.hub.line, call_uuid))
    if deps.on_transcript is not None:
        sinks.append(functools.partial(deps.on_transcript, call_uuid))
    if not sinks:
        return None
    if len(sinks) == 1:
        return sinks[0]

    def both(entry: TranscriptEntry) -> None:
        """Hand ``entry`` to each sink in turn."""
        for sink in sinks:
            sink(entry)

    return both

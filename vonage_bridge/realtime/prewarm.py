"""Realtime sessions opened at the answer URL, adopted by the call's media socket. Shell.

The answer URL knows who calls whom, so it can open the call's Realtime session (socket and
``session.update``) in the background while the carrier plays the NCCO / TwiML greeting: by the
time the media socket opens, the session is ready and the caller's first words go straight up
instead of being held while Realtime connects.

- :func:`session_update_for`: the call's ``session.update``, built by the same functions as
  ``CallSession.realtime_opened`` (the adopting call still compares the two and sends its own if
  they ever differ);
- :class:`WarmSessions` (``web.keys.WARM_SESSIONS``): the warm sessions of one app, by call id.
  :meth:`~WarmSessions.start` opens one (only for a verified answer URL: the routes call it
  after the signature check or the unsigned minting limit); :meth:`~WarmSessions.take` hands it
  to the media socket; one not taken within :attr:`~WarmSessions.ttl_s` is closed; at most
  :attr:`~WarmSessions.extra` more than the live calls are warm at once (so nobody can make us
  hold sessions open); :meth:`~WarmSessions.close` closes them all at shutdown;
- :class:`WarmSession`: one of them, owned by :class:`WarmSessions` until taken, then by the
  call (which adopts its socket, or discards it).

A media socket with no warm session for its call id (another instance answered, the bound was
reached, the session expired) opens its own, as before. Once the socket is open and
``session.update`` sent, a reader (:func:`read_until_updated`) reads it up to ``session.updated``
as it arrives and observes ``vonage_bridge_realtime_connect_seconds`` (start of the upgrade to
``session.updated``) there, so a session that is ready before its media socket comes is measured
too. Every event it read (``session.created``, ``session.updated``, an ``error``) is kept on the
:class:`WarmSession` (:attr:`WarmSession.early`); the adopting call may send on the socket at
once (caller audio goes straight up), and before it reads the socket it waits for the reader
(:meth:`WarmSession.settled`) and replays those events to its session in order, as on a socket
the call opened itself. The reader stops at ``session.updated``, at an ``error`` (the update was
refused: not measured), or after ``OPENAI_CONNECT_TIMEOUT_S`` (logged; the call reads on).

Sources: Realtime WebSocket guide (https://platform.openai.com/docs/guides/realtime-websocket),
``session.update`` (https://platform.openai.com/docs/api-reference/realtime-client-events/session/update),
``session.updated`` (https://platform.openai.com/docs/api-reference/realtime-server-events/session/updated),
Vonage NCCO ``talk`` then ``connect``
(https://developer.vonage.com/en/voice/voice-api/ncco-reference), TwiML ``<Say>`` then
``<Connect><Stream>`` (https://www.twilio.com/docs/voice/twiml/stream).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import WSCloseCode, WSMsgType

from ..audio.formats import AudioFormat, realtime_format_json
from ..calls import close_socket
from ..config import Settings
from ..core.assistant import CallContext, call_instructions_for, default_assistant, session_update
from ..core.call_data import CallInfo
from ..core.events import RealtimeError, SessionUpdated
from ..errors import RealtimeConnectError, RemoteProtocolError
from ..logs import call_context
from ..metrics import METRICS
from .connection import open_realtime
from .protocol import client_event, parse_server_event

log = logging.getLogger(__name__)

WARM_TTL_S = 20.0
"""A warm session not taken by its media socket within this (s) is closed. Greetings last a
few seconds; this is no longer than the socket's 20 s heartbeat, which nobody answers before
adoption."""
WARM_EXTRA = 10
"""Warm sessions at most, beyond the number of live calls."""
EXPIRED_REASON = "not adopted by a media socket"
UNUSED_REASON = "call ended before adopting it"
SHUTDOWN_REASON = "server shutting down"


def session_update_for(
    info: CallInfo,
    settings: Settings,
    tools: list[dict[str, Any]],
    realtime_format: AudioFormat,
    context: CallContext | None = None,
) -> str:
    """The ``session.update`` a call with ``info`` sends first, as JSON text.

    Built as ``CallSession.realtime_opened`` builds it (the assistant's instructions with the
    caller's number and the call's variables, voice, turn detection, transcription, its
    ``tools``, ``realtime_format`` both ways), so an adopted session is configured exactly as
    one the call opened itself.

    Args:
        info: the call (``caller`` and ``called`` already bounded by the answer URL).
        settings: the app's settings (the default assistant when ``context`` is None).
        tools: the ``session.tools`` declarations (``ToolRegistry.declarations``); only the
            assistant's are kept.
        realtime_format: the door's Realtime audio format (Vonage: PCM16 at 24 kHz; Twilio:
            mu-law at 8 kHz).
        context: the call's assistant and additions (``assistants.book``).
    Raises:
        ValueError: ``realtime_format`` has no Realtime equivalent.
    """
    if context is None:
        context = CallContext(default_assistant(settings.openai, settings.call))
    instructions = call_instructions_for(context, caller=info.caller, called=info.called)
    fmt = realtime_format_json(realtime_format)
    return client_event(session_update(context.assistant, instructions, tools, audio_format=fmt))


class WarmSession:
    """One Realtime session opened at the answer URL (socket, then ``session.update``).

    Attributes:
        call_id: the front door's call id (Vonage call UUID, Twilio call SID).
        update: the ``session.update`` sent on it (JSON text).
        started_at: loop time (s) its opening began.
        context: the assistant it was configured for (the call adopting it keeps it, even
            if the assistant changed meanwhile); None: the default.
        early: the text events its reader read (up to ``session.updated`` or an ``error``),
            in order, for the adopting call to replay before reading the socket; complete
            once :meth:`settled` returned.

    Args:
        task: the opener (socket, then ``session.update``).
        read_timeout_s: start a reader (:func:`read_until_updated`) once the opener is done,
            giving up after this many seconds; None starts none (nothing read, nothing
            measured).
    """

    __slots__ = (
        "call_id",
        "update",
        "started_at",
        "context",
        "early",
        "_task",
        "_reader",
        "_expiry",
    )

    def __init__(
        self,
        call_id: str,
        update: str,
        task: asyncio.Task[aiohttp.ClientWebSocketResponse],
        started_at: float,
        context: CallContext | None = None,
        read_timeout_s: float | None = None,
    ) -> None:
        self.call_id = call_id
        self.update = update
        self.context = context
        self.early: list[str] = []
        self.started_at = started_at
        self._task = task
        self._reader: asyncio.Task[None] | None = None
        if read_timeout_s is not None:
            self._reader = asyncio.get_running_loop().create_task(
                self._read(read_timeout_s), name=f"warm-reader-{call_id[:64]}"
            )
        self._expiry: asyncio.TimerHandle | None = None

    async def _read(self, timeout_s: float) -> None:
        """The reader: waits for the opener, then :func:`read_until_updated`. Never raises
        (a failure is logged; the call reads the socket itself)."""
        task = self._task
        await asyncio.wait({task})
        if task.cancelled() or task.exception() is not None:
            return  # the opener failed: socket() reports it
        rt = task.result()
        with call_context(self.call_id[:64]):
            try:
                await read_until_updated(rt, self.early, self.started_at, timeout_s)
            except RealtimeConnectError as exc:
                log.warning("warm Realtime session: %s", exc.message)
            except Exception as exc:  # a failed read never breaks the call
                log.warning("warm Realtime session: reading it failed (%r)", exc)

    async def settled(self) -> None:
        """Wait until the reader is done (nothing to wait for without one): after this,
        :attr:`early` is complete and the socket is the caller's alone to read. Cancelling
        the wait cancels the reader. Never raises otherwise."""
        reader = self._reader
        if reader is None:
            return
        try:
            await reader
        except asyncio.CancelledError:
            reader.cancel()
            raise

    def opened(self) -> aiohttp.ClientWebSocketResponse:
        """Its socket, once :attr:`ready`.

        Raises:
            asyncio.InvalidStateError: it is still opening.
        """
        return self._task.result()

    @property
    def ready(self) -> bool:
        """Whether its socket is open and ``session.update`` was sent (no wait to adopt it;
        its reader may still be reading: :meth:`settled`)."""
        task = self._task
        return task.done() and not task.cancelled() and task.exception() is None

    async def socket(self) -> aiohttp.ClientWebSocketResponse | None:
        """Its socket, waiting for it while it opens; None if opening failed (logged at
        WARNING: the call then opens its own)."""
        try:
            return await self._task
        except RealtimeConnectError as exc:
            log.warning("warm Realtime session failed (%s): opening a new one", exc.message)
        except Exception as exc:  # a failed pre-warm never breaks the call
            log.warning("warm Realtime session failed (%r): opening a new one", exc)
        return None

    async def discard(self, reason: str) -> None:
        """Stop opening (and reading) it, or close its socket (1000, ``reason``). Never
        raises."""
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.wait({self._reader})
        task = self._task
        if not task.done():
            task.cancel()
        await asyncio.wait({task})
        if task.cancelled() or task.exception() is not None:
            return
        rt = task.result()
        if not rt.closed:
            try:
                await close_socket(rt, WSCloseCode.OK, reason)
            except Exception as exc:  # closing is best effort
                log.debug("closing a warm Realtime session raised %r", exc)


class WarmSessions:
    """The warm Realtime sessions of one app, by call id.

    Args:
        live_calls: the number of live media calls now (the bound counts from it).
        ttl_s: see :attr:`ttl_s`.
        extra: see :attr:`extra`.

    Attributes:
        ttl_s: a session not taken within this (s) is closed (read at each :meth:`start`).
        extra: at most this many sessions beyond the live calls are warm at once.
        enabled: False opens none (every media socket opens its own session, as before).
    """

    def __init__(
        self,
        live_calls: Callable[[], int],
        *,
        ttl_s: float = WARM_TTL_S,
        extra: int = WARM_EXTRA,
    ) -> None:
        self.ttl_s = ttl_s
        self.extra = extra
        self.enabled = True
        self._live_calls = live_calls
        self._warm: dict[str, WarmSession] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    def __len__(self) -> int:
        return len(self._warm)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._warm

    def start(
        self,
        info: CallInfo,
        realtime_format: AudioFormat,
        *,
        http: aiohttp.ClientSession,
        settings: Settings,
        tools: list[dict[str, Any]],
        context: CallContext | None = None,
    ) -> bool:
        """Start opening the Realtime session of the call ``info`` in the background (socket,
        then its ``session.update``, :func:`session_update_for`). Call it only for a verified
        answer URL (signed, or unsigned under its minting limit), in the call's log context.

        Args:
            info: the call, as its media socket will know it (``call_uuid`` keys it).
            realtime_format: the door's Realtime audio format.
            http: the app's shared client session.
            settings: the app's settings (Realtime URL, key, connect timeout, persona).
            tools: the ``session.tools`` declarations.
            context: the call's assistant (selected by the answer URL from the number
                dialled), kept on the session for the media socket.
        Returns:
            True if it started; False (nothing opened) when pre-warm is off, the app is
            shutting down, the call already has one, or :attr:`extra` more sessions than
            live calls are warm already.
        """
        call_id = info.call_uuid
        if not self.enabled or self._closed or call_id in self._warm:
            return False
        if len(self._warm) >= self._live_calls() + self.extra:
            log.info("no warm Realtime session: %d already warm (the bound)", len(self._warm))
            return False
        update = session_update_for(info, settings, tools, realtime_format, context)
        loop = asyncio.get_running_loop()
        started_at = loop.time()
        task = loop.create_task(
            _open_warm(http, settings, update), name=f"warm-realtime-{call_id[:64]}"
        )
        warm = WarmSession(
            call_id, update, task, started_at, context, settings.openai.connect_timeout_s
        )
        self._warm[call_id] = warm
        warm._expiry = loop.call_later(self.ttl_s, self._expire, call_id)
        return True

    def get(self, call_id: str) -> WarmSession | None:
        """The warm session of ``call_id`` while it waits for its media socket (not taken)."""
        return self._warm.get(call_id)

    def take(self, call_id: str) -> WarmSession | None:
        """The warm session of ``call_id``, now the caller's to adopt or discard; None when
        there is none (logged: the media socket then opens its own)."""
        warm = self._warm.pop(call_id, None)
        if warm is None:
            log.info("no warm Realtime session for this call: opening one")
            return None
        if warm._expiry is not None:
            warm._expiry.cancel()
        return warm

    def _expire(self, call_id: str) -> None:
        warm = self._warm.pop(call_id, None)
        if warm is None:
            return
        with call_context(call_id[:64]):
            log.info("warm Realtime session expired: no media socket within %g s", self.ttl_s)
        self._discard(warm, EXPIRED_REASON)

    def _discard(self, warm: WarmSession, reason: str) -> None:
        task = asyncio.get_running_loop().create_task(warm.discard(reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Shutdown: open no more, close every warm session, wait for the closes."""
        self._closed = True
        warm, self._warm = list(self._warm.values()), {}
        for session in warm:
            if session._expiry is not None:
                session._expiry.cancel()
            self._discard(session, SHUTDOWN_REASON)
        if self._closing:
            await asyncio.wait(set(self._closing))


async def _open_warm(
    http: aiohttp.ClientSession, settings: Settings, update: str
) -> aiohttp.ClientWebSocketResponse:
    """Open the socket and send ``update``; the socket is closed if sending fails or this is
    cancelled after the socket opened.

    Raises:
        RealtimeConnectError: see ``open_realtime``.
    """
    rt = await open_realtime(http, settings.openai)
    try:
        await rt.send_str(update)
    except BaseException:
        await rt.close(code=WSCloseCode.OK)
        raise
    return rt


async def read_until_updated(
    rt: aiohttp.ClientWebSocketResponse,
    early: list[str],
    started_at: float,
    timeout_s: float,
) -> bool:
    """Read ``rt`` as its events arrive until ``session.updated``, then observe
    ``vonage_bridge_realtime_connect_seconds`` (loop time now minus ``started_at``, s); stop
    too at an ``error`` event (the update was refused: nothing observed). Every text event
    read, the last included, is appended to ``early`` in order; binary messages are dropped.

    Returns:
        True when ``session.updated`` came (observed), False when an ``error`` came first.
    Raises:
        RealtimeConnectError: nothing decisive within ``timeout_s`` s, or the socket closed.
    Source: https://platform.openai.com/docs/api-reference/realtime-server-events/session/updated
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            msg = await rt.receive(timeout=max(deadline - loop.time(), 0.001))
        except TimeoutError:
            raise RealtimeConnectError(
                f"Realtime sent no session.updated within {timeout_s:g} s"
            ) from None
        if msg.type is WSMsgType.TEXT:
            early.append(msg.data)
            try:
                event = parse_server_event(msg.data)
            except RemoteProtocolError:
                continue  # the call's session warns about it when it is replayed
            if isinstance(event, SessionUpdated):
                METRICS.realtime_connected(loop.time() - started_at)
                return True
            if isinstance(event, RealtimeError):
                return False
        elif msg.type is not WSMsgType.BINARY:  # closed, closing or a socket error
            raise RealtimeConnectError(
                f"Realtime closed the session before session.updated (close {rt.close_code})"
            )

"""What the fake Vonage and Twilio callers share: the phone's playback clock and its media line.

Entry ring (I/O): used by ``sim/vonage.py`` (``FakeVonageCaller``) and ``sim/twilio.py``
(``FakeTwilioCaller``), never by the core.

- :class:`PhonePlayback` is the phone's loudspeaker: the bridge's audio is queued, played one
  20 ms slot at a time on absolute deadlines, and counted as heard at the start of its slot;
  a playback marker (Vonage ``notify``, Twilio ``mark``) is echoed once the audio queued
  before it has played; ``clear`` empties the queue; a gap inside a burst is an underrun.
- :class:`PhoneLine` is one media WebSocket as the carrier sees it: the receive loop, the
  hang-up with close code 1000, the close bookkeeping and the waits tests use.

Sources: Vonage WebSockets guide
(https://developer.vonage.com/en/voice/voice-api/concepts/websockets); Twilio Media Streams
messages (https://www.twilio.com/docs/voice/media-streams/websocket-messages).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import ClassVar, Final, Generic, TypeVar

import aiohttp

from .tasks import ClosedOnExit, OwnedTasks

__all__ = ["FRAME_MS", "CallerError", "PhoneLine", "PhonePlayback"]

logger = logging.getLogger(__name__)

FRAME_MS: Final = 20
"""One playback slot, and one audio message from either carrier, ms."""

_FRAME_S: Final = FRAME_MS / 1000
UNDERRUN_GAP_S: Final = 0.2
"""Audio arriving less than this long (s) after the player ran dry counts as an underrun."""
MAX_LATE_S: Final = 0.1
"""If a free-running clock falls this far behind (a stalled loop), it skips the missed slots."""

MarkT = TypeVar("MarkT")


class CallerError(Exception):
    """The bridge did something the real carrier would reject (bad answer, refused upgrade, ...).

    Attributes:
        status: HTTP status of the failed request or refused upgrade, if there was one.
        body: response body or handshake message, if any.
    """

    def __init__(self, message: str, *, status: int | None = None, body: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class PhonePlayback(Generic[MarkT]):
    """The phone's loudspeaker: queued audio, played 20 ms per slot, markers echoed once played.

    Time is passed in (loop time, s); :meth:`run` is the clock that drives :meth:`play_slot`.

    Playback: audio from :meth:`receive` joins the queue, any size. Each slot plays up to
    ``slot_bytes`` of it; a byte counts as heard (appended to :attr:`heard`) at the start of
    its slot. Markers: :meth:`mark` queues a marker at the current end of the queue; it is
    echoed (``echo`` awaited) at the start of the first slot after that audio has finished
    playing. :meth:`clear` empties the queue and hands back the markers still waiting.

    Underruns: :attr:`underruns` counts the times a slot found less than ``slot_bytes`` after
    audio had been playing (the player ran dry) and more audio then arrived less than 200 ms
    later, i.e. a gap inside a burst. A clear resets this: running dry because of a clear is
    not an underrun.

    Args:
        slot_bytes: audio played per 20 ms slot, bytes (640 for L16 at 16 kHz, 160 for 8 kHz
            mu-law); may be set later (:attr:`slot_bytes`), before the first slot.
        echo: sends a marker back to the bridge (or drops it, to emulate a lost reply).

    Attributes:
        heard: all audio played so far.
        play_log: ``(slot start, loop time s; cumulative bytes heard)`` per slot that played.
        recv_log: ``(loop time s, cumulative bytes received)`` per message received.
        bytes_received: audio received so far, bytes (unplayable messages included).
        first_audio_at: loop time (s) of the first message received, or None.
        underruns: playback underruns, as defined above.
        cleared_bytes: queued audio dropped by clears, bytes.
        changed: set whenever audio is played or a waiter should look again.
    """

    __slots__ = (
        "_buffer",
        "_echo",
        "_marks",
        "_played_total",
        "_queued",
        "_queued_total",
        "_starved_at",
        "_was_playing",
        "bytes_received",
        "changed",
        "cleared_bytes",
        "first_audio_at",
        "heard",
        "play_log",
        "recv_log",
        "slot_bytes",
        "underruns",
    )

    def __init__(self, slot_bytes: int, echo: Callable[[MarkT], Awaitable[None]]) -> None:
        self.slot_bytes = slot_bytes
        self._echo = echo
        self.heard = bytearray()
        self.play_log: list[tuple[float, int]] = []
        self.recv_log: list[tuple[float, int]] = []
        self.bytes_received = 0
        self.first_audio_at: float | None = None
        self.underruns = 0
        self.cleared_bytes = 0
        self.changed = asyncio.Event()
        self._buffer = bytearray()
        self._marks: deque[tuple[int, MarkT]] = deque()
        self._queued_total = 0  # bytes ever queued (cleared ones included)
        self._played_total = 0  # bytes ever taken from the queue (cleared ones included)
        self._starved_at: float | None = None
        self._was_playing = False
        self._queued = asyncio.Event()  # wakes an idle clock

    # -- inputs --------------------------------------------------------------------------------

    def receive(self, now: float, audio: bytes, *, playable: bool = True) -> None:
        """Count one audio message from the bridge and queue it unless ``playable`` is False.

        Args:
            now: loop time of arrival, s.
            audio: the message's audio, any size.
            playable: False for a message the carrier would reject (counted, never played).
        """
        if self.first_audio_at is None:
            self.first_audio_at = now
        self.bytes_received += len(audio)
        self.recv_log.append((now, self.bytes_received))
        if not playable or not audio:
            return
        if self._starved_at is not None:
            if now - self._starved_at < UNDERRUN_GAP_S:
                self.underruns += 1
            self._starved_at = None
        self._buffer += audio
        self._queued_total += len(audio)
        self._queued.set()

    def mark(self, marker: MarkT) -> None:
        """Queue ``marker`` behind the audio queued so far."""
        self._marks.append((self._queued_total, marker))
        self._queued.set()

    def clear(self) -> list[MarkT]:
        """Drop the queued audio; return the markers that were waiting, in order."""
        self.cleared_bytes += len(self._buffer)
        self._played_total += len(self._buffer)
        self._buffer.clear()
        self._starved_at = None
        self._was_playing = False
        pending = [marker for _, marker in self._marks]
        self._marks.clear()
        self.changed.set()
        return pending

    @property
    def pending_marks(self) -> list[MarkT]:
        """The markers queued but not echoed yet, in order."""
        return [marker for _, marker in self._marks]

    # -- the clock -----------------------------------------------------------------------------

    async def play_slot(self, slot_start: float) -> bool:
        """One 20 ms slot: echo the markers already played through, then play up to a slot.

        Args:
            slot_start: loop time (s) the slot was due to start: its absolute deadline.

        Returns:
            True if the slot played any audio.
        """
        while self._marks and self._marks[0][0] <= self._played_total:
            await self._echo(self._marks.popleft()[1])
        n = min(self.slot_bytes, len(self._buffer))
        if n:
            self.heard += self._buffer[:n]
            del self._buffer[:n]
            self._played_total += n
            self.play_log.append((slot_start, len(self.heard)))
            self.changed.set()
        if n < self.slot_bytes:
            if self._was_playing and self._starved_at is None:
                self._starved_at = slot_start
            self._was_playing = False
        else:
            self._was_playing = True
        return n > 0

    async def run(
        self,
        *,
        started_at: float | None = None,
        after_slot: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        """Play slots every 20 ms on absolute deadlines until cancelled.

        Args:
            started_at: free-running clock: slot n is due at ``started_at + n * 20 ms``, even
                with nothing to play, and after a stall of more than 100 ms the missed slots
                are skipped rather than run in a burst (Twilio's media clock). None: the clock
                idles while nothing is queued and restarts when audio or a marker arrives
                (Vonage's player).
            after_slot: awaited after each slot with its number (the media clock's send side).
        """
        loop = asyncio.get_running_loop()
        origin = started_at
        n = 0
        while True:
            if origin is None:
                while not self._buffer and not self._marks:
                    self._queued.clear()
                    await self._queued.wait()
                origin = loop.time()  # (re)start the clock on the first arrival of a burst
                n = 0
            deadline = origin + n * _FRAME_S
            now = loop.time()
            if started_at is not None and now - deadline > MAX_LATE_S:
                n = math.ceil((now - origin) / _FRAME_S)
                deadline = origin + n * _FRAME_S
            if deadline > now:
                await asyncio.sleep(deadline - now)
            played = await self.play_slot(deadline)
            if after_slot is not None:
                await after_slot(n)
            n += 1
            if started_at is None and not played:
                origin = None  # ran dry: idle until the next arrival


class PhoneLine(ClosedOnExit, Generic[MarkT]):
    """One media WebSocket as the carrier's side sees it; subclasses speak the wire format.

    A subclass builds :attr:`playback`, opens :attr:`_ws` and starts :meth:`_receive` and the
    playback clock (``_clock_task``) under :attr:`_tasks`; it implements :meth:`_on_text` and
    :meth:`_on_binary` and may send a goodbye in :meth:`_before_hang_up`.

    Attributes:
        closed: set when the socket has closed, from either side.
        close_code: WebSocket close code, once closed (1006 for an abrupt loss).
        close_reason: reason from the bridge's close frame, or "".
    """

    error: ClassVar[type[CallerError]] = CallerError
    playback: PhonePlayback[MarkT]

    def _init_line(self, http: aiohttp.ClientSession, tasks_prefix: str) -> None:
        self._http = http
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._tasks = OwnedTasks(tasks_prefix)
        self._clock_task: asyncio.Task[None] | None = None
        self._hanging_up = False
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""

    # -- what the playback saw -----------------------------------------------------------------

    @property
    def heard(self) -> bytearray:
        """All the bridge's audio played so far."""
        return self.playback.heard

    @property
    def play_log(self) -> list[tuple[float, int]]:
        """``(slot start, loop time s; cumulative bytes heard)`` per slot that played."""
        return self.playback.play_log

    @property
    def recv_log(self) -> list[tuple[float, int]]:
        """``(loop time s, cumulative bytes received)`` per audio message received."""
        return self.playback.recv_log

    @property
    def bytes_received(self) -> int:
        """The bridge's audio received so far, bytes."""
        return self.playback.bytes_received

    @property
    def underruns(self) -> int:
        """Playback underruns (see :class:`PhonePlayback`)."""
        return self.playback.underruns

    @property
    def pending_marks(self) -> list[MarkT]:
        """The playback markers received but not echoed yet, in order."""
        return self.playback.pending_marks

    @property
    def cleared_bytes(self) -> int:
        """Queued audio dropped by ``clear``, bytes."""
        return self.playback.cleared_bytes

    # -- ending --------------------------------------------------------------------------------

    async def hang_up(self) -> None:
        """The caller hangs up: close the socket with 1000 and stop playback. Idempotent."""
        ws = self._ws
        if ws is None or self._hanging_up or self.closed.is_set():
            await self._tasks.cancel_all()
            return
        self._hanging_up = True
        if self._clock_task is not None:
            self._clock_task.cancel()
        await self._before_hang_up()
        # close() wakes the receive task itself; cancelling that task first would make aiohttp
        # record 1006 and skip the closing handshake.
        await ws.close(code=aiohttp.WSCloseCode.OK)
        await self._tasks.cancel_all()
        self._mark_closed(ws.close_code, "")
        logger.debug("fake %s hung up", type(self).__name__)

    async def close(self) -> None:
        """Clean up: hang up if still connected, and cancel the tasks. Idempotent."""
        await self.hang_up()

    async def _before_hang_up(self) -> None:
        """Hook: the last message before the caller's close frame (Twilio's ``stop``)."""

    # -- waiting -------------------------------------------------------------------------------

    async def wait_heard(self, n_bytes: int, timeout: float = 10.0) -> None:
        """Wait until at least ``n_bytes`` of the bridge's audio have been played.

        Args:
            n_bytes: played audio to wait for, bytes.
            timeout: give up after this long, s.

        Raises:
            TimeoutError: if not enough was heard in time.
            CallerError: if the socket closed first (playback stops on close).
        """
        heard = self.playback.heard
        await self._wait(
            lambda: len(heard) >= n_bytes,
            timeout,
            lambda: f"heard {len(heard)} of {n_bytes} bytes",
        )

    async def wait_closed(self, timeout: float = 10.0) -> None:
        """Wait until the socket has closed, from either side.

        Raises:
            TimeoutError: if it is still open after ``timeout``.
        """
        try:
            async with asyncio.timeout(timeout):
                await self.closed.wait()
        except TimeoutError:
            raise TimeoutError(f"socket still open after {timeout} s") from None

    async def _wait(
        self, done: Callable[[], bool], timeout: float, progress: Callable[[], str]
    ) -> None:
        """Wait until ``done()``, looking again each time the playback reports a change.

        Raises:
            TimeoutError: after ``timeout`` s, with ``progress()`` in the message.
            CallerError: (the subclass's) if the socket closes first.
        """
        changed = self.playback.changed
        try:
            async with asyncio.timeout(timeout):
                while not done():
                    if self.closed.is_set():
                        raise self.error(
                            f"socket closed (code {self.close_code}) after: {progress()}"
                        )
                    changed.clear()
                    await changed.wait()
        except TimeoutError:
            raise TimeoutError(f"{progress()} after {timeout} s") from None

    # -- the socket ----------------------------------------------------------------------------

    async def _open_socket(
        self, url: str, headers: Mapping[str, str]
    ) -> aiohttp.ClientWebSocketResponse:
        """Open the media WebSocket to ``url`` as the carrier does (no heartbeat).

        Raises:
            CallerError: (the subclass's) if the upgrade is refused (``status`` is the HTTP
                status, ``body`` the handshake message) or the connection fails (``status``
                None).
        """
        try:
            return await self._http.ws_connect(url, headers=headers, heartbeat=None)
        except aiohttp.WSServerHandshakeError as exc:
            raise self.error(
                f"websocket upgrade refused with HTTP {exc.status}",
                status=exc.status,
                body=exc.message,
            ) from exc
        except aiohttp.ClientError as exc:
            raise self.error(f"websocket connection to {url} failed: {exc}") from exc

    def _require_ws(self) -> aiohttp.ClientWebSocketResponse:
        if self._ws is None:
            raise self.error("not connected: call answer() and connect() first")
        return self._ws

    async def _receive(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Read the bridge's messages until the socket closes."""
        loop = asyncio.get_running_loop()
        while True:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.TEXT:
                await self._on_text(loop.time(), msg.data)
            elif msg.type is aiohttp.WSMsgType.BINARY:
                self._on_binary(loop.time(), msg.data)
            elif msg.type is aiohttp.WSMsgType.CLOSE:
                # The bridge closed; aiohttp has already answered the close frame.
                self._mark_closed(ws.close_code, msg.extra or "")
                return
            elif msg.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                if not self._hanging_up:  # hang_up marks its own close
                    self._mark_closed(ws.close_code, "")
                return
            elif msg.type is aiohttp.WSMsgType.ERROR:
                self._mark_closed(ws.close_code, "")
                return

    async def _on_text(self, now: float, data: str) -> None:
        raise NotImplementedError

    def _on_binary(self, now: float, data: bytes) -> None:
        raise NotImplementedError

    def _mark_closed(self, code: int | None, reason: str) -> None:
        if self.closed.is_set():
            return
        self.close_code = code
        self.close_reason = reason
        if self._clock_task is not None:
            self._clock_task.cancel()
        self.closed.set()
        self.playback.changed.set()  # wake the waiters so they fail fast
        self._on_closed()

    def _on_closed(self) -> None:
        """Hook: wake the subclass's own waiters."""

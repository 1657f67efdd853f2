"""Recording one media call to a stereo WAV, off the event loop. Shell: a thread writes.

:class:`CallRecorder` has two halves:

- on the event loop, three cheap hooks the call engine calls: :meth:`~CallRecorder.caller`
  (each caller frame as received, hot path: a ``bytearray`` append), :meth:`~CallRecorder.
  played` (each batch of reply frames handed to the caller, with when the batch ends on the
  playback timeline) and :meth:`~CallRecorder.cleared` (after a barge-in: the reply audio
  placed after that moment was cleared, never heard). Every :data:`HANDOFF_S`, what was
  gathered goes to the writer in one ``deque`` append (no lock, no wake-up);
- the process's one writer thread (every recording's), which wakes every :data:`TICK_S` and
  for each call places each piece at its sample position in a mixing window of
  :data:`WINDOW_S` (left = caller, right = assistant), cuts the assistant channel at a
  barge-in, and writes out what can no longer change: the audio older than
  :data:`LATE_S` before the latest handoff. The header's sizes are brought up to date every
  :data:`HEADER_EVERY_S` of audio, so even a file cut short by a crash opens.

The timeline is the event loop's clock from the recorder's start (the media socket's
opening). The caller channel is the caller's stream as received: frames follow on from each
other (jitter does not tear it); a frame arriving more than :data:`GAP_S` after where the
stream had got to starts a new segment where it arrived (a pause leaves silence), and while
later frames of that segment arrive earlier than it puts them, the segment moves back into the
gap (the gap was a delivery delay, or the loop read the first frame late): each segment starts
at the earliest time its frames' arrivals allow. The assistant channel holds what the caller
heard: each batch placed where the playout says it plays (``Playout.ahead_s``: after what was
sent before it), and at a barge-in everything placed after the barge-in's moment removed (the
``clear`` threw it away at the caller). The two channels are thus aligned to one clock, to
within a frame.

Memory per call: the window (``WINDOW_S`` of stereo PCM16: 384 kB at 16 kHz) plus at most
:data:`QUEUE_ITEMS` handoffs of about :data:`HANDOFF_S` each queued for the writer; past that
(a disk slower than real time) audio is dropped and counted, never held.

Every way a call ends goes through :meth:`CallRecorder.close` (``serve_media_call``'s ``finally``):
the rest is written, the header finalised and ``<name>.wav.part`` renamed ``<name>.wav``. A
failure of the writer (disk full, folder not writable) stops the recording, not the call:
the hooks turn into no-ops and the result says ``failed`` (with what was written so far kept
in a valid file when there is one).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeAlias

import numpy as np

from ..audio.formats import AudioFormat
from .wav import (
    CHANNELS,
    FRAME_BYTES,
    HEADER_BYTES,
    PARTIAL_SUFFIX,
    SUFFIX,
    decode_mulaw,
    file_stem,
    wav_header,
)

log = logging.getLogger(__name__)

HANDOFF_S = 1.0
"""Audio (caller + assistant, s) gathered on the loop before one handoff to the writer."""
TICK_S = 0.5
"""The writer thread works through every recording's handoffs this often."""
QUEUE_ITEMS = 4
"""Handoffs waiting for the writer at most (about 4 s of audio); more are dropped, counted."""
WINDOW_S = 6.0
"""The writer's mixing window, s: room for caller audio up to 1 s ahead of the clock
(``bridge.CALLER_BURST_S``), reply audio up to the playout's look-ahead (at most 2 s) ahead,
and :data:`LATE_S` plus a handoff's worth behind."""
LATE_S = 1.0
"""Caller audio may land this far behind the clock (frames held up in the network, then
delivered in a burst) and still take its place; older audio is final and written."""
GAP_S = 0.1
"""A caller frame arriving more than this after where the stream had got to starts after a
gap (silence): the caller's stream paused."""
FINISH_TIMEOUT_S = 5.0
"""How long :meth:`CallRecorder.close` waits for the writer to finish the file."""
MIN_WRITE_S = 0.5
"""The writer writes out at least this much at a time (except the end)."""
HEADER_EVERY_S = 5.0
"""The header's sizes are brought up to date after each this much audio written."""

STATUS_COMPLETE = "complete"
STATUS_FAILED = "failed"
STATUS_UNAVAILABLE = "unavailable"

_Item: TypeAlias = tuple[Any, ...]
"""``("c", start_s, bytes)`` caller audio, ``("a", end_s, [frame, ...])`` reply audio (where
it finishes playing), ``("x", at_s)`` cut the assistant channel from there on; times in s
from the recording's time 0."""
Opener: TypeAlias = Callable[[Path], IO[bytes]]
"""Opens the partial file for writing (tests pass one that fails on purpose)."""


def _open_file(path: Path) -> IO[bytes]:
    return open(path, "w+b")  # noqa: SIM115 (closed by the writer's finally)


# ------------------------------------------------------------------ result


@dataclass(frozen=True, slots=True)
class RecordingResult:
    """What became of a call's recording (the record's ``recording``).

    Attributes:
        status: ``complete``; ``failed`` (``error`` says why; a file may hold the audio up to
            the failure); ``unavailable`` (the front door carries no audio through us).
        url: where to fetch the file (``GET /calls/{uuid}/recording``), None without one.
        path: the file on disk, None without one.
        seconds: length of the file's audio, s.
        bytes: size of the file, header included.
        rate_hz: its sample rate (the front door's: 16000 Vonage, 8000 Twilio).
        dropped_s: audio the writer could not keep up with, dropped (gaps of silence), s.
        error: why it failed or is unavailable, or None.
    """

    status: str
    url: str | None = None
    path: Path | None = None
    seconds: float = 0.0
    bytes: int = 0
    rate_hz: int = 0
    dropped_s: float = 0.0
    error: str | None = None

    @classmethod
    def unavailable(cls, reason: str) -> RecordingResult:
        """A recording that could not be made at all (e.g. OpenAI SIP calls)."""
        return cls(STATUS_UNAVAILABLE, error=reason)

    def to_json(self) -> dict[str, Any]:
        """The record's ``recording`` object: ``url``, ``seconds``, ``bytes``, ``format``
        (``wav``), ``channels`` (2), ``rate_hz``, plus ``status``, ``dropped_s`` and
        ``error``."""
        has_file = self.path is not None
        return {
            "status": self.status,
            "url": self.url if has_file else None,
            "seconds": round(self.seconds, 3),
            "bytes": self.bytes,
            "format": "wav" if has_file else None,
            "channels": CHANNELS if has_file else None,
            "rate_hz": self.rate_hz if has_file else None,
            "dropped_s": round(self.dropped_s, 3),
            "error": self.error,
        }


# ------------------------------------------------------------------ writer thread


class _Writer:
    """The thread half: places audio in the mixing window and writes the file."""

    def __init__(
        self, directory: Path, stem: str, rate_hz: int, mulaw: bool, opener: Opener
    ) -> None:
        self.directory = directory
        self.partial = directory / (stem + PARTIAL_SUFFIX)
        self.final = directory / (stem + SUFFIX)
        self.rate = rate_hz
        self.mulaw = mulaw
        self.opener = opener
        self.pending: deque[tuple[float, list[_Item]] | None] = deque()  # None: the end
        self.done: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.context = contextvars.copy_context()  # its log lines carry the call id
        self.error: str | None = None  # set once the writer failed (read by the loop)
        self.window = np.zeros((int(WINDOW_S * rate_hz), CHANNELS), dtype="<i2")
        self.written = 0  # sample frames written to the file (the window's start)
        self.extent = 0  # sample frames placed so far (the file's length at the end)
        self.min_write = int(MIN_WRITE_S * rate_hz)
        self.header_every = int(HEADER_EVERY_S * rate_hz)
        self.header_at = 0  # sample frames the header says the file holds
        self.late = int(LATE_S * rate_hz)
        self.file: IO[bytes] | None = None
        self.path: Path | None = None  # the file holding the audio, once there is one

    def step(self) -> bool:
        """Work through the handoffs waiting (in the writer thread); True once finished."""
        return self.context.run(self._step)

    def _step(self) -> bool:
        try:
            if self.file is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                self.file = self.opener(self.partial)
                self.path = self.partial
                self.file.write(wav_header(self.rate, 0))
            rate, pending = self.rate, self.pending
            while pending:
                handoff = pending.popleft()
                if handoff is None:  # the call ended
                    self._write(self.extent)
                    self._finish_file()
                    self.done.set_result(None)
                    return True
                now_s, items = handoff
                for item in items:
                    self._place(item)
                now = round(now_s * rate)
                if now - self.late - self.written >= self.min_write:
                    self._write(now - self.late)
            return False
        except Exception as exc:  # the recording fails, never the call
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("recording failed: %s", self.error)
            self._finish_file()
            self.done.set_result(None)
            return True

    # The window is a ring: sample position p lives in row p % size. Rows before
    # ``written`` are zero (cleared once written out), so placing one channel never needs
    # the other, and nothing is ever shifted.

    def _spans(self, start: int, stop: int) -> list[tuple[int, int, int]]:
        """Rows of positions ``[start, stop)`` (at most one ring's worth) as
        ``(first row, last row + 1, offset into the range)``, one or two of them."""
        size = len(self.window)
        i = start % size
        n = stop - start
        if i + n <= size:
            return [(i, i + n, 0)]
        return [(i, size, 0), (0, n - (size - i), size - i)]

    def _place(self, item: _Item) -> None:
        kind, pos = item[0], round(item[1] * self.rate)
        window = self.window
        if kind == "x":  # barge-in: the reply audio from pos on was never heard
            start = max(pos, self.written)
            if start < self.extent:
                for a, b, _ in self._spans(start, self.extent):
                    window[a:b, 1] = 0
            return
        data = item[2] if kind == "c" else b"".join(item[2])
        samples = decode_mulaw(data) if self.mulaw else np.frombuffer(data, dtype="<i2")
        if kind == "a":  # placed by its end: where it finishes playing
            pos -= len(samples)
        size = len(window)
        if len(samples) > size:  # longer than the window (never with sane settings)
            pos += len(samples) - size
            samples = samples[-size:]
        if pos + len(samples) > self.written + size:  # too far ahead: write the oldest out
            self._write(pos + len(samples) - size)
        if pos < self.written:  # older than what is written: that part is lost
            samples = samples[self.written - pos :]
            pos = self.written
        n = len(samples)
        if not n:
            return
        channel = 0 if kind == "c" else 1
        for a, b, off in self._spans(pos, pos + n):
            window[a:b, channel] = samples[off : off + b - a]
        self.extent = max(self.extent, pos + n)

    def _write(self, upto: int) -> None:
        """Write the frames before sample position ``upto`` (at most a ring's worth)."""
        upto = min(upto, self.written + len(self.window))
        if upto <= self.written:
            return
        file, window = self.file, self.window
        assert file is not None
        for a, b, _ in self._spans(self.written, upto):
            file.write(window[a:b].tobytes())
            window[a:b] = 0
        self.written = upto
        if self.written - self.header_at >= self.header_every:
            self._patch_header()

    def _patch_header(self) -> None:
        """Rewrite the header's sizes for what is written so far: a file cut short here (a
        crash of the process) still opens, with all but the last moments."""
        file = self.file
        assert file is not None
        file.seek(0)
        file.write(wav_header(self.rate, self.written * FRAME_BYTES))
        file.seek(0, os.SEEK_END)
        file.flush()
        self.header_at = self.written

    def _finish_file(self) -> None:
        """Close the file with its final header and give it its final name (also after a
        failure, when the file is there: what was written stays playable)."""
        file, self.file = self.file, None
        if file is None:
            return
        with contextlib.suppress(OSError, ValueError):
            file.seek(0)
            file.write(wav_header(self.rate, self.written * FRAME_BYTES))
        with contextlib.suppress(OSError):
            file.close()
        try:
            os.replace(self.partial, self.final)
            self.path = self.final
        except OSError as exc:
            if self.error is None:
                self.error = f"{type(exc).__name__}: {exc}"


class _WriterThread:
    """The one thread that writes every recording of the process.

    It wakes every :data:`TICK_S` while there are recordings (and at once when one ends) and
    works through each one's handoffs: a handful of wake-ups a second whatever the number of
    calls, where a thread per call woke once per handoff each. A recording that fails is
    dropped from the round; the others go on.
    """

    def __init__(self) -> None:
        self._writers: list[_Writer] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, writer: _Writer) -> None:
        """Take ``writer`` into the rounds; start the thread if it is not running, and wake it."""
        with self._lock:
            self._writers.append(writer)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="call-recordings", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def wake(self) -> None:
        """Work now (a recording ended: its file is finished without waiting for a tick)."""
        self._wake.set()

    def _run(self) -> None:
        while True:
            with self._lock:
                writers = list(self._writers)
            self._wake.wait(TICK_S if writers else None)
            self._wake.clear()
            with self._lock:
                writers = list(self._writers)
            for writer in writers:
                try:
                    finished = writer.step()
                except BaseException as exc:  # never expected: step catches its failures
                    writer.error = writer.error or f"{type(exc).__name__}: {exc}"
                    if not writer.done.done():
                        writer.done.set_result(None)
                    finished = True
                if finished:
                    with self._lock:
                        self._writers.remove(writer)


_WRITER_THREAD = _WriterThread()


# ------------------------------------------------------------------ loop half


class CallRecorder:
    """One call's recording: the loop-side hooks and the writer thread behind them.

    Its writer thread starts at once; finish with :meth:`close` (every way the call ends).

    Args:
        directory: where the file goes (created if missing).
        call_uuid: the call id (names the file: ``wav.file_stem``).
        fmt: the caller's audio format (``CallSession.caller_format``): L16 or mu-law.
        url: what the result gives as the file's URL.
        now: the event loop's clock now, s: the recording's time 0.
        opener: opens the partial file (default: a plain file).
        queue_items: handoffs waiting for the writer at most (:data:`QUEUE_ITEMS`).
    """

    __slots__ = (
        "url",
        "_t0",
        "_s_per_byte",
        "_caller",
        "_caller_pos",
        "_caller_end",
        "_room",
        "_items",
        "_handoff_at",
        "_epoch",
        "_on",
        "_dropped_s",
        "_queue_items",
        "_writer",
    )

    def __init__(
        self,
        directory: Path,
        call_uuid: str,
        fmt: AudioFormat,
        *,
        url: str,
        now: float,
        opener: Opener = _open_file,
        queue_items: int = QUEUE_ITEMS,
    ) -> None:
        self.url = url
        self._queue_items = queue_items
        self._t0 = now
        self._s_per_byte = 1.0 / (fmt.sample_rate_hz * fmt.sample_bytes)
        # Times on the loop side are seconds since t0 (the writer turns them into samples).
        self._caller = bytearray()  # the current caller segment, not handed over yet
        self._caller_pos = 0.0  # where it starts, s
        self._caller_end = 0.0  # where the caller's stream has got to, s
        self._room = 0.0  # how far the current segment may still move back (into its gap), s
        self._items: list[_Item] = []
        self._handoff_at = now + HANDOFF_S  # loop clock
        self._epoch = 0
        self._on = True
        self._dropped_s = 0.0  # audio dropped (the writer's queue was full), s
        self._writer = _Writer(
            directory, file_stem(call_uuid), fmt.sample_rate_hz, fmt.encoding == "pcmu", opener
        )
        _WRITER_THREAD.add(self._writer)

    # -------------------------------------------------------------- hooks (on the loop)

    def caller(self, frame: bytes, now: float) -> None:
        """A caller frame as received (hot path), ``now`` on the loop clock."""
        if self._on:
            arrived = now - self._t0  # where it ends, had it just arrived
            length = len(frame) * self._s_per_byte
            end = self._caller_end
            if arrived - length - end > GAP_S:  # the stream paused (or is late): a gap
                self._new_segment(arrived - length, end)
            elif self._room and end + length > arrived:
                self._pull_back(end + length - arrived)
            self._caller += frame
            self._caller_end += length
            if now >= self._handoff_at:
                self._handoff(now)

    def _new_segment(self, start: float, end: float) -> None:
        if self._caller:
            self._items.append(("c", self._caller_pos, bytes(self._caller)))
            self._caller.clear()
        self._room = start - end
        self._caller_pos = self._caller_end = start

    def _pull_back(self, ahead: float) -> None:
        """The segment runs ahead of the clock since its gap: the gap was (partly) delivery
        delay, not a pause. Pull it back into the gap: the segment then starts at the
        earliest time its frames' arrivals allow."""
        back = min(ahead, self._room)
        self._room -= back
        self._caller_pos -= back
        self._caller_end -= back

    def played(self, frames: list[bytes], end_at: float, now: float) -> None:
        """Reply frames handed to the caller (at least one); they play until ``end_at``
        (loop clock, s: ``now + playout.ahead_s(now)`` right after the playout gave them)."""
        if self._on:
            self._items.append(("a", end_at - self._t0, frames))
            if now >= self._handoff_at:
                self._handoff(now)

    def cleared(self, epoch: int, now: float) -> None:
        """After a caller event that may barge in: ``epoch`` is the session's
        ``playback_epoch``; when it moved, the playout was cleared at ``now`` and the reply
        audio placed after it is cut."""
        if epoch != self._epoch:
            self._epoch = epoch
            if self._on:
                self._items.append(("x", now - self._t0))

    def _handoff(self, now: float) -> None:
        self._handoff_at = now + HANDOFF_S
        if self._writer.error is not None:  # the writer failed: stop recording
            self._on = False
            self._items = []
            self._caller.clear()
            return
        if self._caller:
            self._items.append(("c", self._caller_pos, bytes(self._caller)))
            self._caller.clear()
        self._caller_pos = self._caller_end
        self._room = 0.0  # what was handed over stays where it is
        items, self._items = self._items, []
        if len(self._writer.pending) >= self._queue_items:  # the disk is behind: drop
            self._dropped_s += self._s_per_byte * sum(
                len(i[2]) if i[0] == "c" else len(i[2]) * len(i[2][0]) for i in items if i[0] != "x"
            )
            return
        self._writer.pending.append((now - self._t0, items))

    # -------------------------------------------------------------- the end

    async def close(self, now: float | None = None) -> RecordingResult:
        """Hand over the rest, finish the file and say what became of it. The writer is
        told synchronously first, so the file is finished even if this await is cancelled.

        Args:
            now: the loop clock, s; default: now.
        """
        writer = self._writer
        if now is None:
            now = asyncio.get_running_loop().time()
        if self._on:
            if self._caller:
                self._items.append(("c", self._caller_pos, bytes(self._caller)))
                self._caller.clear()
            writer.pending.append((now - self._t0, self._items))
            self._items = []
        self._on = False
        writer.pending.append(None)
        _WRITER_THREAD.wake()
        try:
            async with asyncio.timeout(FINISH_TIMEOUT_S):
                await asyncio.wrap_future(writer.done)
        except TimeoutError:
            writer.error = writer.error or f"the writer did not finish in {FINISH_TIMEOUT_S:g} s"
        path = writer.path
        size = 0
        if path is not None:
            with contextlib.suppress(OSError):
                size = path.stat().st_size
        data = max(size - HEADER_BYTES, 0)
        return RecordingResult(
            status=STATUS_FAILED if writer.error is not None else STATUS_COMPLETE,
            url=self.url if path is not None and size else None,
            path=path if size else None,
            seconds=data / FRAME_BYTES / writer.rate,
            bytes=size,
            rate_hz=writer.rate,
            dropped_s=self._dropped_s,
            error=writer.error,
        )

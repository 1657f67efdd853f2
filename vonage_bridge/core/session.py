"""``CallSession``: the state of one bridged call, without I/O. Inputs in, outputs out.

The shell (``bridge.py``) feeds it caller frames, parsed caller events and parsed Realtime
events, then drains what it produced: client events for the Realtime socket, notes to log,
and audio frames for the caller through :attr:`playout`. It never touches a socket, a clock
or a task, so tests drive it with plain calls.

Call phases (one transition each way)::

    phase        input                         -> next phase
    CONNECTING   caller_connected()            -> CONNECTING (caller format known)
    CONNECTING   realtime_opened()             -> OPENING    (session.update queued)
    OPENING      flush_held() returns []       -> BRIDGING   (caller audio goes straight up)
    any          the shell ends the call       -> (the session is dropped)

The front door is invisible here: audio goes through an :class:`~.audio.path.AudioPath`
(Vonage: L16 resampled to and from 24 kHz PCM16; Twilio: mu-law passed through as
``audio/pcmu``) and playback commands are rendered by a
:class:`~.core.frontdoor.PlaybackCommands` (Vonage ``notify``/``clear``, Twilio
``mark``/``clear``).

Audio that arrives before BRIDGING is converted and held, then sent in order by
:meth:`flush_held`: the caller's first words matter.

Barge-in: the pacer reports each batch of frames it hands over (:meth:`frames_sent`), which
returns a playback marker (item id + ms of it sent) at most every 100 ms of audio; the front
door echoes it once played (:meth:`playback_marked`). On ``speech_started`` while the caller is
hearing a reply: ``clear`` for the caller (:meth:`drain_caller`), ``conversation.item.truncate``
at the last acknowledged ms (capped by the ms received), the playout emptied, and late deltas
of that item dropped. No ``response.cancel``: ``interrupt_response`` makes the server cancel
itself, and a second cancel would race it (``response_cancel_not_active``, logged at debug
if it ever happens).

DTMF goes to the transcript and, with ``DTMF_TO_MODEL``, to the model as user text. Tools:
each completed ``function_call`` (once per ``call_id``) becomes a :class:`RunTool` for the
shell (:meth:`drain_tool_calls`); :meth:`tool_result` sends the output back.

Source: style.md 7.3; protocols.md A3, C (caller side: notify/mark, clear), B1-B3 (Realtime side:
truncate, cancel, function calls); field-notes.md 6.1.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ..audio.formats import FRAME_MS, realtime_format_json
from ..audio.path import AudioPath, ResamplingPath
from ..audio.playout import Playout
from ..config import CallSettings, OpenAISettings
from ..realtime.instructions import call_instructions, session_update
from ..realtime.protocol import client_event, function_call_output, input_audio_append
from .events import (
    AudioDelta,
    AudioDone,
    CallerConnected,
    CallerDtmf,
    CallerEvent,
    FunctionCallDone,
    InputTranscriptCompleted,
    InputTranscriptFailed,
    OtherServerEvent,
    OutputTranscriptDone,
    PlaybackCleared,
    PlaybackMarked,
    RealtimeError,
    RealtimeEvent,
    ResponseCreated,
    ResponseDone,
    RunTool,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    StreamConnected,
    StreamStarted,
    StreamStopped,
    TranscriptEntry,
    UnknownCallerMessage,
)
from .frontdoor import PlaybackCommands

HOLD_LIMIT_MS = 60_000
"""Caller audio held before the Realtime session is ready, at most (the connect timeout
ends the call long before this in practice)."""
FLUSH_CHUNK_MS = 500
"""Held audio goes up in appends of this size (far below the 15 MiB event limit)."""
NOTIFY_EVERY_MS = 100
"""A playback marker (Vonage ``notify``, Twilio ``mark``) follows a batch of frames once this much
reply audio went out since the last one, and at the end of each stretch of audio: the
acknowledgements say what the caller has heard, to within this much (a lower bound)."""
TOOL_TEXT = 500
"""Tool calls and results are kept in the transcript cut to this many characters."""
ITEMS_KEPT = 8
"""Per-item playback accounting kept for this many recent assistant items."""


class _Segment:
    """Reply audio of one item queued in the playout, in caller-format bytes."""

    __slots__ = ("item", "bytes")

    def __init__(self, item: str, n: int) -> None:
        self.item = item
        self.bytes = n


class Phase(Enum):
    CONNECTING = "connecting"
    OPENING = "opening"
    BRIDGING = "bridging"


@dataclass(frozen=True, slots=True)
class CallInfo:
    """Who and what the call is, from the answer URL (untrusted, already bounded).

    ``call_uuid`` is the front door's call id: Vonage call UUID, Twilio call SID."""

    call_uuid: str
    conversation_uuid: str | None = None
    caller: str | None = None
    called: str | None = None


@dataclass(frozen=True, slots=True)
class Note:
    """Something the shell should log: ``level`` is a ``logging`` level name."""

    level: str
    message: str


@dataclass(slots=True)
class CallStats:
    """Counters for the per-call summary line."""

    frames_in: int = 0
    bad_frames: int = 0
    held_ms: float = 0.0
    dropped_held_ms: float = 0.0
    ms_to_realtime: float = 0.0
    deltas: int = 0
    ms_from_realtime: float = 0.0
    responses: int = 0
    speech_started: int = 0
    dtmf: int = 0
    realtime_errors: int = 0
    barge_ins: int = 0
    dropped_deltas: int = 0
    transcript: list[TranscriptEntry] = field(default_factory=list)
    """Entries in order, stamped with :attr:`CallSession.now`."""


class CallSession:
    """One bridged call's state.

    Args:
        info: the call's identity.
        openai: Realtime settings (model, voice, VAD, transcription).
        call: per-call settings (persona, resampler quality, look-ahead).
        path: the front door's audio path (``FrontDoor.path``): Vonage a
            ``ResamplingPath`` (a later ``websocket:connected`` may still change its rate
            before any audio), Twilio a ``PassthroughPath`` (mu-law as ``audio/pcmu``).
        commands: the front door's ``clear`` and playback markers (``FrontDoor.commands``).
        tools: the ``session.tools`` declarations (``tools.ToolRegistry.declarations``).
    """

    def __init__(
        self,
        info: CallInfo,
        *,
        openai: OpenAISettings,
        call: CallSettings,
        path: AudioPath,
        commands: PlaybackCommands,
        tools: list[dict[str, Any]] | None = None,
    ) -> None:
        self.info = info
        self._tools = tools or []
        self._tool_calls: list[RunTool] = []
        self._seen_calls: set[str] = set()  # call_ids already dispatched (never twice)
        self.end_requested = False  # a call-ending tool ran: end once the reply is heard
        self._openai = openai
        self._call = call
        self.phase = Phase.CONNECTING
        self.stats = CallStats()
        self.now = 0.0
        """Wall-clock Unix seconds, set by the shell before each input (transcript stamps):
        the session never reads a clock itself."""
        self.active_response: str | None = None
        self._held = bytearray()
        self._rt_out: list[str] = []
        self._notes: list[Note] = []
        self._warned: set[str] = set()
        self._out_pending = False  # deltas resampled since the last drain
        self._caller_out: list[str] = []  # text commands for the caller socket
        # Barge-in accounting, per assistant item (ms): received from Realtime (24 kHz),
        # handed to the caller (frames taken by the pacer), and acknowledged as played.
        self._recv_ms: dict[str, float] = {}
        self._sent_ms: dict[str, float] = {}
        self._heard_ms: dict[str, float] = {}
        self._segments: deque[_Segment] = deque()  # reply audio queued in the playout
        self._taken_item: str | None = None  # item of the last frame handed to the caller
        self._last_item: str | None = None  # item of the last delta received
        self._since_notify_ms = 0.0
        self._dropped_items: set[str] = set()  # truncated items: their late deltas are dropped
        self._response_wanted = False  # a response.create waits for the active one to end
        # interrupt_response is on in our session.update: the server cancels the active
        # response itself on speech_started, so we never send response.cancel for barge-in
        # (it would race the server and get response_cancel_not_active).
        self.server_interrupts = True
        self.playback_epoch = 0  # bumped by each barge-in (the playout was cleared)
        self._interrupted: str | None = None  # response cut by speech: its audio is dropped
        self._commands = commands
        self._resampled = isinstance(path, ResamplingPath)  # websocket:connected may change it
        self._configure(path)

    def _configure(self, path: AudioPath) -> None:
        self.path = path
        fmt = self.caller_format = path.caller
        self.realtime_format = path.realtime
        self.frame_bytes = fmt.frame_bytes(FRAME_MS)
        self.playout = Playout(
            self.frame_bytes, self._call.playout_lookahead_ms, silence_byte=fmt.silence_byte
        )
        self._caller_bytes_per_ms = fmt.bytes_per_ms
        self._rt_ms_per_byte = 1.0 / path.realtime.bytes_per_ms

    # ------------------------------------------------------------ caller side

    def caller_connected(self, event: CallerConnected) -> None:
        """``websocket:connected`` arrived; adopt its sample rate if no audio came yet."""
        if event.sample_rate_hz != self.caller_format.sample_rate_hz and self._resampled:
            if self.stats.frames_in == 0:
                self._configure(ResamplingPath(event.sample_rate_hz, self._call.resample_quality))
                self._note("info", f"caller audio is {event.content_type}")
            else:
                self._warn_once("rate", f"ignoring late content-type {event.content_type}")

    def caller_frame(self, frame: bytes) -> str | None:
        """One binary message from the caller (hot path).

        Args:
            frame: caller audio, normally exactly one 20 ms frame (Vonage: PCM16 LE mono,
                640 bytes at 16 kHz; Twilio: 160 bytes of mu-law).
        Returns:
            The ``input_audio_buffer.append`` to send now, or ``None`` when the audio is held
            (Realtime not ready yet) or the frame was unusable.
        """
        n = len(frame)
        if n != self.frame_bytes and not self._check_frame(n):
            return None
        self.stats.frames_in += 1
        up = self.path.up(frame)
        if self.phase is not Phase.BRIDGING:
            self._hold(up)
            return None
        if not up:
            return None
        self.stats.ms_to_realtime += len(up) * self._rt_ms_per_byte
        return input_audio_append(up)

    def _check_frame(self, n: int) -> bool:
        if n == 0 or n % self.caller_format.sample_bytes:
            self.stats.bad_frames += 1
            self._warn_once("odd", f"dropping caller frame of {n} bytes (not 16-bit PCM)")
            return False
        self._warn_once(
            "size", f"caller frame of {n} bytes, expected {self.frame_bytes}; using it anyway"
        )
        return True

    def _hold(self, audio: bytes) -> None:
        limit = self.realtime_format.ms_to_bytes(HOLD_LIMIT_MS)
        self._held += audio
        if len(self._held) > limit:
            excess = len(self._held) - limit
            del self._held[:excess]
            self.stats.dropped_held_ms += self.realtime_format.bytes_to_ms(excess)
            self._warn_once("hold", "Realtime not ready for 60 s: dropping the oldest held audio")

    def caller_message_invalid(self, reason: str) -> None:
        """A caller message that could not be used (bad JSON, a ``media`` payload that is not
        base64): counted with the bad frames, warned about once per call."""
        self.stats.bad_frames += 1
        self._warn_once("caller-bad", f"dropping bad caller message: {reason}")

    def caller_event(self, event: CallerEvent) -> None:
        """A parsed text message from the caller side (``vonage.wire``/``twilio.wire``)."""
        if isinstance(event, PlaybackMarked):  # the common one first (~10 a second)
            self.playback_marked(event.item, event.ms)
        elif isinstance(event, CallerDtmf):
            self._dtmf(event.digit)
        elif isinstance(event, CallerConnected):
            self.caller_connected(event)
        elif isinstance(event, PlaybackCleared | StreamStopped):
            pass  # a clear acknowledged (accounting reset when sent); stop: the shell ends
        elif isinstance(event, StreamConnected | StreamStarted):
            self._warn_once("restart", "ignoring a second stream start on a running call")
        elif isinstance(event, UnknownCallerMessage):
            self._warn_once(f"caller:{event.event}", f"ignoring caller event {event.event!r}")

    def _dtmf(self, digit: str) -> None:
        self.stats.dtmf += 1
        self.stats.transcript.append(TranscriptEntry.stamped("dtmf", digit, self.now))
        self._note("info", f"DTMF {digit}")
        if not self._call.dtmf_to_model:
            return
        item = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": f"The caller pressed {digit}"}],
        }
        self._rt_out.append(client_event({"type": "conversation.item.create", "item": item}))
        self._request_response()

    def _request_response(self) -> None:
        """``response.create`` now, or when the active response ends (a second one while one
        is active is refused with ``conversation_already_has_active_response``)."""
        if self.active_response is None:
            self._rt_out.append(client_event({"type": "response.create"}))
        else:
            self._response_wanted = True

    # ------------------------------------------------------------ playback and barge-in

    def frames_sent(self, n: int, epoch: int | None = None) -> str | None:
        """The pacer handed ``n`` frames from :attr:`playout` to the caller (once a batch).

        ``epoch`` is :attr:`playback_epoch` when the frames were taken: a barge-in since then
        cleared them, and they are not counted.

        Returns:
            A playback marker to send right after them, or ``None``. It names the item and
            the ms of it handed over up to the marker; the front door echoes it back
            (``events.PlaybackMarked``) once that audio has been played.
        """
        if epoch is not None and epoch != self.playback_epoch:
            return None
        left = n * self.frame_bytes
        segments = self._segments
        item: str | None = None
        while left > 0 and segments:
            seg = segments[0]
            item = seg.item
            have = seg.bytes
            used = min(have, left)
            left -= used
            ms = used / self._caller_bytes_per_ms
            self._sent_ms[item] = self._sent_ms.get(item, 0.0) + ms
            self._since_notify_ms += ms
            if used == have:
                segments.popleft()
            else:
                seg.bytes = have - used
        if item is None:
            return None
        self._taken_item = item
        if self._since_notify_ms < NOTIFY_EVERY_MS and self.playout.buffered_bytes:
            return None
        self._since_notify_ms = 0.0
        return self._commands.mark(item, int(self._sent_ms[item]))

    def playback_marked(self, item: str, ms: int) -> None:
        """A marker came back: the audio of ``item`` up to ``ms`` ms has been played to the
        caller. Markers of items cut by a barge-in (Twilio echoes pending marks after a
        ``clear``) and of unknown items are ignored."""
        if item in self._sent_ms and item not in self._dropped_items:
            self._heard_ms[item] = max(self._heard_ms.get(item, 0.0), float(ms))

    def heard_ms(self, item_id: str) -> int:
        """What the caller has heard of an item, ms: acknowledged by the front door, capped by
        the audio received for it (a truncate past that is refused by the API)."""
        heard = self._heard_ms.get(item_id, 0.0)
        return int(min(heard, self._recv_ms.get(item_id, 0.0)))

    def _playing_item(self) -> str | None:
        """The assistant item the caller is hearing (or about to), if any."""
        item = self._taken_item
        if item is not None and item not in self._dropped_items:
            if self._heard_ms.get(item, 0.0) < self._sent_ms.get(item, 0.0):
                return item
        if self._segments:
            return self._segments[0].item
        return None

    def _barge_in(self) -> None:
        """The caller spoke over the assistant: stop playback and truncate what was heard."""
        item = self._playing_item()
        if item is None:
            return
        self.stats.barge_ins += 1
        if self.active_response is not None and not self.server_interrupts:
            self._rt_out.append(client_event({"type": "response.cancel"}))
        self._caller_out.append(self._commands.clear())
        unheard = [item] + [s.item for s in self._segments if s.item != item]
        for i, other in enumerate(unheard):
            end = self.heard_ms(other) if i == 0 else 0
            self._dropped_items.add(other)
            if self._recv_ms.get(other, 0.0) <= 0:
                continue
            self._rt_out.append(
                client_event(
                    {
                        "type": "conversation.item.truncate",
                        "item_id": other,
                        "content_index": 0,
                        "audio_end_ms": end,
                    }
                )
            )
            if i == 0:
                self._note("info", f"barge-in: truncated {other} at {end} ms heard")
        self.playout.clear()
        self.playback_epoch += 1
        self._segments.clear()
        self._since_notify_ms = 0.0
        self._taken_item = None
        self._last_item = None
        self._out_pending = False
        self.path.reset_down()  # drop the tail it holds

    def _track_item(self, item_id: str, received: int, out: int) -> None:
        recv = self._recv_ms
        if item_id not in recv:
            for d in (recv, self._sent_ms, self._heard_ms):
                while len(d) >= ITEMS_KEPT:
                    del d[next(iter(d))]
            if len(self._dropped_items) > ITEMS_KEPT:
                self._dropped_items.clear()  # old ones: their responses ended long ago
            recv[item_id] = 0.0
        recv[item_id] += received * self._rt_ms_per_byte
        self._last_item = item_id
        self._queue_segment(item_id, out)

    def _queue_segment(self, item_id: str, n: int) -> None:
        if not n:
            return
        segments = self._segments
        if segments and segments[-1].item == item_id:
            segments[-1].bytes += n
        else:
            segments.append(_Segment(item_id, n))

    # ------------------------------------------------------------ Realtime side

    def realtime_opened(self) -> str:
        """The Realtime socket is open: returns the ``session.update`` to send first."""
        self.phase = Phase.OPENING
        instructions = call_instructions(
            self._call.system_message, caller=self.info.caller, called=self.info.called
        )
        fmt = realtime_format_json(self.realtime_format)
        return client_event(
            session_update(self._openai, instructions, self._tools, audio_format=fmt)
        )

    def flush_held(self) -> list[str]:
        """Appends for the audio held so far, in order; ``[]`` once everything is out.

        The shell calls this until it returns ``[]``; that call switches the session to
        BRIDGING, so no frame can slip between held audio and live audio.
        """
        if not self._held:
            self.phase = Phase.BRIDGING
            return []
        held = bytes(self._held)
        self._held.clear()
        rt = self.realtime_format
        self.stats.held_ms += rt.bytes_to_ms(len(held))
        self.stats.ms_to_realtime += rt.bytes_to_ms(len(held))
        step = rt.ms_to_bytes(FLUSH_CHUNK_MS)
        return [input_audio_append(held[i : i + step]) for i in range(0, len(held), step)]

    def realtime_event(self, event: RealtimeEvent) -> None:
        """One parsed server event."""
        if isinstance(event, AudioDelta):  # the common case first
            if event.item_id in self._dropped_items or event.response_id == self._interrupted:
                self.stats.dropped_deltas += 1  # late audio of a truncated item
                return
            self.stats.deltas += 1
            self.stats.ms_from_realtime += len(event.audio) * self._rt_ms_per_byte
            out = self.path.down(event.audio)
            if out:
                self.playout.push(out)
            self._track_item(event.item_id, len(event.audio), len(out))
            self._out_pending = True
        elif isinstance(event, AudioDone):
            if event.item_id not in self._dropped_items and event.response_id != self._interrupted:
                self._end_of_audio()
        elif isinstance(event, ResponseCreated):
            self.active_response = event.response_id
            self.stats.responses += 1
        elif isinstance(event, ResponseDone):
            if event.response_id == self.active_response:
                self.active_response = None
            self._end_of_audio()
            for call in event.function_calls:
                self._function_call(call)
            if self._response_wanted and self.active_response is None:
                self._response_wanted = False
                self._rt_out.append(client_event({"type": "response.create"}))
            if event.status not in ("completed", "cancelled"):
                self._note("warning", f"response {event.response_id} ended {event.status}")
        elif isinstance(event, FunctionCallDone):
            self._function_call(event)
        elif isinstance(event, InputTranscriptCompleted):
            self._transcript("caller", event.transcript)
        elif isinstance(event, OutputTranscriptDone):
            self._transcript("assistant", event.transcript)
        elif isinstance(event, SpeechStarted):
            self.stats.speech_started += 1
            if self.active_response is not None and self.server_interrupts:
                self._interrupted = self.active_response  # the server is cancelling it
            self._barge_in()
        elif isinstance(event, SpeechStopped | SessionUpdated):
            pass
        elif isinstance(event, InputTranscriptFailed):
            self._note("warning", f"caller transcription failed: {event.message}")
        elif isinstance(event, RealtimeError) and event.code == "response_cancel_not_active":
            # The server ended the response first (interrupt_response): a benign race.
            self._note("debug", f"Realtime: {event.message}")
        elif isinstance(event, RealtimeError):
            self.stats.realtime_errors += 1
            self._note(
                "warning",
                f"Realtime error {event.type}/{event.code}: {event.message}"
                + (f" (param {event.param})" if event.param else ""),
            )
        elif isinstance(event, OtherServerEvent) and not event.known:
            self._warn_once(f"rt:{event.type}", f"ignoring unknown Realtime event {event.type!r}")

    def _end_of_audio(self) -> None:
        if not self._out_pending:
            return
        self._out_pending = False
        tail = self.path.drain_down()
        if tail:
            self.playout.push(tail)
        before = self.playout.buffered_bytes
        self.playout.end_of_audio()
        extra = len(tail) + self.playout.buffered_bytes - before
        if self._last_item is not None:  # the tail and its padding belong to the last item
            self._queue_segment(self._last_item, extra)

    def _transcript(self, role: str, text: str) -> None:
        text = text.strip()
        if text:
            self.stats.transcript.append(TranscriptEntry.stamped(role, text, self.now))
            self._note("info", f"{role}: {text}")

    # ------------------------------------------------------------ tools

    def _function_call(self, call: FunctionCallDone) -> None:
        """A completed ``function_call`` item: run it once per ``call_id``."""
        if call.status != "completed" or not call.call_id or call.call_id in self._seen_calls:
            return
        self._seen_calls.add(call.call_id)
        self._tool_calls.append(RunTool(call.call_id, call.name, call.arguments))
        self.stats.transcript.append(
            TranscriptEntry.stamped(
                "tool_call", f"{call.name} {call.arguments}"[:TOOL_TEXT], self.now
            )
        )
        self._note("info", f"tool call {call.name} ({call.call_id})")

    def drain_tool_calls(self) -> list[RunTool]:
        """Tool runs for the shell to start, in order."""
        out, self._tool_calls = self._tool_calls, []
        return out

    def tool_result(self, call_id: str, output: str, *, end_call: bool = False) -> None:
        """A tool finished (``output``: its result or ``{"error": ...}`` as text).

        The output goes back as a ``function_call_output`` item, followed by
        ``response.create`` (deferred until the active response is done) so the model can
        speak about it; a call-ending tool asks for no new response and sets
        :attr:`end_requested` instead.
        """
        self._rt_out.append(function_call_output(call_id, output))
        self.stats.transcript.append(
            TranscriptEntry.stamped("tool_result", output[:TOOL_TEXT], self.now)
        )
        if end_call:
            self.end_requested = True
        else:
            self._request_response()

    @property
    def reply_finished(self) -> bool:
        """No response is active and no reply audio waits to be sent."""
        return self.active_response is None and not self.playout.buffered_bytes

    # ------------------------------------------------------------ outputs

    @property
    def has_output(self) -> bool:
        """Whether client events or notes are waiting to be drained (cheap check)."""
        return bool(self._rt_out or self._notes or self._caller_out or self._tool_calls)

    @property
    def has_notes(self) -> bool:
        """Whether notes are waiting to be drained."""
        return bool(self._notes)

    def drain_realtime(self) -> list[str]:
        """Client events queued for the Realtime socket (control events, not audio)."""
        out, self._rt_out = self._rt_out, []
        return out

    def drain_caller(self) -> list[str]:
        """Text commands queued for the caller socket (``clear``), in order."""
        out, self._caller_out = self._caller_out, []
        return out

    def drain_notes(self) -> list[Note]:
        """Notes for the shell to log, in order."""
        out, self._notes = self._notes, []
        return out

    def _note(self, level: str, message: str) -> None:
        self._notes.append(Note(level, message))

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self._note("warning", message)

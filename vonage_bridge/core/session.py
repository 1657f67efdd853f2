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

Barge-in: the bookkeeping is a :class:`~.core.ledger.PlaybackLedger` (its transitions are
tabled in ``core/ledger.py``). The pacer reports each batch of frames it hands over
(:meth:`frames_sent`), which returns a playback marker (item id + ms of it sent) at most every
100 ms of audio; the front door echoes it once played (:meth:`playback_marked`). On
``speech_started`` while the caller is hearing a reply: ``clear`` for the caller
(:meth:`drain_caller`), ``conversation.item.truncate`` at the last acknowledged ms (capped by
the ms received), the playout emptied, and late deltas of that item dropped. No
``response.cancel``: our ``session.update`` sets ``turn_detection.interrupt_response``, so
the server cancels the active response itself on ``speech_started``, and a second cancel would
race it (``response_cancel_not_active``, logged at debug if it ever happens). The one
``response.cancel`` we send is :meth:`hold_replies` (an answering machine's greeting plays on
an outbound call): every reply is cancelled as it starts, until :meth:`say`.

The call's assistant (``context``, a :class:`~.core.assistant.CallContext`; the default one
built from the settings without it) makes the ``session.update``. The call limits (run by the
shell's timer, ``core.limits``) speak through :meth:`prompt` (a ``response.create`` with
instructions) and :meth:`tell` (a system message); :attr:`caller_speaking` is the server
VAD's view of the caller.

DTMF goes to the transcript and, with ``DTMF_TO_MODEL``, to the model as user text. Tools:
each completed ``function_call`` (once per ``call_id``) becomes a :class:`RunTool` for the
shell (:meth:`drain_tool_calls`); :meth:`tool_result` sends the output back.

Sources: https://developer.vonage.com/en/voice/voice-api/concepts/websockets (Vonage
``notify``/``clear``); https://www.twilio.com/docs/voice/media-streams/websocket-messages
(Twilio ``mark``/``clear``); https://platform.openai.com/docs/api-reference/realtime-client-events
and https://platform.openai.com/docs/api-reference/realtime-server-events (truncate,
``response.create``, function calls, ``turn_detection.interrupt_response``).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

from ..audio.formats import FRAME_MS, realtime_format_json
from ..audio.path import AudioPath, ResamplingPath
from ..audio.playout import Playout
from ..config import CallSettings, OpenAISettings
from ..realtime.protocol import client_event, function_call_output, input_audio_append
from .assistant import CallContext, call_instructions_for, default_assistant, session_update
from .call_data import CallInfo, CallStats, Note, NoteLevel
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
    SessionCreated,
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
from .ledger import PlaybackLedger, Truncate

HOLD_LIMIT_MS = 60_000
"""Caller audio held before the Realtime session is ready, at most (the connect timeout
ends the call long before this in practice)."""
FLUSH_CHUNK_MS = 500
"""Held audio goes up in appends of this size (far below the 15 MiB event limit)."""
TOOL_TEXT = 500
"""Tool calls and results are kept in the transcript cut to this many characters."""


class Phase(Enum):
    """Where the session stands with Realtime: CONNECTING (no socket yet: caller audio is held),
    OPENING (``session.update`` sent: held audio goes next), BRIDGING (audio flows both ways)."""

    CONNECTING = "connecting"
    OPENING = "opening"
    BRIDGING = "bridging"


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
        tools: the ``session.tools`` declarations (``tools.ToolRegistry.declarations``);
            only those the assistant may use are declared.
        context: the call's assistant, extra instructions and variables; None: the default
            assistant built from ``openai`` and ``call`` (``assistant.default_assistant``).
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
        context: CallContext | None = None,
    ) -> None:
        self.info = info
        self.context = context or CallContext(default_assistant(openai, call))
        """Who answers the call (``context.assistant``) and what the call adds to it."""
        self.caller_speaking = False
        """Between ``speech_started`` and ``speech_stopped``: the server VAD hears the caller
        (the call limits' idea of caller speech)."""
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
        self.on_transcript: Callable[[TranscriptEntry], None] | None = None
        """Called with each transcript entry as it is added (the operator console's live
        view); never per audio frame: caller/assistant transcripts, DTMF, tools, barge-ins."""
        self.active_response: str | None = None
        self._held = bytearray()
        # Live caller audio goes up in appends of REALTIME_APPEND_MS: frames are gathered
        # here until there are that many (none with the default 20 ms, one frame an append).
        self._append_frames = max(1, call.realtime_append_ms // FRAME_MS)
        self._pending = bytearray()
        self._pending_frames = 0
        self._rt_out: list[str] = []
        self._notes: list[Note] = []
        self._warned: set[str] = set()
        self._out_pending = False  # deltas resampled since the last drain
        self._caller_out: list[str] = []  # text commands for the caller socket
        self._response_wanted = False  # a response.create waits for the active one to end
        self._wanted_instructions: str | None = None  # ... with these instructions (limits)
        self._interrupted: str | None = None  # response cut by speech: its audio is dropped
        self.holding = False
        """Replies are held (:meth:`hold_replies`): each response is cancelled as it starts."""
        self._commands = commands
        self._resampled = isinstance(path, ResamplingPath)  # websocket:connected may change it
        self.ledger = PlaybackLedger(path.caller.bytes_per_ms)
        """Barge-in bookkeeping: audio received, sent and heard per assistant item."""
        self._configure(path)

    def _configure(self, path: AudioPath) -> None:
        self.path = path
        fmt = self.caller_format = path.caller
        self.realtime_format = path.realtime
        self.frame_bytes = fmt.frame_bytes(FRAME_MS)
        self.playout = Playout(
            self.frame_bytes, self._call.playout_lookahead_ms, silence_byte=fmt.silence_byte
        )
        self.ledger.bytes_per_ms = fmt.bytes_per_ms
        self._rt_ms_per_byte = 1.0 / path.realtime.bytes_per_ms

    # ------------------------------------------------------------ caller side

    def caller_connected(self, event: CallerConnected) -> None:
        """``websocket:connected`` arrived; adopt its sample rate if no audio came yet."""
        if event.sample_rate_hz != self.caller_format.sample_rate_hz and self._resampled:
            if self.stats.frames_in == 0:
                self._configure(ResamplingPath(event.sample_rate_hz, self._call.resample_quality))
                self._note(NoteLevel.INFO, f"caller audio is {event.content_type}")
            else:
                self._warn_once("rate", f"ignoring late content-type {event.content_type}")

    def caller_frame(self, frame: bytes, frames: int = 1) -> str | None:
        """One binary message from the caller (hot path), or several already joined.

        Args:
            frame: caller audio, normally exactly one 20 ms frame (Vonage: PCM16 LE mono,
                640 bytes at 16 kHz; Twilio: 160 bytes of mu-law); or ``frames`` whole frames
                joined (frames that were already waiting together go up in one append).
            frames: how many frames ``frame`` holds (``len(frame) == frames * frame_bytes``
                when more than one).
        Returns:
            The ``input_audio_buffer.append`` to send now, or ``None`` when the audio is held
            (Realtime not ready yet), the frame was unusable, or (``REALTIME_APPEND_MS=40``)
            it waits for the next frame to go up in the same append. Live audio only starts
            after :meth:`flush_held` sent the held audio, so the order is kept.
        """
        n = len(frame)
        if n != self.frame_bytes * frames and not self._check_frame(n):
            return None
        self.stats.frames_in += frames
        up = self.path.up(frame)
        if self.phase is not Phase.BRIDGING:
            self._hold(up)
            return None
        if self._append_frames > 1:  # REALTIME_APPEND_MS=40: one append per two frames
            self._pending += up
            self._pending_frames += frames
            if self._pending_frames < self._append_frames:
                return None
            up = bytes(self._pending)
            self._pending.clear()
            self._pending_frames = 0
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
        self.stats.bad_caller_messages += 1
        self._warn_once("caller-bad", f"dropping bad caller message: {reason}")

    def caller_event(self, event: CallerEvent) -> None:
        """A parsed text message from the caller side (``vonage.wire``/``twilio.wire``)."""
        match event:
            case PlaybackMarked():  # the common one first (~10 a second)
                self.ledger.marked(event.item, event.ms)
            case CallerDtmf():
                self._dtmf(event.digit)
            case CallerConnected():
                self.caller_connected(event)
            case PlaybackCleared() | StreamStopped():
                pass  # a clear acknowledged (accounting reset when sent); stop: the shell ends
            case StreamConnected() | StreamStarted():
                self._warn_once("restart", "ignoring a second stream start on a running call")
            case UnknownCallerMessage():
                # One warning per call, not per name: a caller can make up names at will.
                self.stats.bad_caller_messages += 1
                self._warn_once(
                    "caller-unknown",
                    f"ignoring caller event {event.event!r} (and any other unknown event: counted)",
                )

    def _dtmf(self, digit: str) -> None:
        self.stats.dtmf += 1
        self._entry(TranscriptEntry.stamped("dtmf", digit, self.now))
        self._note(NoteLevel.INFO, f"DTMF {digit}")
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
        is active is refused with ``conversation_already_has_active_response``); nothing
        while replies are held."""
        if self.holding:
            return
        if self.active_response is None:
            self._rt_out.append(client_event({"type": "response.create"}))
        else:
            self._response_wanted = True

    def prompt(self, instructions: str) -> None:
        """Ask the model to say something now (the call limits: wrap up, still there,
        goodbye): a ``response.create`` whose ``response.instructions`` say what, sent at once
        or when the active response ends (the latest prompt wins); nothing while replies are
        held.
        Source: https://platform.openai.com/docs/api-reference/realtime-client-events/response/create
        """
        if self.holding:
            return
        if self.active_response is None:
            self._rt_out.append(_response_with(instructions))
        else:
            self._response_wanted = True
            self._wanted_instructions = instructions

    def hold_replies(self) -> None:
        """Keep the assistant quiet (an answering machine's greeting plays, outbound
        voicemail): the active response is cancelled (``response.cancel``) and its audio
        dropped, the caller's playback cleared, and every response that starts from now on
        (the server VAD creates one at each end of speech) is cancelled as it starts, until
        :meth:`say`. Idempotent.
        Source: https://platform.openai.com/docs/api-reference/realtime-client-events/response/cancel
        """
        if self.holding:
            return
        self.holding = True
        self._response_wanted = False
        self._wanted_instructions = None
        self._silence()

    def _silence(self) -> None:
        """Cancel the active response, drop its audio, clear what the caller hears."""
        active = self.active_response
        if active is not None:
            self._interrupted = active
            self._rt_out.append(client_event({"type": "response.cancel", "response_id": active}))
        cut = self.ledger.barge_in()
        if cut is not None:  # the caller hears it: clear, and truncate what was heard
            self._caller_out.append(self._commands.clear())
            self._truncate(cut.truncates)
        self.playout.clear()
        self._out_pending = False
        self.path.reset_down()

    def say(self, instructions: str) -> None:
        """End :meth:`hold_replies` and have the assistant speak now: :meth:`prompt` with
        ``instructions`` (e.g. to say a voicemail message word for word)."""
        self.holding = False
        self.prompt(instructions)

    def tell(self, text: str) -> None:
        """Give the model a system message for its next replies, without a reply now (the
        call limits' "wrap up"): a ``conversation.item.create`` of role ``system``.
        Source: https://platform.openai.com/docs/api-reference/realtime-client-events/conversation/item/create
        """
        item = {
            "type": "message",
            "role": "system",
            "content": [{"type": "input_text", "text": text}],
        }
        self._rt_out.append(client_event({"type": "conversation.item.create", "item": item}))

    # ------------------------------------------------------------ playback and barge-in

    @property
    def playback_epoch(self) -> int:
        """Bumped by each barge-in (the playout was cleared); see :meth:`frames_sent`."""
        return self.ledger.epoch

    def frames_sent(self, n: int, epoch: int | None = None) -> str | None:
        """The pacer handed ``n`` frames from :attr:`playout` to the caller (once a batch).

        ``epoch`` is :attr:`playback_epoch` when the frames were taken: a barge-in since then
        cleared them, and they are not counted.

        Returns:
            A playback marker to send right after them, or ``None``. It names the item and
            the ms of it handed over up to the marker; the front door echoes it back
            (``events.PlaybackMarked``) once that audio has been played.
        """
        marker = self.ledger.taken(n * self.frame_bytes, not self.playout.buffered_bytes, epoch)
        if marker is None:
            return None
        return self._commands.mark(*marker)

    def playback_marked(self, item: str, ms: int) -> None:
        """A marker came back: the audio of ``item`` up to ``ms`` ms has been played to the
        caller. Markers of items cut by a barge-in (Twilio echoes pending marks after a
        ``clear``) and of unknown items are ignored."""
        self.ledger.marked(item, ms)

    def heard_ms(self, item_id: str) -> int:
        """What the caller has heard of an item, ms: acknowledged by the front door, capped by
        the audio received for it (a truncate past that is refused by the API)."""
        return self.ledger.heard_ms(item_id)

    def _barge_in(self) -> None:
        """The caller spoke over the assistant: stop playback and truncate what was heard."""
        cut = self.ledger.barge_in()
        if cut is None:
            return
        self.stats.barge_ins += 1
        heard_ms = ", ".join(f"{t.audio_end_ms} ms" for t in cut.truncates)
        said = (
            f"the caller spoke over the reply (heard {heard_ms})"
            if heard_ms
            else "the caller spoke"
        )
        self._entry(TranscriptEntry.stamped("barge_in", said, self.now))
        self._caller_out.append(self._commands.clear())
        self._truncate(cut.truncates)
        if cut.truncates and cut.truncates[0].item_id == cut.item_id:
            heard = cut.truncates[0]
            self._note(
                NoteLevel.INFO,
                f"barge-in: truncated {heard.item_id} at {heard.audio_end_ms} ms heard",
            )
        self.playout.clear()
        self._out_pending = False
        self.path.reset_down()  # drop the tail it holds

    def _truncate(self, truncates: list[Truncate]) -> None:
        for item_id, audio_end_ms in truncates:
            self._rt_out.append(
                client_event(
                    {
                        "type": "conversation.item.truncate",
                        "item_id": item_id,
                        "content_index": 0,
                        "audio_end_ms": audio_end_ms,
                    }
                )
            )

    # ------------------------------------------------------------ Realtime side

    def realtime_opened(self) -> str:
        """The Realtime socket is open: returns the ``session.update`` to send first."""
        self.phase = Phase.OPENING
        instructions = call_instructions_for(
            self.context, caller=self.info.caller, called=self.info.called
        )
        fmt = realtime_format_json(self.realtime_format)
        return client_event(
            session_update(self.context.assistant, instructions, self._tools, audio_format=fmt)
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
        match event:
            case AudioDelta():  # the common case first (hot: ~10 a second per call)
                if event.response_id == self._interrupted or self.ledger.is_cut(event.item_id):
                    self.stats.dropped_deltas += 1  # late audio of a truncated item
                    return
                audio = event.audio
                ms = len(audio) * self._rt_ms_per_byte
                stats = self.stats
                stats.deltas += 1
                stats.ms_from_realtime += ms
                out = self.path.down(audio)
                if out:
                    self.playout.push(out)
                self.ledger.received(event.item_id, ms, len(out))
                self._out_pending = True
            case AudioDone():
                if event.response_id != self._interrupted and not self.ledger.is_cut(event.item_id):
                    self._end_of_audio()
            case ResponseCreated():
                self.active_response = event.response_id
                self.stats.responses += 1
                if self.holding:  # replies are held: cancelled as it starts
                    self._silence()
            case ResponseDone():
                self._response_done(event)
            case FunctionCallDone():
                self._function_call(event)
            case InputTranscriptCompleted():
                self.stats.usage.add_transcription(event.usage)
                self._transcript("caller", event.transcript)
            case OutputTranscriptDone():
                self._transcript("assistant", event.transcript)
            case SpeechStarted():
                self.stats.speech_started += 1
                self.caller_speaking = True
                if self.active_response is not None:
                    # interrupt_response: the server is cancelling it; drop its late audio
                    self._interrupted = self.active_response
                self._barge_in()
            case InputTranscriptFailed():
                self._note(NoteLevel.WARNING, f"caller transcription failed: {event.message}")
            case RealtimeError(code="response_cancel_not_active"):
                # The server ended the response first (interrupt_response): a benign race.
                self._note(NoteLevel.DEBUG, f"Realtime: {event.message}")
            case RealtimeError():
                self.stats.realtime_errors += 1
                codes = self.stats.realtime_error_codes
                codes[event.code] = codes.get(event.code, 0) + 1
                self._note(
                    NoteLevel.WARNING,
                    f"Realtime error {event.type}/{event.code}: {event.message}"
                    + (f" (param {event.param})" if event.param else ""),
                )
            case OtherServerEvent(known=False):
                self._warn_once(
                    f"rt:{event.type}", f"ignoring unknown Realtime event {event.type!r}"
                )
            case SpeechStopped():
                self.caller_speaking = False
            case SessionCreated() | SessionUpdated() | OtherServerEvent():
                pass  # nothing to do (known events we do not use)

    def _response_done(self, event: ResponseDone) -> None:
        self.stats.usage.add_response(event.usage)
        if event.response_id == self.active_response:
            self.active_response = None
        self._end_of_audio()
        for call in event.function_calls:
            self._function_call(call)
        if self._response_wanted and self.active_response is None:
            self._response_wanted = False
            wanted, self._wanted_instructions = self._wanted_instructions, None
            self._rt_out.append(
                client_event({"type": "response.create"})
                if wanted is None
                else _response_with(wanted)
            )
        if event.status not in ("completed", "cancelled"):
            self._note(NoteLevel.WARNING, f"response {event.response_id} ended {event.status}")

    def _end_of_audio(self) -> None:
        if not self._out_pending:
            return
        self._out_pending = False
        tail = self.path.drain_down()
        if tail:
            self.playout.push(tail)
        before = self.playout.buffered_bytes
        self.playout.end_of_audio()
        self.ledger.tail_queued(len(tail) + self.playout.buffered_bytes - before)

    def _entry(self, entry: TranscriptEntry) -> None:
        self.stats.transcript.append(entry)
        if self.on_transcript is not None:
            self.on_transcript(entry)

    def _transcript(self, role: str, text: str) -> None:
        text = text.strip()
        if text:
            self._entry(TranscriptEntry.stamped(role, text, self.now))
            self._note(NoteLevel.INFO, f"{role}: {text}")

    # ------------------------------------------------------------ tools

    def _function_call(self, call: FunctionCallDone) -> None:
        """A completed ``function_call`` item: run it once per ``call_id``."""
        if call.status != "completed" or not call.call_id or call.call_id in self._seen_calls:
            return
        self._seen_calls.add(call.call_id)
        self._tool_calls.append(RunTool(call.call_id, call.name, call.arguments))
        self._entry(
            TranscriptEntry.stamped(
                "tool_call", f"{call.name} {call.arguments}"[:TOOL_TEXT], self.now
            )
        )
        self._note(NoteLevel.INFO, f"tool call {call.name} ({call.call_id})")

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
        self._entry(TranscriptEntry.stamped("tool_result", output[:TOOL_TEXT], self.now))
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

    def _note(self, level: NoteLevel, message: str) -> None:
        self._notes.append(Note(level, message))

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self._note(NoteLevel.WARNING, message)


def _response_with(instructions: str) -> str:
    return client_event({"type": "response.create", "response": {"instructions": instructions}})

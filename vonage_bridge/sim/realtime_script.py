"""Scripted mode of the fake Realtime server: expected client events in, scripted server events out.

Entry ring (I/O-free helper of ``sim/realtime.py``): used by the tests, never by the core.

A test lists :class:`RealtimeStep` s, each an expected client event type (optionally with a
predicate on the event) and the server events to emit when it arrives; the fake replays them
in order instead of its own VAD and echo replies. Everything the client sent is recorded, and
:meth:`RealtimeScript.assert_complete` fails the test on an unexpected client event and on an
expected one that never came. The same idea as the OpenAI Agents SDK's scripted fake model
(``ScriptedRealtimeModel``, https://github.com/openai/openai-agents-python).

Usage::

    script = RealtimeScript(
        [
            RealtimeStep("session.update", emit=session_updated),
            RealtimeStep("response.create", emit=audio_reply(tone_24k)),
        ],
        ignore={"input_audio_buffer.append"},
    )
    call = await start_call(FakeRealtimeOptions(script=script))
    ...
    await script.wait_done(timeout=5)
    script.assert_complete()

Server event shapes: https://platform.openai.com/docs/api-reference/realtime-server-events
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "RealtimeScript",
    "RealtimeStep",
    "audio_reply",
    "session_updated",
]

JsonObject = dict[str, Any]
ServerEvents = Sequence[JsonObject]
Emit = ServerEvents | Callable[[JsonObject], ServerEvents]


@dataclass(frozen=True)
class RealtimeStep:
    """One step: the client event expected next, and the server events that answer it.

    Attributes:
        expect: the client event ``type``, e.g. ``"session.update"``.
        emit: server events to send when it arrives (each a JSON object with a ``type``; an
            ``event_id`` is added when missing), or a function of the client event that
            returns them.
        when: a predicate on the client event (as sent: appends carry base64 ``audio``); an
            event of the right type for which it is false is unexpected.
        note: shown in failure messages, e.g. ``"formats are PCM 24 kHz"``.
    """

    expect: str
    emit: Emit = ()
    when: Callable[[JsonObject], bool] | None = None
    note: str = ""

    def describe(self) -> str:
        return f"{self.expect!r}" + (f" ({self.note})" if self.note else "")


class RealtimeScript:
    """The steps of a scripted fake Realtime session, and what happened to them.

    Steps are matched in order, across every session the fake accepts while the script is set.

    Args:
        steps: the expected client events, in order.
        ignore: client event types that may come any number of times without a step (e.g.
            ``input_audio_buffer.append``); one that matches the next step still consumes it.

    Attributes:
        received: every client event the script saw, in order.
        matched: ``(step, client event)`` per step consumed, in order.
        failures: one message per unexpected client event or failing predicate or emit.
    """

    def __init__(self, steps: Iterable[RealtimeStep], *, ignore: Iterable[str] = ()) -> None:
        self.steps: tuple[RealtimeStep, ...] = tuple(steps)
        self.ignore = frozenset(ignore)
        self.received: list[JsonObject] = []
        self.matched: list[tuple[RealtimeStep, JsonObject]] = []
        self.failures: list[str] = []
        self._done = asyncio.Event()
        if not self.steps:
            self._done.set()

    @property
    def remaining(self) -> list[RealtimeStep]:
        """The steps whose client event has not come yet."""
        return list(self.steps[len(self.matched) :])

    def answer(self, event: JsonObject) -> list[JsonObject]:
        """Record one client event; the server events to emit for it (none if unexpected).

        Never raises: a predicate or emit function that raises is recorded as a failure.
        """
        self.received.append(event)
        type_ = event.get("type")
        index = len(self.matched)
        step = self.steps[index] if index < len(self.steps) else None
        if step is not None and type_ == step.expect:
            try:
                fits = step.when is None or bool(step.when(event))
            except Exception as exc:  # a broken predicate fails the test, not the session
                self.failures.append(
                    f"step {index + 1} {step.describe()}: predicate raised {exc!r}"
                )
                return []
            if fits:
                return self._consume(index, step, event)
        if type_ in self.ignore:
            return []
        if step is None:
            self.failures.append(f"unexpected {type_!r} after the last step")
        elif type_ == step.expect:
            self.failures.append(f"step {index + 1} {step.describe()}: predicate false for {event}")
        else:
            self.failures.append(
                f"step {index + 1} expected {step.describe()}, got {type_!r}: {_short(event)}"
            )
        return []

    def _consume(self, index: int, step: RealtimeStep, event: JsonObject) -> list[JsonObject]:
        self.matched.append((step, event))
        if len(self.matched) == len(self.steps):
            self._done.set()
        try:
            events = step.emit(event) if callable(step.emit) else step.emit
            return [dict(e) for e in events]
        except Exception as exc:
            self.failures.append(f"step {index + 1} {step.describe()}: emit raised {exc!r}")
            return []

    async def wait_done(self, timeout: float = 5.0) -> None:
        """Wait until every step has been matched.

        Raises:
            TimeoutError: if some step's client event has not come within ``timeout`` s; the
                message names the next step and the failures so far.
        """
        try:
            async with asyncio.timeout(timeout):
                await self._done.wait()
        except TimeoutError:
            raise TimeoutError(f"after {timeout} s: {self._report()}") from None

    def assert_complete(self) -> None:
        """Fail unless every step matched and no unexpected client event came.

        Raises:
            AssertionError: naming the steps still waiting and every failure.
        """
        if self.failures or self.remaining:
            raise AssertionError(self._report())

    def _report(self) -> str:
        lines = [f"{len(self.matched)} of {len(self.steps)} steps matched"]
        lines += [f"never came: {step.describe()}" for step in self.remaining]
        lines += self.failures
        return "; ".join(lines)


def _short(event: JsonObject) -> str:
    """An event for a message: base64 audio replaced by its length."""
    shown = dict(event)
    if isinstance(shown.get("audio"), str):
        shown["audio"] = f"<{len(shown['audio'])} base64 chars>"
    return str(shown)[:300]


# -- server event builders -----------------------------------------------------------------


def session_updated(event: JsonObject) -> list[JsonObject]:
    """Emit function: ``session.updated`` echoing the ``session`` of a ``session.update``."""
    return [{"type": "session.updated", "session": event.get("session", {})}]


def audio_reply(
    audio: bytes,
    *,
    response_id: str = "resp_scripted",
    item_id: str = "item_scripted",
    chunk_bytes: int = 4_800,
    transcript: str = "(scripted reply)",
) -> list[JsonObject]:
    """The server events of one completed audio response, as the GA API sends them.

    Args:
        audio: the reply in the session's output format (PCM16 at 24 kHz: 48 bytes per ms).
        response_id: the response's id.
        item_id: the assistant message item's id.
        chunk_bytes: audio per ``response.output_audio.delta`` (4800 = 100 ms at 24 kHz).
        transcript: the reply's transcript.

    Returns:
        ``response.created``, the deltas, ``response.output_audio.done``,
        ``response.output_audio_transcript.done`` and ``response.done`` (completed).

    Raises:
        ValueError: if chunk_bytes is not positive.
    """
    if chunk_bytes <= 0:
        raise ValueError(f"chunk_bytes must be > 0, got {chunk_bytes}")
    ids = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
    item = {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_audio", "transcript": transcript}],
    }
    events: list[JsonObject] = [
        {
            "type": "response.created",
            "response": {"object": "realtime.response", "id": response_id, "status": "in_progress"},
        }
    ]
    for start in range(0, len(audio), chunk_bytes):
        chunk = audio[start : start + chunk_bytes]
        delta = base64.b64encode(chunk).decode("ascii")
        events.append({"type": "response.output_audio.delta", **ids, "delta": delta})
    events.append({"type": "response.output_audio.done", **ids})
    events.append(
        {"type": "response.output_audio_transcript.done", **ids, "transcript": transcript}
    )
    events.append(
        {
            "type": "response.done",
            "response": {
                "object": "realtime.response",
                "id": response_id,
                "status": "completed",
                "output": [item],
            },
        }
    )
    return events

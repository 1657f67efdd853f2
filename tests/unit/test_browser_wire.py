"""The browser phone's wire (``browser.wire``) and the live-call hub (``hub``)."""

from __future__ import annotations

import json

import pytest

from vonage_bridge.browser.wire import BROWSER_COMMANDS, parse_text
from vonage_bridge.core.events import (
    CallerDtmf,
    PlaybackCleared,
    PlaybackMarked,
    TranscriptEntry,
    UnknownCallerMessage,
)
from vonage_bridge.errors import RemoteProtocolError
from vonage_bridge.hub import LOST, QUEUE_LIMIT, CallHub, LiveView


def test_marks_round_trip_and_clear_is_a_json_command() -> None:
    mark = BROWSER_COMMANDS.mark("item_1", 300)
    assert json.loads(mark) == {"event": "mark", "item": "item_1", "ms": 300}
    assert parse_text(mark) == PlaybackMarked("item_1", 300)
    assert json.loads(BROWSER_COMMANDS.clear()) == {"event": "clear"}
    assert parse_text('{"event": "cleared"}') == PlaybackCleared()
    assert parse_text('{"event": "dtmf", "digit": "#"}') == CallerDtmf("#", None)
    assert parse_text('{"event": "hello"}') == UnknownCallerMessage("hello")


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1]",
        '{"event": "mark", "item": 1, "ms": 2}',
        '{"event": "mark", "item": "a", "ms": true}',
        '{"event": "dtmf", "digit": "x"}',
    ],
)
def test_bad_messages_are_protocol_errors(raw: str) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_text(raw)


def test_hub_publishes_start_lines_and_end_to_every_subscriber() -> None:
    hub = CallHub()
    a, b = hub.subscribe(), hub.subscribe()
    view = LiveView("call-1", "vonage", "inbound", "447700900000", "447700900001")
    hub.started(view)
    entry = TranscriptEntry("caller", "hello")
    view.transcript.append(entry)
    hub.line("call-1", entry)
    hub.line("unknown-call", entry)  # not live: nothing
    hub.ended("call-1", "caller hung up")
    hub.ended("call-1", "again")  # once
    for q in (a, b):
        events = [q.get_nowait() for _ in range(q.qsize())]
        assert [e["type"] for e in events] == ["start", "line", "end"]
        assert events[0]["call"]["from"] == "447700900000"
        assert events[1]["entry"] == {"role": "caller", "text": "hello", "at": None}
        assert events[2]["reason"] == "caller hung up"
    assert hub.calls == {}
    hub.unsubscribe(a)
    hub.started(view)
    assert a.empty() and b.qsize() == 1


def test_a_subscriber_that_falls_behind_is_dropped_not_waited_for() -> None:
    hub = CallHub()
    slow = hub.subscribe()
    view = LiveView("call-1", "twilio", "inbound", None, None)
    hub.started(view)
    for n in range(QUEUE_LIMIT):
        hub.line("call-1", TranscriptEntry("caller", str(n)))
    assert hub.subscribers == 0
    assert slow.qsize() == 1 and slow.get_nowait() is LOST

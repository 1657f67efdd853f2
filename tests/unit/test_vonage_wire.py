"""Vonage WebSocket text messages: parse real shapes, build commands.

Source: https://developer.vonage.com/en/voice/voice-api/concepts/websockets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from vonage_bridge.core.events import (
    CallerConnected,
    CallerDtmf,
    PlaybackCleared,
    PlaybackMarked,
    UnknownCallerMessage,
)
from vonage_bridge.errors import RemoteProtocolError
from vonage_bridge.vonage.wire import (
    CLEAR_COMMAND,
    VONAGE_COMMANDS,
    notify_command,
    parse_content_type,
    parse_text,
)


def wire(doc: Any) -> str:
    return json.dumps(doc)


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
def test_parse_text_connected_reads_rate_from_content_type(rate: int) -> None:
    ct = f"audio/l16;rate={rate}"
    event = parse_text(wire({"event": "websocket:connected", "content-type": ct}))
    assert event == CallerConnected(ct, rate, {})


def test_parse_text_connected_top_level_keys_become_headers() -> None:
    raw = (
        '{"event":"websocket:connected","content-type":"audio/l16;rate=16000",'
        '"call_uuid":"63f61863-4a51","caller":"447700900000","called":"447700900001"}'
    )
    event = parse_text(raw)
    assert isinstance(event, CallerConnected)
    assert event.sample_rate_hz == 16000
    assert event.headers == {
        "call_uuid": "63f61863-4a51",
        "caller": "447700900000",
        "called": "447700900001",
    }


@pytest.mark.parametrize(
    ("content_type", "rate"),
    [
        ("audio/l16;rate=16000", 16000),
        ("Audio/L16; rate=8000", 8000),
        ("audio/l16;channels=1;rate=24000", 24000),
    ],
)
def test_parse_content_type_accepts_l16_variants(content_type: str, rate: int) -> None:
    assert parse_content_type(content_type) == rate


@pytest.mark.parametrize(
    "content_type",
    [
        "audio/l16;rate=44100",
        "audio/l16",
        "audio/l16;rate=abc",
        "audio/pcmu;rate=8000",
        "audio/x-raw",
        "",
    ],
)
def test_parse_text_connected_with_unsupported_content_type_raises(content_type: str) -> None:
    raw = wire({"event": "websocket:connected", "content-type": content_type})
    with pytest.raises(RemoteProtocolError):
        parse_text(raw)


@pytest.mark.parametrize("bad", [None, 16000, ["audio/l16;rate=16000"]])
def test_parse_text_connected_without_string_content_type_raises(bad: Any) -> None:
    doc: dict[str, Any] = {"event": "websocket:connected", "call_uuid": "x"}
    if bad is not None:
        doc["content-type"] = bad
    with pytest.raises(RemoteProtocolError):
        parse_text(wire(doc))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('{"event":"websocket:dtmf","digit":"5","duration":260}', CallerDtmf("5", 260)),
        ('{"event":"websocket:dtmf","digit":"#","duration":100}', CallerDtmf("#", 100)),
        ('{"event":"websocket:dtmf","digit":"*"}', CallerDtmf("*", None)),
        ('{"event":"websocket:dtmf","digit":"0","duration":"260"}', CallerDtmf("0", None)),
        ('{"event":"websocket:dtmf","dtmf":{"digit":"7","duration":180}}', CallerDtmf("7", None)),
    ],
)
def test_parse_text_dtmf_reads_top_level_or_nested_digit(raw: str, expected: CallerDtmf) -> None:
    assert parse_text(raw) == expected


@pytest.mark.parametrize(
    "doc",
    [
        {"event": "websocket:dtmf"},
        {"event": "websocket:dtmf", "digit": "A"},
        {"event": "websocket:dtmf", "digit": "55"},
        {"event": "websocket:dtmf", "digit": ""},
        {"event": "websocket:dtmf", "digit": 5},
        {"event": "websocket:dtmf", "dtmf": {"digit": "x"}},
        {"event": "websocket:dtmf", "dtmf": "5"},
    ],
)
def test_parse_text_dtmf_with_bad_digit_raises(doc: dict[str, Any]) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_text(wire(doc))


def test_parse_text_notify_with_our_payload_returns_playback_marked() -> None:
    raw = '{"event":"websocket:notify","payload":{"item":"item_7","ms":340}}'
    assert parse_text(raw) == PlaybackMarked("item_7", 340)


@pytest.mark.parametrize(
    "raw",
    [
        '{"event":"websocket:notify","payload":{"name":"m7"}}',
        '{"event":"websocket:notify","payload":{"item":"item_7","ms":"340"}}',
        '{"event":"websocket:notify","payload":{"item":"item_7","ms":true}}',
        '{"event":"websocket:notify","payload":{"item":7,"ms":340}}',
        '{"event":"websocket:notify"}',
        '{"event":"websocket:notify","payload":"m7"}',
    ],
)
def test_parse_text_notify_not_ours_is_unknown(raw: str) -> None:
    assert parse_text(raw) == UnknownCallerMessage("websocket:notify")


def test_vonage_commands_render_clear_and_notify() -> None:
    assert json.loads(VONAGE_COMMANDS.clear()) == {"action": "clear"}
    assert json.loads(VONAGE_COMMANDS.mark("item_1", 120)) == {
        "action": "notify",
        "payload": {"item": "item_1", "ms": 120},
    }


def test_parse_text_cleared_returns_playback_cleared() -> None:
    assert parse_text('{"event":"websocket:cleared"}') == PlaybackCleared()


@pytest.mark.parametrize(
    ("raw", "event"),
    [
        (
            '{"event":"websocket:media:update","method":"update","active":0}',
            "websocket:media:update",
        ),
        ('{"event":"websocket:something-new","x":1}', "websocket:something-new"),
    ],
)
def test_parse_text_unknown_event_is_skipped_not_an_error(raw: str, event: str) -> None:
    assert parse_text(raw) == UnknownCallerMessage(event)


@pytest.mark.parametrize(
    "raw",
    ["not json", "", "{", '["websocket:connected"]', '"websocket:cleared"', "42", "null"],
)
def test_parse_text_non_object_raises_remote_protocol_error(raw: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_text(raw)
    assert info.value.close_code == 1003


@pytest.mark.parametrize(
    "raw",
    ["[" * 3000 + "]" * 3000, '{"event":"websocket:dtmf","dtmf":' * 40 + "{}" + "}" * 40],
)
def test_parse_text_deeply_nested_json_raises_remote_protocol_error(raw: str) -> None:
    """Deeper than 32 levels: refused before parsing (json.loads would recurse)."""
    with pytest.raises(RemoteProtocolError, match="nested deeper than 32 levels"):
        parse_text(raw)


def test_parse_text_unknown_event_name_is_cut_short() -> None:
    event = parse_text(json.dumps({"event": "x" * 10_000}))
    assert event == UnknownCallerMessage("x" * 64)


def test_notify_command_is_compact_json_with_payload() -> None:
    cmd = notify_command({"name": "m7"})
    assert cmd == '{"action":"notify","payload":{"name":"m7"}}'
    assert json.loads(cmd) == {"action": "notify", "payload": {"name": "m7"}}


def test_clear_command_is_json_clear_action() -> None:
    assert json.loads(CLEAR_COMMAND) == {"action": "clear"}

"""Twilio Media Streams text messages: parse real shapes, build commands.

Source: https://www.twilio.com/docs/voice/media-streams/websocket-messages."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from vonage_bridge.core.events import (
    CallerDtmf,
    PlaybackMarked,
    StreamConnected,
    StreamStarted,
    StreamStopped,
    UnknownCallerMessage,
)
from vonage_bridge.errors import LocalProtocolError, RemoteProtocolError
from vonage_bridge.twilio.wire import (
    FRAME_BYTES,
    STREAM_ENCODING,
    STREAM_RATE_HZ,
    TwilioCommands,
    mark_name,
    parse_mark_name,
    parse_message,
)

# The examples of Twilio's Media Streams messages page (media gets a real payload below).
CONNECTED = '{"event":"connected","protocol":"Call","version":"1.0.0"}'
START = (
    '{"event":"start","sequenceNumber":"1","streamSid":"MZ…","start":{"streamSid":"MZ…",'
    '"accountSid":"AC…","callSid":"CA…","tracks":["inbound"],"customParameters":{"k":"v"},'
    '"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}'
)
DTMF = (
    '{"event":"dtmf","streamSid":"MZ…","sequenceNumber":"5",'
    '"dtmf":{"track":"inbound_track","digit":"1"}}'
)
MARK = '{"event":"mark","sequenceNumber":"4","streamSid":"MZ…","mark":{"name":"m7"}}'
STOP = (
    '{"event":"stop","sequenceNumber":"5","streamSid":"MZ…",'
    '"stop":{"accountSid":"AC…","callSid":"CA…"}}'
)
FRAME = bytes(range(96, 256))  # 160 bytes of mu-law
assert len(FRAME) == FRAME_BYTES
PAYLOAD = base64.b64encode(FRAME).decode()
MEDIA = (
    '{"event":"media","sequenceNumber":"3","streamSid":"MZ…","media":{"track":"inbound",'
    '"chunk":"2","timestamp":"5","payload":"' + PAYLOAD + '"}}'
)

SID = "MZ18ad3ab5a668481ce02b83e7395059f0"


def wire(doc: Any) -> str:
    return json.dumps(doc)


def media_doc(**media: Any) -> dict[str, Any]:
    return {"event": "media", "sequenceNumber": "3", "streamSid": SID, "media": media}


def start_doc(**start: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "streamSid": SID,
        "accountSid": "AC0123456789abcdef0123456789abcdef",
        "callSid": "CA0123456789abcdef0123456789abcdef",
        "tracks": ["inbound"],
        "customParameters": {},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }
    body.update(start)
    return {"event": "start", "sequenceNumber": "1", "streamSid": SID, "start": body}


# ---------------------------------------------------------------- the documented shapes


def test_parse_message_connected_returns_protocol_and_version() -> None:
    assert parse_message(CONNECTED) == StreamConnected("Call", "1.0.0")


def test_parse_message_start_returns_stream_metadata() -> None:
    assert parse_message(START) == StreamStarted(
        stream_sid="MZ…",
        call_sid="CA…",
        account_sid="AC…",
        custom_parameters={"k": "v"},
        encoding="audio/x-mulaw",
        sample_rate_hz=8000,
        channels=1,
    )


def test_parse_message_media_returns_decoded_mulaw_bytes() -> None:
    audio = parse_message(MEDIA)
    assert type(audio) is bytes
    assert audio == FRAME


def test_parse_message_dtmf_returns_digit() -> None:
    assert parse_message(DTMF) == CallerDtmf("1", None)


def test_parse_message_mark_not_named_by_us_is_skipped_not_an_error() -> None:
    assert parse_message(MARK) == UnknownCallerMessage("mark")


def test_parse_message_stop_returns_stream_stopped() -> None:
    assert parse_message(STOP) == StreamStopped()


def test_stream_constants_describe_20ms_of_8khz_mulaw() -> None:
    assert STREAM_ENCODING == "audio/x-mulaw"
    assert STREAM_RATE_HZ == 8000
    assert FRAME_BYTES == STREAM_RATE_HZ * 20 // 1000 == 160


# ---------------------------------------------------------------- connected / start


def test_parse_message_connected_without_fields_gives_empty_strings() -> None:
    assert parse_message('{"event":"connected","version":1}') == StreamConnected("", "")


def test_parse_message_start_takes_top_level_stream_sid_when_start_has_none() -> None:
    doc = start_doc()
    del doc["start"]["streamSid"]
    event = parse_message(wire(doc))
    assert isinstance(event, StreamStarted)
    assert event.stream_sid == SID
    assert event.call_sid == "CA0123456789abcdef0123456789abcdef"
    assert event.account_sid == "AC0123456789abcdef0123456789abcdef"


def test_parse_message_start_prefers_stream_sid_inside_start() -> None:
    doc = start_doc(streamSid="MZinner")
    event = parse_message(wire(doc))
    assert isinstance(event, StreamStarted)
    assert event.stream_sid == "MZinner"


def test_parse_message_start_keeps_only_string_custom_parameters() -> None:
    params = {"call_sid": "CA1", "from": "+14155550100", "n": 3, "x": None, "l": ["a"]}
    event = parse_message(wire(start_doc(customParameters=params)))
    assert isinstance(event, StreamStarted)
    assert event.custom_parameters == {"call_sid": "CA1", "from": "+14155550100"}


@pytest.mark.parametrize("params", [None, "k=v", ["k", "v"], 5])
def test_parse_message_start_with_non_object_custom_parameters_gives_empty_dict(
    params: Any,
) -> None:
    doc = start_doc(customParameters=params)
    event = parse_message(wire(doc))
    assert isinstance(event, StreamStarted)
    assert event.custom_parameters == {}


@pytest.mark.parametrize(
    ("media_format", "expected"),
    [
        (
            {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            ("audio/x-mulaw", 8000, 1),
        ),
        (
            {"encoding": "audio/x-l16", "sampleRate": 16000, "channels": 2},
            ("audio/x-l16", 16000, 2),
        ),
        ({}, ("audio/x-mulaw", 8000, 1)),
        (None, ("audio/x-mulaw", 8000, 1)),
        ({"encoding": "", "sampleRate": "8000", "channels": True}, ("audio/x-mulaw", 8000, 1)),
        ({"encoding": 7, "sampleRate": 8000.0, "channels": None}, ("audio/x-mulaw", 8000, 1)),
    ],
)
def test_parse_message_start_reads_media_format_with_defaults(
    media_format: Any, expected: tuple[str, int, int]
) -> None:
    doc = start_doc(mediaFormat=media_format)
    if media_format is None:
        del doc["start"]["mediaFormat"]
    event = parse_message(wire(doc))
    assert isinstance(event, StreamStarted)
    assert (event.encoding, event.sample_rate_hz, event.channels) == expected


@pytest.mark.parametrize(
    "doc",
    [
        {"event": "start", "streamSid": SID},
        {"event": "start", "streamSid": SID, "start": "x"},
        {"event": "start", "streamSid": SID, "start": None},
        {"event": "start", "start": {"accountSid": "AC1", "callSid": "CA1"}},
        {"event": "start", "start": {"streamSid": "", "accountSid": "AC1", "callSid": "CA1"}},
        {"event": "start", "start": {"streamSid": 5, "accountSid": "AC1", "callSid": "CA1"}},
        {"event": "start", "start": {"streamSid": SID, "accountSid": "AC1"}},
        {"event": "start", "start": {"streamSid": SID, "accountSid": "AC1", "callSid": ""}},
        {"event": "start", "start": {"streamSid": SID, "accountSid": "AC1", "callSid": 1}},
        {"event": "start", "start": {"streamSid": SID, "callSid": "CA1"}},
        {"event": "start", "start": {"streamSid": SID, "accountSid": None, "callSid": "CA1"}},
    ],
)
def test_parse_message_start_without_required_sids_raises(doc: dict[str, Any]) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_message(wire(doc))


# ---------------------------------------------------------------- media


def test_parse_message_media_without_track_counts_as_inbound() -> None:
    assert parse_message(wire(media_doc(payload=PAYLOAD))) == FRAME


@pytest.mark.parametrize("track", ["outbound", "inbound_track", "both_tracks", "", 1])
def test_parse_message_media_on_another_track_is_skipped(track: Any) -> None:
    event = parse_message(wire(media_doc(track=track, payload=PAYLOAD)))
    assert event == UnknownCallerMessage(f"media:{track}")


@pytest.mark.parametrize("size", [1, 80, 160, 400])
def test_parse_message_media_returns_payload_of_any_size(size: int) -> None:
    audio = bytes([0xFF]) * size
    raw = wire(media_doc(track="inbound", payload=base64.b64encode(audio).decode()))
    assert parse_message(raw) == audio


@pytest.mark.parametrize(
    "media",
    [
        None,
        "payload",
        {"track": "inbound"},
        {"track": "inbound", "payload": None},
        {"track": "inbound", "payload": 123},
        {"track": "inbound", "payload": ["/w=="]},
        {"track": "inbound", "payload": ""},
        {"track": "inbound", "payload": "not base64!"},
        {"track": "inbound", "payload": "/w="},
        {"track": "inbound", "payload": "/w==/w=="},
        {"track": "inbound", "payload": "/w==\n"},
        {"track": "inbound", "payload": " /w=="},
        {"track": "inbound", "payload": "/w-_"},
        {"track": "inbound", "payload": "/wé="},
        {"track": "inbound", "payload": "===="},
    ],
)
def test_parse_message_bad_media_raises(media: Any) -> None:
    doc: dict[str, Any] = {"event": "media", "streamSid": SID}
    if media is not None:
        doc["media"] = media
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(wire(doc))
    assert info.value.close_code == 1003


# ---------------------------------------------------------------- dtmf


@pytest.mark.parametrize("digit", list("0123456789*#"))
def test_parse_message_dtmf_accepts_every_key(digit: str) -> None:
    raw = wire(
        {"event": "dtmf", "streamSid": SID, "dtmf": {"track": "inbound_track", "digit": digit}}
    )
    assert parse_message(raw) == CallerDtmf(digit)


@pytest.mark.parametrize(
    "doc",
    [
        {"event": "dtmf", "streamSid": SID},
        {"event": "dtmf", "dtmf": "1"},
        {"event": "dtmf", "dtmf": {"track": "inbound_track"}},
        {"event": "dtmf", "dtmf": {"digit": "A"}},
        {"event": "dtmf", "dtmf": {"digit": "12"}},
        {"event": "dtmf", "dtmf": {"digit": ""}},
        {"event": "dtmf", "dtmf": {"digit": 1}},
        {"event": "dtmf", "digit": "1"},
    ],
)
def test_parse_message_dtmf_with_bad_digit_raises(doc: dict[str, Any]) -> None:
    with pytest.raises(RemoteProtocolError):
        parse_message(wire(doc))


# ---------------------------------------------------------------- mark


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("1240:item_abc", PlaybackMarked("item_abc", 1240)),
        ("0:item_1", PlaybackMarked("item_1", 0)),
        ("20:item:with:colons", PlaybackMarked("item:with:colons", 20)),
        ("9999999999:i", PlaybackMarked("i", 9_999_999_999)),
    ],
)
def test_parse_message_mark_with_our_name_returns_heard_position(
    name: str, expected: PlaybackMarked
) -> None:
    raw = wire({"event": "mark", "sequenceNumber": "4", "streamSid": SID, "mark": {"name": name}})
    assert parse_message(raw) == expected


@pytest.mark.parametrize(
    "mark",
    [
        {"name": "m7"},
        {"name": ""},
        {"name": ":item_1"},
        {"name": "120:"},
        {"name": "-5:item_1"},
        {"name": "1.5:item_1"},
        {"name": "²:item_1"},
        {"name": "12345678901:item_1"},
        {"name": 120},
        {},
        "120:item_1",
        None,
    ],
)
def test_parse_message_mark_not_in_our_form_is_unknown(mark: Any) -> None:
    doc: dict[str, Any] = {"event": "mark", "streamSid": SID}
    if mark is not None:
        doc["mark"] = mark
    assert parse_message(wire(doc)) == UnknownCallerMessage("mark")


@pytest.mark.parametrize(("item", "ms"), [("item_abc", 0), ("item_abc", 1240), ("a:b", 7)])
def test_mark_name_round_trips_through_parse_mark_name(item: str, ms: int) -> None:
    name = mark_name(item, ms)
    assert name == f"{ms}:{item}"
    assert parse_mark_name(name) == (item, ms)


@pytest.mark.parametrize(("item", "ms"), [("", 10), ("item_1", -1)])
def test_mark_name_refuses_empty_item_or_negative_ms(item: str, ms: int) -> None:
    with pytest.raises(LocalProtocolError):
        mark_name(item, ms)


# ---------------------------------------------------------------- other events, bad JSON


@pytest.mark.parametrize(
    ("raw", "event"),
    [
        ('{"event":"something-new","x":1}', "something-new"),
        ('{"event":"clear","streamSid":"MZ1"}', "clear"),
        ('{"streamSid":"MZ1"}', "None"),
    ],
)
def test_parse_message_unknown_event_is_skipped_not_an_error(raw: str, event: str) -> None:
    assert parse_message(raw) == UnknownCallerMessage(event)


@pytest.mark.parametrize(
    "raw", ["not json", "", "{", '["media"]', '"connected"', "42", "null", "\x00"]
)
def test_parse_message_non_object_raises_remote_protocol_error(raw: str) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        parse_message(raw)
    assert info.value.close_code == 1003


@pytest.mark.parametrize(
    "raw", ["[" * 3000 + "]" * 3000, '{"event":"media","media":' * 40 + "{}" + "}" * 40]
)
def test_parse_message_deeply_nested_json_raises_remote_protocol_error(raw: str) -> None:
    """Deeper than 32 levels: refused before parsing (json.loads would recurse)."""
    with pytest.raises(RemoteProtocolError, match="nested deeper than 32 levels"):
        parse_message(raw)


def test_parse_message_unknown_event_name_is_cut_short() -> None:
    assert parse_message(json.dumps({"event": "y" * 10_000})) == UnknownCallerMessage("y" * 64)


# ---------------------------------------------------------------- commands


def test_commands_media_is_compact_json_with_stream_sid_and_base64_payload() -> None:
    cmd = TwilioCommands(SID).media(FRAME)
    assert " " not in cmd
    assert json.loads(cmd) == {
        "event": "media",
        "streamSid": SID,
        "media": {"payload": PAYLOAD},
    }


def test_commands_mark_is_json_with_our_mark_name() -> None:
    cmd = TwilioCommands(SID).mark("item_abc", 1240)
    assert cmd == '{"event":"mark","streamSid":"' + SID + '","mark":{"name":"1240:item_abc"}}'
    assert json.loads(cmd) == {
        "event": "mark",
        "streamSid": SID,
        "mark": {"name": "1240:item_abc"},
    }


def test_commands_clear_is_json_clear_with_stream_sid() -> None:
    cmd = TwilioCommands(SID).clear()
    assert cmd == '{"event":"clear","streamSid":"' + SID + '"}'
    assert json.loads(cmd) == {"event": "clear", "streamSid": SID}


def test_commands_keep_the_stream_sid() -> None:
    assert TwilioCommands(SID).stream_sid == SID


@pytest.mark.parametrize(
    "hostile_sid", ['MZ"},"event":"stop', "MZ\\", "MZ\n\x00", "MZ…名", "</script>"]
)
def test_commands_escape_a_hostile_stream_sid(hostile_sid: str) -> None:
    commands = TwilioCommands(hostile_sid)
    for cmd in (commands.media(b"\xff" * 160), commands.mark("item_1", 20), commands.clear()):
        doc = json.loads(cmd)
        assert doc["streamSid"] == hostile_sid
        assert doc["event"] in ("media", "mark", "clear")
    assert json.loads(commands.media(b"\x7f"))["media"] == {"payload": "fw=="}


def test_commands_mark_escapes_a_hostile_item_id() -> None:
    item = 'item"}\\'
    doc = json.loads(TwilioCommands(SID).mark(item, 5))
    assert doc["mark"] == {"name": f"5:{item}"}


def test_commands_media_refuses_empty_audio() -> None:
    with pytest.raises(LocalProtocolError):
        TwilioCommands(SID).media(b"")


@pytest.mark.parametrize("audio", [FRAME, b"\x00", bytes(400), bytes(range(256))])
def test_commands_media_round_trips_through_parse_message(audio: bytes) -> None:
    """Our outbound ``media`` (no track) parses back to the same bytes."""
    assert parse_message(TwilioCommands(SID).media(audio)) == audio


@pytest.mark.parametrize(("item", "ms"), [("item_1", 0), ("item_CAbc123", 86_400_000)])
def test_commands_mark_echoed_by_twilio_parses_back_to_heard_position(item: str, ms: int) -> None:
    """Twilio echoes our mark as-is; the parser reads it back as a PlaybackMarked."""
    sent = json.loads(TwilioCommands(SID).mark(item, ms))
    echoed = {"event": "mark", "sequenceNumber": "9", "streamSid": SID, "mark": sent["mark"]}
    assert parse_message(wire(echoed)) == PlaybackMarked(item, ms)


# ---------------------------------------------------------------- media fast path


def _twilio_media(
    payload: str, *, sid_first: bool = False, sep: str = ",", colon: str = ":"
) -> str:
    """A media message laid out the way Twilio sends it (or with streamSid first, as the
    fake caller does), built by hand so that the spacing is under the test's control."""
    media = (
        f'"media"{colon}{{"track"{colon}"inbound"{sep}"chunk"{colon}"2"{sep}'
        f'"timestamp"{colon}"5"{sep}"payload"{colon}"{payload}"}}'
    )
    sid = f'"streamSid"{colon}"{SID}"'
    body = f"{sid}{sep}{media}" if sid_first else f"{media}{sep}{sid}"
    return f'{{"event"{colon}"media"{sep}"sequenceNumber"{colon}"3"{sep}{body}}}'


FAST_SHAPES = [
    _twilio_media(PAYLOAD),
    _twilio_media(PAYLOAD, sid_first=True),
    _twilio_media(PAYLOAD, sep=", ", colon=": "),  # json.dumps's default separators
    _twilio_media(PAYLOAD, sid_first=True, sep=", ", colon=": "),
]


@pytest.mark.parametrize("raw", FAST_SHAPES)
def test_parse_message_media_in_twilio_shape_skips_json_loads(
    raw: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_json(*args: object) -> None:
        raise AssertionError("json parsed")

    monkeypatch.setattr("vonage_bridge.twilio.wire.loads_object", no_json)
    assert parse_message(raw) == FRAME


def _full_parse(raw: str) -> object:
    """What the json.loads path makes of ``raw``: JSON allows leading whitespace, the fast
    path's match does not, so a leading space forces the full parse."""
    try:
        return parse_message(" " + raw)
    except RemoteProtocolError as exc:
        return ("error", exc.message)


def _parsed(raw: str) -> object:
    try:
        return parse_message(raw)
    except RemoteProtocolError as exc:
        return ("error", exc.message)


@pytest.mark.parametrize(
    "raw",
    [
        *FAST_SHAPES,
        # payloads the fast path matches but that are not (all) valid base64
        _twilio_media(""),
        _twilio_media("/w="),
        _twilio_media("===="),
        _twilio_media("/w==/w=="),
        _twilio_media("A"),
        _twilio_media("/w=="),
        # near misses that must take the full parse and agree with it
        _twilio_media(PAYLOAD).replace('"inbound"', '"outbound"'),
        _twilio_media(PAYLOAD).replace('"chunk":"2"', '"chunk":2'),
        _twilio_media(PAYLOAD).replace('"5"', '"\\u0035"'),
        _twilio_media(PAYLOAD).replace("/", "\\/"),
        _twilio_media(PAYLOAD).replace('"media"', '"event":"stop","media"', 1),
        _twilio_media(PAYLOAD)[:-1] + ',"event":"stop"}',
        _twilio_media(PAYLOAD)[:-1] + ',"extra":{}}',
        _twilio_media(PAYLOAD)[:-1],
        _twilio_media(PAYLOAD) + "x",
        _twilio_media(PAYLOAD).replace(":", ":  "),
        _twilio_media(PAYLOAD).replace(f'"{SID}"', '"MZ\x01"'),
        _twilio_media(PAYLOAD).replace('"payload":', '"payload":"x","payload":', 1),
    ],
)
def test_parse_message_media_fast_path_agrees_with_the_full_parse(raw: str) -> None:
    assert _parsed(raw) == _full_parse(raw)

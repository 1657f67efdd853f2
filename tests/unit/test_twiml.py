"""TwiML for the Twilio front door: greeting, stream, transfer, hang-up.

Source: https://www.twilio.com/docs/voice/twiml/stream."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from vonage_bridge.errors import LocalProtocolError
from vonage_bridge.phone import MAX_HEADER_VALUE_CHARS
from vonage_bridge.twilio.twiml import (
    answer_twiml,
    bounded_parameters,
    dial_twiml,
    hangup_twiml,
    say_language,
)

URL = "wss://abc.ngrok.app/twilio/media-stream?call_sid=CA1&exp=1750000300&token=AbC-_d%3D"
PARAMS = {"call_sid": "CA1", "from": "+14155550100", "to": "+14155550199", "direction": "inbound"}
# A Voice webhook form (the fields Twilio documents for an incoming call, abridged).
FORM = {
    "AccountSid": "AC0123456789abcdef0123456789abcdef",
    "ApiVersion": "2010-04-01",
    "CallSid": "CA0123456789abcdef0123456789abcdef",
    "CallStatus": "ringing",
    "Called": "+14155550199",
    "Caller": "+14155550100",
    "Direction": "inbound",
    "From": "+14155550100",
    "FromCity": "SAN FRANCISCO",
    "To": "+14155550199",
}


def build(**overrides: Any) -> ET.Element:
    kwargs: dict[str, Any] = {
        "stream_url": URL,
        "parameters": PARAMS,
        "greeting_text": "Hello! Please go ahead.",
        "greeting_language": "en-US",
    }
    kwargs.update(overrides)
    twiml = answer_twiml(**kwargs)
    assert twiml.startswith('<?xml version="1.0" encoding="UTF-8"?><Response>')
    return ET.fromstring(twiml)


def parameters_of(root: ET.Element) -> list[tuple[str | None, str | None]]:
    stream = root.find("./Connect/Stream")
    assert stream is not None
    return [(p.get("name"), p.get("value")) for p in stream.findall("Parameter")]


# ---------------------------------------------------------------- answer


def test_answer_twiml_says_greeting_then_connects_stream_with_parameters() -> None:
    root = build()
    assert root.tag == "Response"
    assert [child.tag for child in root] == ["Say", "Connect"]
    say, connect = root
    assert say.text == "Hello! Please go ahead."
    assert say.attrib == {"language": "en-US"}
    assert [child.tag for child in connect] == ["Stream"]
    stream = connect[0]
    assert stream.attrib == {"url": URL}  # & escaped on the wire, intact once parsed
    assert parameters_of(root) == list(PARAMS.items())
    assert all(list(p) == [] for p in stream)


def test_answer_twiml_escapes_ampersands_of_the_stream_url() -> None:
    twiml = answer_twiml(stream_url=URL, parameters={}, greeting_text=None)
    assert "&amp;exp=1750000300&amp;token=" in twiml
    assert "&exp=" not in twiml


def test_answer_twiml_has_nothing_after_connect() -> None:
    root = build()
    assert root[-1].tag == "Connect"
    assert len(root.findall("Connect")) == 1


@pytest.mark.parametrize("greeting", [None, "", "   ", "\x07"])
def test_answer_twiml_without_greeting_has_no_say(greeting: str | None) -> None:
    root = build(greeting_text=greeting)
    assert [child.tag for child in root] == ["Connect"]


@pytest.mark.parametrize("language", [None, "", "english", "en-USA", "e", "en US", "<en>"])
def test_answer_twiml_leaves_out_language_twilio_would_not_accept(language: str | None) -> None:
    say = build(greeting_language=language).find("Say")
    assert say is not None
    assert "language" not in say.attrib
    assert say.text == "Hello! Please go ahead."


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en-US", "en-US"),
        ("en-gb", "en-GB"),
        ("EN_au", "en-AU"),
        ("cmn-CN", "cmn-CN"),
        ("en-GB-WLS", "en-GB-WLS"),
        ("ja", "ja"),
        (" fr-FR ", "fr-FR"),
        ("english", None),
        ("en-US-x", None),
        ("1a-US", None),
        (None, None),
        ("", None),
    ],
)
def test_say_language_normalises_tags_twilio_accepts(
    language: str | None, expected: str | None
) -> None:
    assert say_language(language) == expected


def test_answer_twiml_escapes_hostile_parameter_values_and_greeting() -> None:
    """Even unbounded values cannot break out of their attribute or element."""
    hostile = '"/><Hangup/><Parameter name="x" value="&amp;<>'
    twiml = answer_twiml(
        stream_url=URL,
        parameters={"from": hostile, 'n"<>&': "v"},
        greeting_text="Tom & Jerry <Hangup/>",
    )
    assert "<Hangup" not in twiml
    root = ET.fromstring(twiml)
    assert [child.tag for child in root] == ["Say", "Connect"]
    assert root.find("Say") is not None and root.findtext("Say") == "Tom & Jerry <Hangup/>"
    assert parameters_of(root) == [("from", hostile), ('n"<>&', "v")]
    assert root.find(".//Hangup") is None


def test_answer_twiml_drops_characters_xml_cannot_hold() -> None:
    twiml = answer_twiml(
        stream_url=URL,
        parameters={"from": "+1415\x00555\x1b0100"},
        greeting_text="Hi\x0c there",
    )
    root = ET.fromstring(twiml)  # would raise on a raw control character
    assert root.findtext("Say") == "Hi there"
    assert parameters_of(root) == [("from", "+14155550100")]


def test_answer_twiml_with_hostile_caller_number_from_the_webhook_is_bounded() -> None:
    form = dict(FORM, From='+1 "415" <555>&0100', To="+14155550199\r\nX: y")
    root = build(parameters=bounded_parameters(form))
    assert dict(parameters_of(root)) == {
        "call_sid": "CA0123456789abcdef0123456789abcdef",
        "from": "+1 415 5550100",
        "to": "+14155550199X: y",
        "direction": "inbound",
    }


@pytest.mark.parametrize("url", ["https://abc.ngrok.app/media", "abc.ngrok.app/ws", "", "wss:/x"])
def test_answer_twiml_refuses_a_non_websocket_stream_url(url: str) -> None:
    with pytest.raises(LocalProtocolError):
        answer_twiml(stream_url=url, parameters={}, greeting_text="Hi")


def test_answer_twiml_accepts_plain_ws_for_local_fakes() -> None:
    root = build(stream_url="ws://127.0.0.1:8080/twilio/media-stream?token=x")
    stream = root.find("./Connect/Stream")
    assert stream is not None
    assert stream.get("url") == "ws://127.0.0.1:8080/twilio/media-stream?token=x"


def test_answer_twiml_without_parameters_has_bare_stream() -> None:
    root = build(parameters={})
    assert parameters_of(root) == []


# ---------------------------------------------------------------- bounded_parameters


def test_bounded_parameters_picks_and_renames_call_fields() -> None:
    assert bounded_parameters(FORM) == {
        "call_sid": "CA0123456789abcdef0123456789abcdef",
        "from": "+14155550100",
        "to": "+14155550199",
        "direction": "inbound",
    }


def test_bounded_parameters_keeps_only_string_values() -> None:
    fields: dict[str, object] = {
        "CallSid": "CA1",
        "From": 14155550100,
        "To": None,
        "Direction": ["x"],
    }
    assert bounded_parameters(fields) == {"call_sid": "CA1"}


def test_bounded_parameters_drops_values_with_nothing_safe_left() -> None:
    assert bounded_parameters({"CallSid": "CA1", "From": "", "To": '"<>&'}) == {"call_sid": "CA1"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+14155550100", "+14155550100"),
        ("client:alice", "client:alice"),
        ("sip:alice@example.com", "sip:alice@example.com"),
        ("anonymous", "anonymous"),
        ('+1 "415"<555>&0100', "+1 4155550100"),
        ("<script>alert(1)</script>", "scriptalert1script"),
        ("line1\nline2\r\n", "line1line2"),
    ],
)
def test_bounded_parameters_strips_unsafe_characters(value: str, expected: str) -> None:
    assert bounded_parameters({"From": value}) == {"from": expected}


def test_bounded_parameters_caps_each_value_at_64_characters() -> None:
    out = bounded_parameters({"From": "1" * 500, "To": "+14155550199"})
    assert out["from"] == "1" * MAX_HEADER_VALUE_CHARS
    assert len(out["from"]) == 64
    assert out["to"] == "+14155550199"


def test_bounded_parameters_of_empty_form_is_empty() -> None:
    assert bounded_parameters({}) == {}


# ---------------------------------------------------------------- dial / hangup


@pytest.mark.parametrize("number", ["14155550123", "+14155550123"])
def test_dial_twiml_dials_the_number_in_e164(number: str) -> None:
    twiml = dial_twiml(number)
    root = ET.fromstring(twiml)
    assert root.tag == "Response"
    assert [child.tag for child in root] == ["Dial"]
    assert root.findtext("Dial") == "+14155550123"


@pytest.mark.parametrize(
    "number", ["", "123", "+0447700900001", "1415555012345678", "+1 415 555 0123", "<Hangup/>"]
)
def test_dial_twiml_refuses_a_non_e164_number(number: str) -> None:
    with pytest.raises(LocalProtocolError):
        dial_twiml(number)


def test_hangup_twiml_is_a_lone_hangup() -> None:
    root = ET.fromstring(hangup_twiml())
    assert root.tag == "Response"
    assert [child.tag for child in root] == ["Hangup"]
    assert root[0].attrib == {}
    assert list(root[0]) == []

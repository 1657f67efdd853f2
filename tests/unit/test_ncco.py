"""The NCCOs: the answer (greeting, then connect to our media WebSocket) and the transfer
(connect to a phone), built with and checked against the Vonage SDK's models."""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest
from vonage_voice import Connect, PhoneEndpoint, WebsocketEndpoint
from vonage_voice.errors import NccoActionError

from vonage_bridge.phone import MAX_HEADER_VALUE_CHARS, MAX_HEADERS_BYTES, bounded_headers
from vonage_bridge.vonage.ncco import answer_ncco, connect_from_number, transfer_ncco

URI = "wss://abc.ngrok.app/media?call_uuid=abc-123&exp=1750000300&token=AbC-_d%3D"
HEADERS = {"call_uuid": "abc-123", "caller": "447700900000"}


def build(**overrides: Any) -> list[dict[str, Any]]:
    kwargs: dict[str, Any] = {
        "websocket_uri": URI,
        "headers": HEADERS,
        "greeting_text": "Hello! Please go ahead.",
        "greeting_language": "en-GB",
        "from_number": "447700900001",
    }
    kwargs.update(overrides)
    return answer_ncco(**kwargs)


def test_ncco_greets_then_connects_to_websocket() -> None:
    ncco = build()
    assert [a["action"] for a in ncco] == ["talk", "connect"]
    talk, connect = ncco
    assert talk["text"] == "Hello! Please go ahead."
    assert talk["language"] == "en-GB"
    assert connect["from"] == "447700900001"
    assert "randomFromNumber" not in connect
    assert connect["endpoint"] == [
        {
            "type": "websocket",
            "uri": URI,
            "content-type": "audio/l16;rate=16000",
            "headers": HEADERS,
        }
    ]


def test_ncco_uses_vonage_wire_names_as_plain_strings() -> None:
    ncco = build()
    # Survives a JSON round trip unchanged: only plain JSON types, wire names as keys.
    assert json.loads(json.dumps(ncco)) == ncco
    connect = ncco[-1]
    endpoint = connect["endpoint"][0]
    assert type(connect["action"]) is str
    assert type(endpoint["content-type"]) is str
    assert type(connect["from"]) is str
    for forbidden in ("contentType", "from_", "content_type"):
        assert forbidden not in endpoint
        assert forbidden not in connect


def test_ncco_has_no_action_after_connect() -> None:
    ncco = build()
    assert ncco[-1]["action"] == "connect"
    assert sum(a["action"] == "connect" for a in ncco) == 1


def test_ncco_empty_greeting_gives_only_connect() -> None:
    ncco = build(greeting_text="")
    assert [a["action"] for a in ncco] == ["connect"]


def test_ncco_without_from_number_asks_for_random_from_number() -> None:
    connect = build(from_number=None)[-1]
    assert connect["randomFromNumber"] is True
    assert "from" not in connect


def test_ncco_8khz_asks_for_l16_at_8000() -> None:
    endpoint = build(sample_rate_hz=8000)[-1]["endpoint"][0]
    assert endpoint["content-type"] == "audio/l16;rate=8000"


@pytest.mark.parametrize(
    ("called", "expected"),
    [
        ("+447700900001", "447700900001"),
        ("447700900001", "447700900001"),
        ("14155550123", "14155550123"),
        ("Vonage", None),
        (None, None),
        ("", None),
        ("123", None),
        ("+0447700900001", None),
        ("4477009000011234567", None),
        ("sip:alice@example.com", None),
    ],
)
def test_connect_from_number_keeps_only_e164_digits(
    called: str | None, expected: str | None
) -> None:
    assert connect_from_number(called) == expected


@pytest.mark.parametrize("called", ["Vonage", None, "123"])
def test_ncco_for_non_e164_called_number_uses_random_from_number(called: str | None) -> None:
    connect = build(from_number=connect_from_number(called))[-1]
    assert connect["randomFromNumber"] is True
    assert "from" not in connect


def test_bounded_headers_drops_none_and_empty_values() -> None:
    out = bounded_headers({"a": None, "b": "", "c": '""<>', "d": "ok", "e": 0})
    assert out == {"d": "ok", "e": "0"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('+44 "7700" 900000', "+44 7700 900000"),
        ("<script>alert(1)</script>", "scriptalert1script"),
        ("line1\nline2\r\n", "line1line2"),
        ("it's a \\test/", "its a test"),
        ("sip:alice@example.com", "sip:alice@example.com"),
        ("abc-123_x.y", "abc-123_x.y"),
    ],
)
def test_bounded_headers_strips_unsafe_characters(value: str, expected: str) -> None:
    assert bounded_headers({"k": value}) == {"k": expected}


def test_bounded_headers_caps_each_value_at_64_characters() -> None:
    out = bounded_headers({"k": "x" * 200, "short": "y" * 10})
    assert out["k"] == "x" * MAX_HEADER_VALUE_CHARS
    assert len(out["k"]) == 64
    assert out["short"] == "y" * 10


def test_bounded_headers_json_of_many_long_fields_fits_512_bytes() -> None:
    fields = {f"field_{i:02d}": str(i) * 100 for i in range(20)}
    out = bounded_headers(fields)
    assert len(json.dumps(out, separators=(",", ":")).encode()) <= MAX_HEADERS_BYTES == 512
    assert out
    # Fields are dropped from the end: what is kept is a prefix of the input, in order.
    assert list(out) == list(fields)[: len(out)]


def test_bounded_headers_json_of_non_ascii_fields_fits_512_bytes() -> None:
    fields = {f"f{i}": "名" * 100 for i in range(20)}
    out = bounded_headers(fields)
    assert out
    assert len(json.dumps(out, separators=(",", ":")).encode()) <= 512
    assert len(json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode()) <= 512


def sdk_connect(action: dict[str, Any]) -> Connect:
    """Read a dumped ``connect`` back through the SDK's models (they validate on the way)."""
    endpoints = [
        PhoneEndpoint(**e) if e["type"] == "phone" else WebsocketEndpoint(**e)
        for e in action["endpoint"]
    ]
    return Connect(
        endpoint=endpoints,
        from_=action.get("from"),
        randomFromNumber=action.get("randomFromNumber"),
    )


def test_ncco_signed_handshake_asks_vonage_to_sign_the_socket() -> None:
    endpoint = build(signed_handshake=True)[-1]["endpoint"][0]
    assert endpoint["authorization"] == {"type": "vonage"}
    assert "authorization" not in build()[-1]["endpoint"][0]


def test_ncco_signed_handshake_survives_the_sdk_model() -> None:
    connect = sdk_connect(build(signed_handshake=True)[-1])
    (endpoint,) = connect.endpoint
    assert isinstance(endpoint, WebsocketEndpoint)
    assert endpoint.authorization is not None and endpoint.authorization.type == "vonage"


def test_transfer_ncco_connects_to_the_phone_from_the_called_number() -> None:
    (connect,) = transfer_ncco("447700900002", "447700900001")
    assert connect == {
        "action": "connect",
        "from": "447700900001",
        "endpoint": [{"type": "phone", "number": "447700900002"}],
    }
    assert json.loads(json.dumps(connect)) == connect


@pytest.mark.parametrize(
    ("caller_id", "expected"),
    [
        ("+447700900001", {"from": "447700900001"}),
        ("14155550100", {"from": "14155550100"}),
        (None, {"randomFromNumber": True}),
        ("", {"randomFromNumber": True}),
        ("Vonage", {"randomFromNumber": True}),  # a name is not a caller id the SDK accepts
        ("sip-user", {"randomFromNumber": True}),
    ],
)
def test_transfer_ncco_caller_id_or_random_from_number(
    caller_id: str | None, expected: dict[str, Any]
) -> None:
    (connect,) = transfer_ncco("447700900002", caller_id)
    assert {k: connect[k] for k in ("from", "randomFromNumber") if k in connect} == expected


@pytest.mark.parametrize("caller_id", ["447700900001", None])
def test_transfer_ncco_is_accepted_by_the_sdk_model(caller_id: str | None) -> None:
    connect = sdk_connect(transfer_ncco("447700900002", caller_id)[0])
    (endpoint,) = connect.endpoint
    assert isinstance(endpoint, PhoneEndpoint) and endpoint.number == "447700900002"
    assert connect.from_ == caller_id


def test_the_old_hand_written_transfer_ncco_is_rejected_by_the_sdk() -> None:
    """Why ``transfer_ncco`` exists: ``connect`` without ``from`` breaks the SDK's model."""
    old = {"action": "connect", "endpoint": [{"type": "phone", "number": "447700900002"}]}
    with pytest.raises(NccoActionError):
        sdk_connect(old)


@pytest.mark.parametrize("number", ["+447700900002", "0447700900002", "12345", "agent"])
def test_transfer_ncco_refuses_a_number_that_is_not_e164_digits(number: str) -> None:
    with pytest.raises(pydantic.ValidationError):
        transfer_ncco(number, "447700900001")

"""``core.jsonbody``: JSON from untrusted senders with its nesting bounded, never recursing
into a hostile document."""

from __future__ import annotations

import json

import pytest

from vonage_bridge.core.jsonbody import (
    MAX_DEPTH,
    JsonTooDeep,
    loads_bounded,
    loads_object,
    nesting_depth,
)
from vonage_bridge.errors import InvalidRequest, RemoteProtocolError, WebhookRejected


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("3", 0),
        ('"[[[["', 0),
        ("[]", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('["]", "[", "\\"[", "\\\\", [[]]]', 3),  # brackets in strings, escaped quotes
        ("[[1], [2], [[3]]]", 3),
        ('"never closed [[[[', 0),  # the decoder reads the rest as the string too
    ],
)
def test_nesting_depth_counts_brackets_outside_strings(text: str, depth: int) -> None:
    assert nesting_depth(text) == depth


def test_loads_bounded_parses_what_json_loads_parses() -> None:
    doc = {"event": "media", "media": {"payload": "AAEC", "track": "inbound"}, "n": [1, 2.5]}
    text = json.dumps(doc)
    assert loads_bounded(text) == doc
    assert loads_bounded(text.encode()) == doc
    assert loads_bounded(text.encode("utf-16")) == doc  # encoding detected, as json.loads does
    assert loads_bounded(b"\xef\xbb\xbf[1]") == [1]  # a UTF-8 BOM is allowed in bytes


def test_loads_bounded_allows_exactly_max_depth() -> None:
    at_limit = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert nesting_depth(at_limit) == MAX_DEPTH
    loads_bounded(at_limit)
    with pytest.raises(JsonTooDeep, match="deeper than 32 levels"):
        loads_bounded("[" + at_limit + "]")
    with pytest.raises(JsonTooDeep, match="deeper than 3 levels"):
        loads_bounded('{"a": {"b": {"c": {}}}}', max_depth=3)


@pytest.mark.parametrize("raw", ["[" * 3000 + "]" * 3000, '{"a":' * 3000, b"[" * 100_000])
def test_loads_bounded_refuses_deep_documents_without_recursing(raw: str | bytes) -> None:
    with pytest.raises(JsonTooDeep) as info:
        loads_bounded(raw)
    # a ValueError (wire modules map it like any bad JSON) and a 400 if it reaches the web
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, InvalidRequest) and info.value.http_status == 400
    assert info.value.code == "json_too_deep"


def test_many_brackets_inside_strings_are_not_depth() -> None:
    text = json.dumps({"text": "[" * 5000})
    assert loads_bounded(text) == {"text": "[" * 5000}


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"a": "\xff"}', '"' + '\\"' * 20_000, "1" * 5000],
    ids=["syntax", "not-utf8", "unterminated-escapes", "huge-int"],
)
def test_loads_bounded_raises_value_error_on_other_bad_input(raw: str | bytes) -> None:
    with pytest.raises(ValueError) as info:
        loads_bounded(raw)
    assert not isinstance(info.value, JsonTooDeep)


def test_loads_object_returns_the_object() -> None:
    assert loads_object('{"event": "media"}', RemoteProtocolError) == {"event": "media"}
    assert loads_object(b'{"type": "x"}', WebhookRejected, "body") == {"type": "x"}


@pytest.mark.parametrize(
    ("raw", "max_depth", "reason"),
    [
        ("{not json", MAX_DEPTH, "server event is not JSON"),
        (b"\xff", MAX_DEPTH, "server event is not JSON"),
        ("[1, 2]", MAX_DEPTH, "server event is not a JSON object"),
        ('"text"', None, "server event is not a JSON object"),
        ("{not json", None, "server event is not JSON"),
        ('{"a":' * 40 + "1" + "}" * 40, MAX_DEPTH, "JSON nested deeper than 32 levels"),
    ],
)
def test_loads_object_raises_the_readers_error_with_the_reason(
    raw: str | bytes, max_depth: int | None, reason: str
) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        loads_object(raw, RemoteProtocolError, "server event", max_depth)
    assert info.value.message == reason
    assert info.value.__cause__ is None  # the decoder's error is not chained


def test_loads_object_without_a_bound_parses_deeper_than_max_depth() -> None:
    deep = '{"a":' * 40 + "1" + "}" * 40
    assert loads_object(deep, RemoteProtocolError, max_depth=None) == json.loads(deep)

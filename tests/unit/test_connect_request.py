"""The ``POST /connect`` body (``core.connect_request``) and the per-call context
(``core.call_context``): every field, every refusal."""

from __future__ import annotations

from typing import Any

import pytest

from vonage_bridge.core.assistant import Assistant, CallContext, call_instructions_for
from vonage_bridge.core.call_context import ConnectContext, MachineDetection
from vonage_bridge.core.connect_request import (
    MAX_METADATA_BYTES,
    MAX_VARIABLES,
    InvalidField,
    parse_connect,
    parse_number,
)

TO = "+818012345678"


# --- numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "region", "e164"),
    [
        ("+81 80-1234-5678", None, "+818012345678"),
        ("+818012345678", None, "+818012345678"),
        ("818012345678", None, "+818012345678"),  # Vonage's digits, as before
        ("080-1234-5678", "JP", "+818012345678"),
        ("(415) 555-0100", "US", "+14155550100"),
        ("07700 900123", "GB", "+447700900123"),
        ("+44 7700 900123", "JP", "+447700900123"),  # + wins over the region
    ],
)
def test_numbers_are_normalised_to_e164(text: str, region: str | None, e164: str) -> None:
    assert parse_number(text, region) == e164


@pytest.mark.parametrize(
    ("value", "region"),
    [
        ("08012345678", None),  # national without region
        ("+81 80", None),
        ("+0123", None),
        ("Vonage", None),
        (818012345678, None),
        ("", None),
        ("+" + "1" * 40, None),
        ("12", "JP"),
    ],
)
def test_bad_numbers_are_refused(value: object, region: str | None) -> None:
    with pytest.raises(ValueError):
        parse_number(value, region)


def test_national_number_with_region_through_the_body() -> None:
    req = parse_connect({"to": "080-1234-5678", "from": "050-3102-3332", "region": "jp"})
    assert (req.to, req.from_) == ("+818012345678", "+815031023332")


# --- the whole body -----------------------------------------------------------------------------


def test_minimal_body_has_defaults() -> None:
    req = parse_connect({"to": TO})
    assert req.to == TO and req.from_ is None and req.via == "vonage"
    assert req.context == ConnectContext()
    assert req.status_url is None and req.machine_detection is None


def test_every_field_is_read() -> None:
    req = parse_connect(
        {
            "to": TO,
            "from": "+815031023332",
            "via": "twilio",
            "assistant": "sales",
            "instructions": "Remind {name}.",
            "variables": {"name": "Ann", "date_1": "Monday"},
            "metadata": {"crm": {"id": 42}, "tags": ["a"]},
            "status_url": "https://hooks.example/outcomes?x=1",
            "machine_detection": {"on_machine": "leave_message", "message": "Call us back."},
        }
    )
    assert req.via == "twilio"
    assert req.context == ConnectContext(
        assistant="sales",
        instructions="Remind {name}.",
        variables={"name": "Ann", "date_1": "Monday"},
        metadata={"crm": {"id": 42}, "tags": ["a"]},
    )
    assert req.status_url == "https://hooks.example/outcomes?x=1"
    assert req.machine_detection == MachineDetection("leave_message", "Call us back.")


def test_unknown_fields_are_named() -> None:
    with pytest.raises(InvalidField) as info:
        parse_connect({"to": TO, "instruction": "x", "colour": 1})
    assert info.value.code == "unknown_field" and info.value.field == "body"
    assert "'colour'" in info.value.message and "'instruction'" in info.value.message


def _refused(body: dict[str, Any], **kwargs: Any) -> InvalidField:
    with pytest.raises(InvalidField) as info:
        parse_connect({"to": TO, **body}, **kwargs)
    return info.value


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"via": "plivo"}, "via"),
        ({"region": "Japan"}, "region"),
        ({"region": "ZZ"}, "region"),
        ({"assistant": ""}, "assistant"),
        ({"assistant": "a b"}, "assistant"),
        ({"assistant": 3}, "assistant"),
        ({"instructions": 3}, "instructions"),
        ({"instructions": "x" * 8001}, "instructions"),
        ({"variables": ["a"]}, "variables"),
        ({"variables": {"1a": "x"}}, "variables"),
        ({"variables": {"a-b": "x"}}, "variables"),
        ({"variables": {"a" * 65: "x"}}, "variables"),
        ({"variables": {"name": 3}}, "variables"),
        ({"variables": {"name": "x" * 1001}}, "variables"),
        ({"variables": {"caller": "x"}}, "variables"),
        ({"variables": {f"v{i}": "x" for i in range(MAX_VARIABLES + 1)}}, "variables"),
        ({"metadata": [1]}, "metadata"),
        ({"metadata": "x"}, "metadata"),
        ({"metadata": {"k": "x" * MAX_METADATA_BYTES}}, "metadata"),
        ({"status_url": "http://hooks.example/x"}, "status_url"),
        ({"status_url": "ftp://hooks.example/x"}, "status_url"),
        ({"status_url": "https://user:pw@hooks.example/x"}, "status_url"),
        ({"status_url": "https:///nohost"}, "status_url"),
        ({"status_url": "https://hooks.example:99999/x"}, "status_url"),
        ({"status_url": 5}, "status_url"),
        ({"status_url": "https://h.example/" + "x" * 2048}, "status_url"),
        ({"machine_detection": "hangup"}, "machine_detection"),
        ({"machine_detection": {"on_machine": "sing"}}, "machine_detection"),
        ({"machine_detection": {"on_machine": "leave_message"}}, "machine_detection"),
        ({"machine_detection": {"on_machine": "hangup", "beep": 1}}, "machine_detection"),
    ],
)
def test_bad_fields_are_400_naming_the_field(body: dict[str, Any], field: str) -> None:
    problem = _refused(body)
    assert problem.field == field
    assert problem.code == "invalid_field"
    assert problem.message.startswith(f"{field}:")
    assert problem.http_status == 400


def test_http_status_url_only_to_loopback_with_the_insecure_opt_out() -> None:
    for url in ("http://127.0.0.1:8080/cb", "http://localhost/cb", "http://[::1]:9/cb"):
        assert parse_connect({"to": TO, "status_url": url}, allow_insecure_urls=True).status_url
        assert _refused({"status_url": url}).field == "status_url"
    assert _refused({"status_url": "http://10.0.0.1/cb"}, allow_insecure_urls=True)


def test_missing_and_bad_numbers_keep_their_codes() -> None:
    assert _refused({"to": None}).code == "missing_field"
    problem = _refused({"from": "+0123"})
    assert (problem.code, problem.field) == ("invalid_number", "from")


# --- the per-call instructions ------------------------------------------------------------------


def _assistant(instructions: str) -> Assistant:
    return Assistant.model_validate({"name": "t", "instructions": instructions})


def test_instructions_are_appended_and_variables_filled() -> None:
    ctx = CallContext(
        _assistant("You are {company}'s assistant."),
        instructions="Remind {name} of {date}. Say {unknown}.",
        variables={"name": "Ann", "date": "Monday"},
    )
    text = call_instructions_for(ctx, caller=None, called=None)
    assert text == "You are {company}'s assistant.\n\nRemind Ann of Monday. Say {unknown}."


def test_variables_fill_the_instructions_too_and_values_are_not_expanded_again() -> None:
    ctx = CallContext(
        _assistant("{company} and {name}"), variables={"company": "{name}", "name": "Ann"}
    )
    assert call_instructions_for(ctx, caller=None, called=None) == "{name} and Ann"


def test_a_context_without_fields_leaves_the_instructions_alone() -> None:
    asked = parse_connect(
        {"to": "+447700900123", "metadata": {"a": 1}, "assistant": "sales"}
    ).context
    ctx = CallContext(
        _assistant("Hello {x}"), instructions=asked.instructions, variables=asked.variables
    )
    assert call_instructions_for(ctx, caller=None, called=None) == "Hello {x}"

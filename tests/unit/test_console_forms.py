"""The console's forms as the JSON API's bodies: Dial (``pages.dial_body``, then
``POST /connect``'s own check) and Assistants (``assistants.form_body``, then the API's
``validate``)."""

from __future__ import annotations

import pytest
from multidict import MultiDict

from vonage_bridge.assistants.routes import validate
from vonage_bridge.console.assistants import form_body
from vonage_bridge.console.pages import dial_body
from vonage_bridge.core.assistant import Assistant
from vonage_bridge.core.connect_request import FIELDS, parse_connect
from vonage_bridge.errors import InvalidField


def test_every_dial_field_becomes_the_connect_body() -> None:
    form = MultiDict(
        {
            "csrf": "t",
            "to": " +81 80-1234-5678 ",
            "from": "",
            "region": "JP",
            "via": "vonage",
            "assistant": "sales",
            "instructions": "Mention {topic}.",
            "variables": "topic=boats\n\n  date = Monday, 10=30  \n",
            "metadata": '{"crm_id": 42}',
            "status_url": "https://example.com/status",
            "on_machine": "leave_message",
            "machine_message": "Call us back.",
        }
    )
    body = dial_body(form)
    assert body == {
        "to": "+81 80-1234-5678",
        "region": "JP",
        "via": "vonage",
        "assistant": "sales",
        "instructions": "Mention {topic}.",
        "variables": {"topic": "boats", "date": "Monday, 10=30"},
        "metadata": {"crm_id": 42},
        "status_url": "https://example.com/status",
        "machine_detection": {"on_machine": "leave_message", "message": "Call us back."},
    }
    assert set(body) <= set(FIELDS)
    req = parse_connect(body, allow_insecure_urls=False)  # /connect takes it as it is
    assert req.to == "+818012345678" and dict(req.context.variables)["topic"] == "boats"


def test_an_empty_dial_form_is_just_to() -> None:
    assert dial_body(MultiDict({"to": "+447700900001", "on_machine": ""})) == {
        "to": "+447700900001"
    }


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"variables": "oops"}, "variables", "variables: line 1: write name=value"),
        ({"variables": "a=1\n=2"}, "variables", "variables: line 2: write name=value"),
        ({"variables": "a=1\na=2"}, "variables", "variables: line 2: 'a' is given twice"),
        ({"metadata": "{nope"}, "metadata", "metadata: must be a JSON object"),
    ],
)
def test_dial_form_errors_name_the_field(fields: dict[str, str], field: str, message: str) -> None:
    with pytest.raises(InvalidField) as info:
        dial_body(MultiDict({"to": "+447700900001", **fields}))
    assert info.value.field == field and info.value.message.startswith(message)


def test_assistant_form_is_the_api_body_with_its_name_and_numbers() -> None:
    body = form_body("sales", "+44 7700 900001\n\n+447700900002\n", '{"voice": "cedar"}')
    assert body == {
        "voice": "cedar",
        "name": "sales",
        "numbers": ["+44 7700 900001", "+447700900002"],
    }
    checked = validate(body, "sales", set())  # type: ignore[arg-type]
    assert isinstance(checked, Assistant)
    assert checked.numbers == ("+447700900001", "+447700900002")
    assert form_body("sales", "", "") == {"name": "sales", "numbers": []}
    assert form_body("sales", "", '{"version": 7}') == {"name": "sales", "numbers": []}


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        ("[1]", [("(body)", "body must be a JSON object (an assistant)")]),
        (
            '{"name": "x", "numbers": []}',
            [
                ("name", "set in the Name field, not in the JSON"),
                ("numbers", "set in the Numbers field, not in the JSON"),
            ],
        ),
    ],
)
def test_assistant_form_problems(text: str, problems: list[tuple[str, str]]) -> None:
    assert form_body("sales", "", text) == problems


def test_assistant_form_that_is_not_json_says_so() -> None:
    got = form_body("sales", "", "{oops")
    assert isinstance(got, list) and got[0][0] == "(body)" and "not JSON" in got[0][1]

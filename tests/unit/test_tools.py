"""Function calling: the registry, the session's dispatch of completed calls, results back."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vonage_bridge.core.events import FunctionCallDone, ResponseCreated, ResponseDone, RunTool
from vonage_bridge.core.session import CallSession
from vonage_bridge.errors import ConfigError
from vonage_bridge.realtime.protocol import parse_server_event
from vonage_bridge.tools import (
    END_CALL,
    Tool,
    ToolContext,
    ToolRegistry,
    build_registry,
    load_tools_module,
)
from vonage_bridge.vonage.voice_api import CallHangUp

NewSession = Callable[..., CallSession]  # the ``new_session`` fixture (conftest.py)
Sent = Callable[[CallSession], list[dict[str, Any]]]  # the ``sent`` fixture (conftest.py)


def session_update(new_session: NewSession, tools: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The ``session.update`` a new session with these tool declarations sends first."""
    doc: dict[str, Any] = json.loads(new_session(bridging=False, tools=tools).realtime_opened())
    return doc


async def _weather(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
    return {"city": args["city"], "sky": "clear"}


WEATHER = Tool(
    "get_weather",
    "The weather in a city.",
    _weather,
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def test_tools_are_declared_in_session_update(new_session: NewSession) -> None:
    registry = ToolRegistry([END_CALL, WEATHER])
    update = session_update(new_session, registry.declarations())
    session = update["session"]
    assert session["tool_choice"] == "auto"
    assert [t["name"] for t in session["tools"]] == ["end_call", "get_weather"]
    assert session["tools"][1] == {
        "type": "function",
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": WEATHER.parameters,
    }


def test_no_tools_no_tool_keys(new_session: NewSession) -> None:
    assert "tools" not in session_update(new_session, None)["session"]


def test_output_item_done_is_parsed() -> None:
    raw = json.dumps(
        {
            "type": "response.output_item.done",
            "item": {
                "type": "function_call",
                "status": "completed",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city":"Paris"}',
            },
        }
    )
    assert parse_server_event(raw) == FunctionCallDone(
        "call_1", "get_weather", '{"city":"Paris"}', "completed"
    )
    done = parse_server_event(
        json.dumps(
            {
                "type": "response.done",
                "response": {
                    "id": "resp_1",
                    "status": "completed",
                    "output": [
                        {"type": "message", "role": "assistant"},
                        {"type": "function_call", "status": "completed", "call_id": "c2"},
                    ],
                },
            }
        )
    )
    assert isinstance(done, ResponseDone)
    assert [c.call_id for c in done.function_calls] == ["c2"]


def test_completed_call_runs_once_and_result_goes_back(new_session: NewSession, sent: Sent) -> None:
    session = new_session(tools=[WEATHER.declaration()])
    call = FunctionCallDone("call_1", "get_weather", '{"city":"Paris"}', "completed")
    session.realtime_event(ResponseCreated("resp_1"))
    session.realtime_event(call)
    assert session.drain_tool_calls() == [RunTool("call_1", "get_weather", '{"city":"Paris"}')]
    # response.done repeats the call in its output: never run twice
    session.realtime_event(ResponseDone("resp_1", "completed", (call,)))
    assert session.drain_tool_calls() == []

    session.tool_result("call_1", '{"sky":"clear"}')
    output, create = sent(session)
    assert output == {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": "call_1", "output": '{"sky":"clear"}'},
    }
    assert create == {"type": "response.create"}
    assert [(entry.role, entry.text) for entry in session.stats.transcript] == [
        ("tool_call", 'get_weather {"city":"Paris"}'),
        ("tool_result", '{"sky":"clear"}'),
    ]


def test_result_while_the_response_is_active_waits_for_its_end(
    session: CallSession, sent: Sent
) -> None:
    session.realtime_event(ResponseCreated("resp_1"))
    session.realtime_event(FunctionCallDone("c1", "get_weather", "{}", "completed"))
    session.tool_result("c1", "ok")
    assert [e["type"] for e in sent(session)] == ["conversation.item.create"]
    session.realtime_event(ResponseDone("resp_1", "completed"))
    assert sent(session) == [{"type": "response.create"}]


def test_incomplete_calls_do_not_run(session: CallSession) -> None:
    session.realtime_event(FunctionCallDone("c1", "get_weather", '{"ci', "incomplete"))
    session.realtime_event(ResponseDone("r", "cancelled", (FunctionCallDone("c2", "x", "", ""),)))
    assert session.drain_tool_calls() == []


def test_call_ending_result_requests_no_response(session: CallSession, sent: Sent) -> None:
    session.tool_result("c1", "bye", end_call=True)
    assert [e["type"] for e in sent(session)] == ["conversation.item.create"]
    assert session.end_requested
    assert session.reply_finished


def test_transfer_only_with_number_and_rest() -> None:
    assert build_registry(transfer_number=None, rest_configured=True, tools_module=None).names == [
        "end_call"
    ]
    off = build_registry(transfer_number="447700900002", rest_configured=False, tools_module=None)
    assert off.names == ["end_call"]
    on = build_registry(transfer_number="447700900002", rest_configured=True, tools_module=None)
    assert on.names == ["end_call", "transfer_call"]


@pytest.mark.parametrize(
    ("called", "caller_id"),
    [
        ("447700900001", {"from": "447700900001"}),
        ("+447700900001", {"from": "447700900001"}),
        (None, {"randomFromNumber": True}),  # unknown: Vonage picks one of our numbers
    ],
)
async def test_vonage_transfer_sends_an_inline_ncco_from_the_called_number(
    called: str | None, caller_id: dict[str, Any]
) -> None:
    """The tool goes through the Vonage door's control (``CallHangUp.transfer``)."""
    calls: list[tuple[str, Any]] = []

    class Api:
        async def transfer(self, call_uuid: str, ncco: list[dict[str, Any]]) -> None:
            calls.append((call_uuid, ncco))

    registry = build_registry(
        transfer_number="447700900002", rest_configured=True, tools_module=None
    )
    tool = registry.get("transfer_call")
    assert tool is not None
    control = CallHangUp(Api(), "uuid-1", called)  # type: ignore[arg-type]
    ctx = ToolContext("uuid-1", transfer=control.transfer, called=called)
    await tool.handler({}, ctx)
    assert calls == [
        (
            "uuid-1",
            [
                {
                    "action": "connect",
                    "endpoint": [{"type": "phone", "number": "447700900002"}],
                    **caller_id,
                }
            ],
        )
    ]


def test_tools_module_register_and_tools_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "vb_tools_reg.py").write_text(
        "async def hi(args, ctx):\n    return 'hi'\n"
        "def register(registry):\n    registry.tool('say_hi', 'Say hi.')(hi)\n"
    )
    (tmp_path / "vb_tools_list.py").write_text(
        "from vonage_bridge.tools import Tool\n"
        "async def hi(args, ctx):\n    return 'hi'\n"
        "TOOLS = [Tool('listed', 'Listed.', hi)]\n"
    )
    (tmp_path / "vb_tools_bad.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = ToolRegistry()
    load_tools_module("vb_tools_reg", registry)
    load_tools_module("vb_tools_list", registry)
    assert registry.names == ["say_hi", "listed"]
    with pytest.raises(ConfigError, match="TOOLS_MODULE"):
        build_registry(transfer_number=None, rest_configured=False, tools_module="vb_tools_bad")
    with pytest.raises(ConfigError, match="TOOLS_MODULE"):
        build_registry(transfer_number=None, rest_configured=False, tools_module="vb_no_such")
    for name in ("vb_tools_reg", "vb_tools_list", "vb_tools_bad"):
        sys.modules.pop(name, None)

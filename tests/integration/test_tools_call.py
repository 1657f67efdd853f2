"""Function calling on loopback: the bridge runs completed calls and answers the model.

The fake Realtime server does not invent function calls, so the tests inject the server
events a real model would send (through the fake's ``_push``, as a real server would)."""

from __future__ import annotations

import json
from typing import Any

from support import SECOND, StartCall
from test_vonage_call import connected

from vonage_bridge.sim.realtime import FakeRealtimeSession


def function_call(rt: FakeRealtimeSession, call_id: str, name: str, args: dict[str, Any]) -> None:
    item = {
        "id": f"item_{call_id}",
        "type": "function_call",
        "status": "completed",
        "call_id": call_id,
        "name": name,
        "arguments": json.dumps(args),
    }
    rt._push("response.output_item.done", response_id="resp_x", output_index=0, item=item)


async def test_custom_tool_result_goes_back_then_a_response(start_call: StartCall) -> None:
    call = await start_call(TOOLS_MODULE="sample_tools")
    caller, rt = await connected(call)
    update = await rt.wait_for_event("session.update", timeout=5 * SECOND)
    names = [t["name"] for t in update["session"]["tools"]]
    assert names == ["end_call", "lookup_order"]
    assert update["session"]["tool_choice"] == "auto"

    function_call(rt, "call_1", "lookup_order", {"order": "42"})
    created = await rt.wait_for_event("conversation.item.create", timeout=5 * SECOND)
    assert created["item"]["type"] == "function_call_output"
    assert created["item"]["call_id"] == "call_1"
    assert json.loads(created["item"]["output"]) == {
        "order": "42",
        "status": "shipped",
        "call": caller.call_uuid,
    }
    await rt.wait_for_event("response.create", timeout=5 * SECOND)

    function_call(rt, "call_2", "lookup_order", {"order": "0"})  # the tool raises
    failed = await rt.wait_for_event("conversation.item.create", timeout=5 * SECOND)
    assert failed["item"]["call_id"] == "call_2"
    assert "no such order" in json.loads(failed["item"]["output"])["error"]
    assert "error" not in [e["type"] for e in rt.server_events]
    await caller.hang_up()


async def test_end_call_closes_the_call_after_the_reply(start_call: StartCall) -> None:
    call = await start_call()
    caller, rt = await connected(call)
    function_call(rt, "call_1", "end_call", {})
    created = await rt.wait_for_event("conversation.item.create", timeout=5 * SECOND)
    assert created["item"]["type"] == "function_call_output"
    await caller.wait_closed(timeout=5 * SECOND)
    assert caller.close_code == 1001
    assert "assistant ended the call" in caller.close_reason
    assert not any(e["type"] == "response.create" for e in rt.client_events)


async def test_dtmf_reaches_the_model(start_call: StartCall) -> None:
    call = await start_call()
    caller, rt = await connected(call)
    await caller.send_dtmf("7")
    created = await rt.wait_for_event("conversation.item.create", timeout=5 * SECOND)
    assert created["item"]["content"] == [{"type": "input_text", "text": "The caller pressed 7"}]
    await rt.wait_for_event("response.create", timeout=5 * SECOND)
    await rt.wait_responses_done(1, timeout=5 * SECOND)
    assert "error" not in [e["type"] for e in rt.server_events]
    await caller.hang_up()

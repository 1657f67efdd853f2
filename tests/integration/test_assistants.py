"""Assistants over the API and at the front doors: stored, bound to numbers, answering calls."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from support import SECOND, Call, StartCall
from test_call_records import call_finished, get_json
from test_twilio_call import StartTwilio, start_twilio, twilio_api

from vonage_bridge.config import Settings
from vonage_bridge.errors import ConfigError
from vonage_bridge.sim.harness import sim_env
from vonage_bridge.web.app import make_app
from vonage_bridge.web.keys import ASSISTANTS

__all__ = ["start_twilio", "twilio_api"]  # fixtures, used by name

API_KEY = "assistants-key-0123456789"
SALES: dict[str, Any] = {
    "name": "sales",
    "numbers": ["+447700900001"],
    "instructions": "You sell boats to {caller} for {company}. {FAQ_KB} {unknown}",
    "faq": [{"question": "Open on Sunday?", "answer": "No."}],
    "voice": "cedar",
    "model": "gpt-realtime",
    "greeting": {"text": "Boats here!", "language": "en-GB"},
    "transcription": {"model": "gpt-4o-transcribe", "language": "en"},
    "turn_detection": {"type": "semantic_vad", "eagerness": "low"},
    "noise_reduction": "far_field",
    "tools": ["end_call"],
    "max_call_s": 600,
    "inactivity_timeout_s": 30,
    "record": False,
}


async def request(
    call: Call, method: str, path: str, body: Any = None, key: str | None = API_KEY
) -> tuple[int, Any]:
    headers = {"X-API-Key": key} if key is not None else {}
    data = None if body is None else (body if isinstance(body, str) else json.dumps(body))
    async with call.http.request(
        method, call.bridge.url + path, data=data, headers=headers
    ) as resp:
        text = await resp.text()
        return resp.status, json.loads(text) if text else None


async def test_put_get_list_and_delete_an_assistant(start_call: StartCall) -> None:
    call = await start_call(CONNECT_API_KEY=API_KEY)
    status, created = await request(call, "PUT", "/assistants/sales", SALES)
    assert status == 201
    assert created["version"] == 1 and created["numbers"] == ["+447700900001"]
    assert created["turn_detection"] == {"type": "semantic_vad", "eagerness": "low"}

    status, same = await request(call, "PUT", "/assistants/sales", SALES)  # nothing changed
    assert (status, same["version"]) == (200, 1)
    status, changed = await request(call, "PUT", "/assistants/sales", {**SALES, "voice": "ash"})
    assert (status, changed["version"], changed["voice"]) == (200, 2, "ash")

    status, got = await request(call, "GET", "/assistants/sales")
    assert status == 200 and got == changed
    status, listed = await request(call, "GET", "/assistants")
    assert status == 200
    assert [a["name"] for a in listed["assistants"]] == ["default", "sales"]
    assert listed["assistants"][0]["version"] == 0  # the built-in one

    status, _ = await request(call, "DELETE", "/assistants/sales")
    assert status == 204
    assert (await request(call, "GET", "/assistants/sales"))[0] == 404
    status, body = await request(call, "DELETE", "/assistants/sales")
    assert (status, body["error"]["code"]) == (404, "assistant_not_found")


async def test_a_bad_body_is_a_400_naming_each_bad_field(start_call: StartCall) -> None:
    call = await start_call(CONNECT_API_KEY=API_KEY)
    bad = {
        **SALES,
        "name": "other",
        "voice": "bob",
        "numbers": ["07700900001"],
        "turn_detection": {"type": "server_vad", "threshold": 2},
        "noise_reduction": "loud",
        "tools": ["end_call", "launch_rocket"],
        "colour": "blue",
    }
    status, body = await request(call, "PUT", "/assistants/sales", bad)
    assert status == 400
    assert body["error"]["code"] == "invalid_assistant"
    fields = {f["field"] for f in body["error"]["fields"]}
    assert fields == {
        "name",
        "voice",
        "numbers",
        "turn_detection.threshold",
        "noise_reduction",
        "colour",
    }
    for name in fields:
        assert name in body["error"]["message"]
    # the tools are checked once the rest is valid
    status, body = await request(
        call, "PUT", "/assistants/sales", {**SALES, "tools": ["end_call", "launch_rocket"]}
    )
    assert status == 400
    assert [f["field"] for f in body["error"]["fields"]] == ["tools.1"]
    assert "launch_rocket" in body["error"]["message"]
    status, body = await request(call, "PUT", "/assistants/sales", "[1, 2]")
    assert (status, body["error"]["code"]) == (400, "invalid_json")
    assert (await request(call, "GET", "/assistants/sales"))[0] == 404  # nothing stored


async def test_a_number_bound_to_another_assistant_is_a_409(
    start_call: StartCall, caplog: pytest.LogCaptureFixture
) -> None:
    call = await start_call(CONNECT_API_KEY=API_KEY)
    assert (await request(call, "PUT", "/assistants/sales", SALES))[0] == 201
    other = {"numbers": ["+1 415 555 0100", "+44 7700 900001"], "instructions": "Support."}
    with caplog.at_level(logging.INFO):
        status, body = await request(call, "PUT", "/assistants/support", other)
    assert not [r for r in caplog.records if "447700900001" in r.getMessage()]  # not logged
    assert status == 409
    assert body["error"]["code"] == "number_taken"
    assert "+447700900001" in body["error"]["message"] and "sales" in body["error"]["message"]
    assert (await request(call, "GET", "/assistants/support"))[0] == 404
    # once sales lets it go, support may have it
    assert (await request(call, "PUT", "/assistants/sales", {**SALES, "numbers": []}))[0] == 200
    status, body = await request(call, "PUT", "/assistants/support", other)
    assert status == 201
    assert body["numbers"] == ["+14155550100", "+447700900001"]


@pytest.mark.parametrize(
    ("env", "key", "status", "code"),
    [
        ({"CONNECT_API_KEY": API_KEY}, None, 401, "api_key_missing"),
        ({"CONNECT_API_KEY": API_KEY}, "wrong", 403, "api_key_invalid"),
        ({}, API_KEY, 503, "assistants_api_disabled"),
    ],
)
async def test_the_api_needs_the_connect_key(
    start_call: StartCall, env: dict[str, str], key: str | None, status: int, code: str
) -> None:
    call = await start_call(**env)
    for method, path in [("GET", "/assistants"), ("PUT", "/assistants/sales")]:
        got, body = await request(call, method, path, SALES, key=key)
        assert (got, body["error"]["code"]) == (status, code)


async def test_a_vonage_call_to_a_bound_number_is_answered_by_its_assistant(
    start_call: StartCall,
) -> None:
    call = await start_call(CONNECT_API_KEY=API_KEY)
    assert (await request(call, "PUT", "/assistants/sales", SALES))[0] == 201
    caller = call.caller(to_number="447700900001")
    ncco = await caller.answer()
    assert ncco[0] == {"action": "talk", "text": "Boats here!", "language": "en-GB"}
    await caller.connect()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    update = await rt.wait_for_event("session.update", timeout=5 * SECOND)
    session = update["session"]
    assert session["audio"]["output"]["voice"] == "cedar"
    audio_in = session["audio"]["input"]
    assert audio_in["turn_detection"]["type"] == "semantic_vad"
    assert audio_in["turn_detection"]["eagerness"] == "low"
    assert audio_in["noise_reduction"] == {"type": "far_field"}
    assert audio_in["transcription"] == {"model": "gpt-4o-transcribe", "language": "en"}
    assert [t["name"] for t in session["tools"]] == ["end_call"]
    text = session["instructions"]
    assert text.startswith(
        "You sell boats to +447700900000 (national form 07700900000) for {company}. "
        "Q: Open on Sunday?\nA: No. {unknown}"
    )
    assert text.endswith("{unknown}\n\nThe number they called is 447700900001.")
    await caller.hang_up()
    await call_finished(call, caller.call_uuid)
    status, record = await get_json(call, f"/calls/{caller.call_uuid}", API_KEY)
    assert status == 200
    assert (record["assistant"], record["assistant_version"]) == ("sales", 1)


async def test_an_unbound_number_gets_the_default_and_a_change_applies_to_the_next_call(
    start_call: StartCall,
) -> None:
    call = await start_call(CONNECT_API_KEY=API_KEY)
    first = call.caller(to_number="447700900009")
    ncco = await first.answer()
    assert ncco[0]["text"].startswith("Hello")  # GREETING_TEXT's default
    await first.connect()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    update = await rt.wait_for_event("session.update", timeout=5 * SECOND)
    assert update["session"]["audio"]["output"]["voice"] == "marin"
    await first.hang_up()
    await call_finished(call, first.call_uuid)
    assert (await get_json(call, f"/calls/{first.call_uuid}", API_KEY))[1]["assistant"] == (
        "default"
    )

    moved = {**SALES, "numbers": ["+447700900009"]}
    assert (await request(call, "PUT", "/assistants/sales", moved))[0] == 201
    second = call.caller(to_number="447700900009")
    assert (await second.answer())[0]["text"] == "Boats here!"  # no restart
    await second.connect()
    await second.hang_up()
    await call_finished(call, second.call_uuid)
    record = (await get_json(call, f"/calls/{second.call_uuid}", API_KEY))[1]
    assert (record["assistant"], record["assistant_version"]) == ("sales", 1)


async def test_a_twilio_call_is_answered_by_the_assistant_of_its_to(
    start_twilio: StartTwilio,
) -> None:
    tw = await start_twilio(CONNECT_API_KEY=API_KEY)
    bound = {**SALES, "numbers": ["+14155550199"], "greeting": {"text": "Twilio boats"}}
    assert (await request(tw.call, "PUT", "/assistants/sales", bound))[0] == 201
    caller, rt = await tw.connected(to_number="+14155550199")
    assert caller.greeting == "Twilio boats"
    update = await rt.wait_for_event("session.update", timeout=5 * SECOND)
    assert update["session"]["audio"]["output"]["voice"] == "cedar"
    await caller.hang_up()
    await call_finished(tw.call, caller.call_sid)
    record = (await get_json(tw.call, f"/calls/{caller.call_sid}", API_KEY))[1]
    assert (record["assistant"], record["assistant_version"]) == ("sales", 1)


async def test_assistants_file_is_upserted_at_start_up(
    start_call: StartCall, tmp_path: Path
) -> None:
    path = tmp_path / "assistants.toml"
    path.write_text(
        '[[assistants]]\nname = "sales"\nnumbers = ["+447700900001"]\n'
        'instructions = "Boats."\nvoice = "ash"\n',
        encoding="utf-8",
    )
    call = await start_call(CONNECT_API_KEY=API_KEY, ASSISTANTS_FILE=str(path))
    status, body = await request(call, "GET", "/assistants/sales")
    assert status == 200
    assert (body["voice"], body["numbers"], body["version"]) == ("ash", ["+447700900001"], 1)
    found = await call.bridge.app[ASSISTANTS].resolve(None, "447700900001")
    assert found.name == "sales"


async def test_a_file_assistant_with_an_unknown_tool_stops_start_up(tmp_path: Path) -> None:
    path = tmp_path / "assistants.json"
    path.write_text(json.dumps([{"name": "sales", "tools": ["launch_rocket"]}]), "utf-8")
    env = sim_env("http://127.0.0.1:9", ASSISTANTS_FILE=str(path))
    runner = web.AppRunner(make_app(Settings.from_env({**env, "SERVER_URL": "http://x:1"})))
    with pytest.raises(ConfigError) as caught:
        await runner.setup()  # the cleanup contexts run: store, then assistants
    await runner.cleanup()
    [line] = caught.value.problems
    assert str(path) in line and "assistants[0] (sales): tools.0" in line
    assert "launch_rocket" in line

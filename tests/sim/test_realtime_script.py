"""Scripted mode of the fake Realtime server: steps matched in order, failures kept for the test."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from vonage_bridge.sim.realtime import FakeRealtimeOptions, FakeRealtimeServer
from vonage_bridge.sim.realtime_script import (
    RealtimeScript,
    RealtimeStep,
    audio_reply,
    session_updated,
)

SECOND = float(os.environ.get("VB_TEST_TIMEOUT_FACTOR", "1"))
KEY = "sk-test"
APPEND = {"type": "input_audio_buffer.append", "audio": base64.b64encode(bytes(960)).decode()}
UPDATE = {"type": "session.update", "session": {"type": "realtime"}}


# -- the script on its own -------------------------------------------------------------------


def test_steps_match_in_order_and_emit_their_events() -> None:
    script = RealtimeScript(
        [
            RealtimeStep("session.update", emit=session_updated),
            RealtimeStep("response.create", emit=[{"type": "response.created"}]),
        ],
        ignore={"input_audio_buffer.append"},
    )
    assert script.answer(UPDATE) == [{"type": "session.updated", "session": {"type": "realtime"}}]
    assert script.answer(APPEND) == []
    assert script.answer({"type": "response.create"}) == [{"type": "response.created"}]
    script.assert_complete()
    assert [e["type"] for e in script.received] == [
        "session.update",
        "input_audio_buffer.append",
        "response.create",
    ]


def test_unexpected_event_fails_assert_complete() -> None:
    script = RealtimeScript([RealtimeStep("session.update")])
    script.answer({"type": "response.cancel"})
    script.answer(UPDATE)
    with pytest.raises(AssertionError, match="expected 'session.update', got 'response.cancel'"):
        script.assert_complete()


def test_event_after_the_last_step_fails_assert_complete() -> None:
    script = RealtimeScript([RealtimeStep("session.update")])
    script.answer(UPDATE)
    script.answer({"type": "response.create"})
    with pytest.raises(AssertionError, match="unexpected 'response.create' after the last step"):
        script.assert_complete()


def test_step_that_never_came_fails_assert_complete() -> None:
    script = RealtimeScript(
        [RealtimeStep("session.update"), RealtimeStep("response.create", note="the greeting")]
    )
    script.answer(UPDATE)
    with pytest.raises(AssertionError, match="never came: 'response.create' \\(the greeting\\)"):
        script.assert_complete()


def test_false_or_broken_predicate_is_a_failure_and_the_step_still_waits() -> None:
    script = RealtimeScript(
        [RealtimeStep("session.update", when=lambda e: e["session"]["voice"] == "marin")]
    )
    assert script.answer(UPDATE) == []  # KeyError inside the predicate
    script.answer({"type": "session.update", "session": {"voice": "alloy"}})
    assert script.remaining == list(script.steps)
    script.answer({"type": "session.update", "session": {"voice": "marin"}})
    assert script.remaining == []
    assert len(script.failures) == 2
    assert "predicate raised KeyError" in script.failures[0]
    assert "predicate false" in script.failures[1]
    with pytest.raises(AssertionError):
        script.assert_complete()


def test_ignored_type_still_matches_a_step_that_expects_it() -> None:
    first_append = RealtimeStep("input_audio_buffer.append", emit=[{"type": "x"}])
    script = RealtimeScript([first_append], ignore={"input_audio_buffer.append"})
    assert script.answer(APPEND) == [{"type": "x"}]
    assert script.answer(APPEND) == []
    script.assert_complete()


def test_audio_reply_splits_the_audio_into_deltas() -> None:
    events = audio_reply(bytes(10_000), chunk_bytes=4_800)
    types = [e["type"] for e in events]
    assert types == ["response.created"] + ["response.output_audio.delta"] * 3 + [
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.done",
    ]
    audio = b"".join(base64.b64decode(e["delta"]) for e in events[1:4])
    assert audio == bytes(10_000)
    assert events[-1]["response"]["status"] == "completed"
    with pytest.raises(ValueError):
        audio_reply(b"", chunk_bytes=0)


async def test_wait_done_names_the_missing_step_on_timeout() -> None:
    script = RealtimeScript([RealtimeStep("response.create")])
    with pytest.raises(TimeoutError, match="never came: 'response.create'"):
        await script.wait_done(timeout=0.01)


# -- the fake server in scripted mode --------------------------------------------------------


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def receive_types(ws: aiohttp.ClientWebSocketResponse, n: int) -> list[dict[str, Any]]:
    async with asyncio.timeout(5 * SECOND):
        return [await ws.receive_json() for _ in range(n)]


async def test_scripted_server_answers_only_with_the_script(http: aiohttp.ClientSession) -> None:
    script = RealtimeScript(
        [
            RealtimeStep("session.update", emit=session_updated),
            RealtimeStep(
                "input_audio_buffer.append",
                when=lambda e: len(base64.b64decode(e["audio"])) == 960,
                emit=[{"type": "input_audio_buffer.speech_started", "item_id": "item_u"}],
            ),
        ],
        ignore={"input_audio_buffer.append"},
    )
    async with FakeRealtimeServer(api_key=KEY, options=FakeRealtimeOptions(script=script)) as fake:
        ws = await http.ws_connect(fake.realtime_url(), headers={"Authorization": f"Bearer {KEY}"})
        [created] = await receive_types(ws, 1)
        assert created["type"] == "session.created"
        await ws.send_json(UPDATE)
        await ws.send_json(APPEND)
        await ws.send_json(APPEND)  # loud speech would start the fake's VAD: not in this mode
        updated, started = await receive_types(ws, 2)
        assert updated["type"] == "session.updated"
        assert updated["event_id"].startswith("event_")
        assert (started["type"], started["item_id"]) == (
            "input_audio_buffer.speech_started",
            "item_u",
        )
        await script.wait_done(timeout=5 * SECOND)
        await ws.send_json({"type": "response.cancel"})  # not in the script
        await ws.close()
        session = fake.sessions[0]
        await asyncio.wait_for(session.closed.wait(), 5 * SECOND)
    # the fake sent nothing of its own (no error for the stray cancel)
    assert [e["type"] for e in session.server_events] == [
        "session.created",
        "session.updated",
        "input_audio_buffer.speech_started",
    ]
    assert session.append_count == 2
    assert len(session.input_audio) == 1920
    with pytest.raises(AssertionError, match="unexpected 'response.cancel'"):
        script.assert_complete()

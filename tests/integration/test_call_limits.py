"""Call limits on loopback calls, with tiny limits: a silent line is asked once whether the
caller is still there, then said goodbye to and ended (``inactivity``); a long call is told to
wrap up, then said goodbye to and ended (``max_duration``). Every wait is on an event."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from support import SECOND, StartCall
from test_call_records import call_finished, get_json
from test_guards import summaries
from test_twilio_call import StartTwilio, start_twilio, twilio_api

from vonage_bridge.logs import CallContextFilter
from vonage_bridge.sim.realtime import FakeRealtimeSession

__all__ = ["start_twilio", "twilio_api"]  # fixtures, used by name

API_KEY = "limits-key-0123456789"


def prompts(rt: FakeRealtimeSession) -> list[str]:
    """The instructions of each ``response.create`` the bridge sent with some."""
    return [
        e["response"]["instructions"]
        for e in rt.client_events
        if e["type"] == "response.create" and "response" in e
    ]


def system_items(rt: FakeRealtimeSession) -> list[str]:
    return [
        e["item"]["content"][0]["text"]
        for e in rt.client_events
        if e["type"] == "conversation.item.create" and e["item"].get("role") == "system"
    ]


async def test_a_silent_vonage_call_is_asked_once_then_ended_for_inactivity(
    start_call: StartCall, caplog: pytest.LogCaptureFixture
) -> None:
    call = await start_call(CONNECT_API_KEY=API_KEY, INACTIVITY_TIMEOUT_S="0.4")
    caplog.handler.addFilter(CallContextFilter())
    with caplog.at_level(logging.INFO):
        caller = call.caller()
        await caller.answer()
        await caller.connect()
        rt = await call.fake.wait_for_session(timeout=5 * SECOND)
        # nobody speaks: the question, its audio, the same silence, the goodbye, the end
        await caller.wait_closed(timeout=10 * SECOND)
        await call_finished(call, caller.call_uuid)
    assert caller.close_code == 1001 and caller.close_reason == "inactivity"
    asked, goodbye = prompts(rt)
    assert "still there" in asked and "goodbye" in goodbye
    done = await rt.wait_responses_done(2, timeout=5 * SECOND)
    assert caller.bytes_received >= sum(r.total_bytes for r in done) * 2 // 3 - 2 * 640
    (summary,) = summaries(caplog)
    assert summary["end_reason"] == "inactivity"
    assert (summary["assistant"], summary["assistant_version"]) == ("default", 0)
    status, record = await get_json(call, f"/calls/{caller.call_uuid}", API_KEY)
    assert (status, record["end_reason"]) == (200, "inactivity")


async def test_a_long_vonage_call_wraps_up_then_ends_at_max_duration(
    start_call: StartCall,
) -> None:
    call = await start_call(CONNECT_API_KEY=API_KEY, MAX_CALL_S="1.2", INACTIVITY_TIMEOUT_S="0")
    caller = call.caller()
    await caller.answer()
    await caller.connect()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    await caller.wait_closed(timeout=10 * SECOND)
    await call_finished(call, caller.call_uuid)
    assert caller.close_code == 1001 and caller.close_reason == "max_duration"
    [wrap] = system_items(rt)
    assert "Wrap up" in wrap
    [goodbye] = prompts(rt)
    assert "time limit" in goodbye
    status, record = await get_json(call, f"/calls/{caller.call_uuid}", API_KEY)
    assert (status, record["end_reason"]) == (200, "max_duration")
    assert 1.2 <= record["duration_s"]


async def test_a_silent_twilio_call_is_ended_for_inactivity(start_twilio: StartTwilio) -> None:
    tw = await start_twilio(CONNECT_API_KEY=API_KEY, INACTIVITY_TIMEOUT_S="0.4")
    caller, rt = await tw.connected()
    await caller.wait_closed(timeout=10 * SECOND)
    await call_finished(tw.call, caller.call_sid)
    assert len(prompts(rt)) == 2
    assert tw.api.hangups(caller.call_sid)  # ended over REST too, not only the socket
    record: dict[str, Any] = (await get_json(tw.call, f"/calls/{caller.call_sid}", API_KEY))[1]
    assert record["end_reason"] == "inactivity"

"""Barge-in on loopback: the caller speaks over a long reply; playback stops, the reply is
truncated at what the caller heard, and the Realtime API reports no error."""

from __future__ import annotations

import asyncio

import pytest
from support import SECOND, StartCall
from test_vonage_call import connected, speech

from vonage_bridge.sim.realtime import FakeRealtimeOptions
from vonage_bridge.sim.vonage import CallerOptions

BYTES_PER_MS = 32  # L16 at 16 kHz


@pytest.mark.parametrize("factor", [1.0, 4.0], ids=["reply-streaming", "reply-all-sent"])
async def test_barge_in_truncates_at_heard_audio_and_clears(
    start_call: StartCall, factor: float
) -> None:
    call = await start_call(FakeRealtimeOptions(reply_realtime_factor=factor))
    caller, rt = await connected(call)
    # speech at real time (faster is dropped); the silence after at real time too
    await caller.stream_audio(speech(3000), realtime=True)
    await caller.stream_silence(900)
    await caller.wait_heard(500 * BYTES_PER_MS, timeout=10 * SECOND)

    talking = asyncio.create_task(caller.stream_audio(speech(800), realtime=True))
    truncate = await rt.wait_for_event("conversation.item.truncate", timeout=5 * SECOND)
    heard_ms_then = len(caller.heard) / BYTES_PER_MS
    await talking  # the caller goes on speaking for a while

    reply = rt.responses[0]
    assert truncate["item_id"] == reply.item_id
    assert truncate["content_index"] == 0
    # exact lower bound from Vonage's acknowledgements, never past what was heard
    assert 300 <= truncate["audio_end_ms"] <= heard_ms_then + 1
    types = [e["type"] for e in rt.server_events]
    assert "conversation.item.truncated" in types
    assert "error" not in types, [e for e in rt.server_events if e["type"] == "error"]
    assert not any(e["type"] == "response.cancel" for e in rt.client_events)
    # the caller stopped hearing the reply: clear received, at most the look-ahead played on
    assert {"action": "clear"} in caller.text_messages
    heard_ms = len(caller.heard) / BYTES_PER_MS
    assert heard_ms < truncate["audio_end_ms"] + 400
    assert heard_ms < 2500  # far from the ~3 s reply
    assert caller.bad_frames == []
    await caller.hang_up()


async def test_barge_in_without_playback_acknowledgements_truncates_at_zero(
    start_call: StartCall,
) -> None:
    """Lost ``websocket:notify`` replies: nothing is known to be heard, so the truncate is at
    0 ms (valid, never refused), and playback still stops."""
    call = await start_call(FakeRealtimeOptions(reply_realtime_factor=1.0))
    caller = call.caller(options=CallerOptions(notify_enabled=False))
    await caller.answer()
    await caller.connect()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    # speech at real time (faster is dropped); the silence after at real time too
    await caller.stream_audio(speech(3000), realtime=True)
    await caller.stream_silence(900)
    await caller.wait_heard(500 * BYTES_PER_MS, timeout=10 * SECOND)
    talking = asyncio.create_task(caller.stream_audio(speech(800), realtime=True))
    truncate = await rt.wait_for_event("conversation.item.truncate", timeout=5 * SECOND)
    await talking
    assert truncate["audio_end_ms"] == 0
    assert "error" not in [e["type"] for e in rt.server_events]
    assert {"action": "clear"} in caller.text_messages
    assert len(caller.heard) / BYTES_PER_MS < 2500
    await caller.hang_up()

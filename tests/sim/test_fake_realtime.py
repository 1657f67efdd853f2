"""The fake Realtime server speaks the GA protocol to an aiohttp client.

Source: https://platform.openai.com/docs/api-reference/realtime-client-events and
https://platform.openai.com/docs/api-reference/realtime-server-events."""

from __future__ import annotations

import asyncio
import base64
import math
import os
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import numpy as np
import pytest

from vonage_bridge.sim.realtime import FakeRealtimeOptions, FakeRealtimeServer

SECOND = float(os.environ.get("VB_TEST_TIMEOUT_FACTOR", "1"))
TIMEOUT = 5 * SECOND
KEY = "sk-test"
RATE = 24_000
BYTES_PER_MS = RATE // 1000 * 2
GA_SESSION: dict[str, Any] = {
    "type": "realtime",
    "audio": {
        "input": {
            "format": {"type": "audio/pcm", "rate": 24_000},
            "transcription": {"model": "gpt-4o-mini-transcribe"},
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
        },
    },
}

Event = dict[str, Any]


# -- helpers -------------------------------------------------------------------------------


def pcm(*parts: tuple[float, float]) -> bytes:
    """PCM16 LE at 24 kHz: (seconds, dBFS peak) parts; -inf is silence, else a 300 Hz tone."""
    chunks = []
    for seconds, dbfs in parts:
        t = np.arange(round(seconds * RATE)) / RATE
        amplitude = 0.0 if math.isinf(dbfs) else 10 ** (dbfs / 20) * 32767
        chunks.append(np.round(amplitude * np.sin(2 * np.pi * 300 * t)).astype("<i2"))
    return np.concatenate(chunks).tobytes()


async def append_all(ws: aiohttp.ClientWebSocketResponse, audio: bytes, frame_ms: int = 20) -> None:
    step = frame_ms * BYTES_PER_MS
    for i in range(0, len(audio), step):
        chunk = base64.b64encode(audio[i : i + step]).decode()
        await ws.send_json({"type": "input_audio_buffer.append", "audio": chunk})


async def recv_until(ws: aiohttp.ClientWebSocketResponse, type_: str) -> tuple[Event, list[Event]]:
    """Read server events until one of type_; return it and every event read."""
    seen: list[Event] = []
    async with asyncio.timeout(TIMEOUT):
        while True:
            event = await ws.receive_json()
            seen.append(event)
            if event["type"] == type_:
                return event, seen


@pytest.fixture
async def server() -> AsyncIterator[FakeRealtimeServer]:
    async with FakeRealtimeServer(api_key=KEY) as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def connect(
    http: aiohttp.ClientSession, server: FakeRealtimeServer, **headers: str
) -> aiohttp.ClientWebSocketResponse:
    """Open the socket, read session.created and send a GA session.update; await its answer."""
    ws = await http.ws_connect(
        server.realtime_url(), headers={"Authorization": f"Bearer {KEY}", **headers}
    )
    created, _ = await recv_until(ws, "session.created")
    assert created["session"]["type"] == "realtime"
    await ws.send_json({"type": "session.update", "session": GA_SESSION})
    await recv_until(ws, "session.updated")
    return ws


# -- handshake -----------------------------------------------------------------------------


async def test_bad_key_is_refused_with_401_json_and_recorded(
    server: FakeRealtimeServer, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(server.realtime_url(), headers={"Authorization": "Bearer sk-bad"})
    assert refused.value.status == 401
    async with http.get(f"{server.base_url}/realtime?model=m", headers={"api-key": "no"}) as resp:
        body = await resp.json()
    assert resp.status == 401
    assert body["error"]["code"] == "invalid_api_key"
    assert [(h["status"], h["headers"]) for h in server.handshakes] == [
        (401, {"authorization": "Bearer sk-bad"}),
        (401, {"api-key": "no"}),
    ]
    assert server.handshakes[0]["query"] == {"model": "gpt-realtime"}
    assert server.sessions == []


async def test_missing_model_is_refused_with_400(
    server: FakeRealtimeServer, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(
            f"{server.base_url}/realtime", headers={"Authorization": f"Bearer {KEY}"}
        )
    assert refused.value.status == 400
    assert server.handshakes[-1]["status"] == 400


async def test_azure_api_key_header_is_accepted(
    server: FakeRealtimeServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.realtime_url("m1"), headers={"api-key": KEY}) as ws:
        created, _ = await recv_until(ws, "session.created")
    assert created["session"]["model"] == "m1"
    assert created["event_id"].startswith("event_")
    assert server.handshakes[-1]["status"] == 101


async def test_reject_status_option_refuses_every_upgrade(http: aiohttp.ClientSession) -> None:
    options = FakeRealtimeOptions(reject_status=503)
    async with FakeRealtimeServer(api_key=KEY, options=options) as server:
        headers = {"Authorization": f"Bearer {KEY}"}
        async with http.get(f"{server.base_url}/realtime?model=m", headers=headers) as resp:
            body = await resp.json()
    assert resp.status == 503
    assert body["error"]["type"] == "invalid_request_error"
    assert server.handshakes[-1]["status"] == 503


async def test_beta_header_gets_error_then_close_4000(
    server: FakeRealtimeServer, http: aiohttp.ClientSession
) -> None:
    ws = await http.ws_connect(
        server.realtime_url(),
        headers={"Authorization": f"Bearer {KEY}", "OpenAI-Beta": "realtime=v1"},
    )
    async with asyncio.timeout(TIMEOUT):
        error = await ws.receive_json()
        closing = await ws.receive()
    assert error["type"] == "error"
    assert error["error"]["code"] == "beta_api_shape_disabled"
    assert closing.type is aiohttp.WSMsgType.CLOSE
    assert ws.close_code == 4000
    session = await server.wait_for_session(TIMEOUT)
    async with asyncio.timeout(TIMEOUT):
        await session.closed.wait()
    assert session.close_code == 4000
    assert server.handshakes[-1]["headers"]["openai-beta"] == "realtime=v1"


async def test_handshake_delay_outlasts_a_client_timeout_and_close_is_prompt(
    http: aiohttp.ClientSession,
) -> None:
    options = FakeRealtimeOptions(handshake_delay_s=30)
    server = FakeRealtimeServer(api_key=KEY, options=options)
    await server.start()
    try:
        with pytest.raises(asyncio.TimeoutError):
            async with asyncio.timeout(0.2):
                await http.ws_connect(
                    server.realtime_url(), headers={"Authorization": f"Bearer {KEY}"}
                )
        assert server.sessions == []
    finally:
        async with asyncio.timeout(TIMEOUT):  # close() cuts the 30 s delay short
            await server.close()
    assert len(server.handshakes) == 1


# -- session.update and errors ---------------------------------------------------------------


async def test_session_update_answers_with_the_full_effective_config(
    server: FakeRealtimeServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(
        server.realtime_url(), headers={"Authorization": f"Bearer {KEY}"}
    ) as ws:
        await recv_until(ws, "session.created")
        update = {"type": "realtime", "instructions": "Be brief.", "audio": GA_SESSION["audio"]}
        await ws.send_json({"type": "session.update", "session": update})
        updated, _ = await recv_until(ws, "session.updated")
        await ws.send_json({"type": "session.update", "event_id": "c1", "session": {"voice": "x"}})
        error, _ = await recv_until(ws, "error")
    session = updated["session"]
    assert session["instructions"] == "Be brief."
    assert session["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24_000}
    assert session["audio"]["input"]["transcription"] == {"model": "gpt-4o-mini-transcribe"}
    turn_detection = session["audio"]["input"]["turn_detection"]
    assert turn_detection["prefix_padding_ms"] == 300  # default filled in
    assert turn_detection["create_response"] is True
    assert error["error"]["code"] == "missing_required_parameter"
    assert error["error"]["param"] == "session.type"
    assert error["error"]["event_id"] == "c1"
    fake = server.sessions[0]
    assert fake.config["instructions"] == "Be brief."


@pytest.mark.parametrize(
    "audio_format",
    [{"type": "audio/pcm", "rate": 16_000}, {"type": "audio/pcm"}, {"type": "pcm16"}],
)
async def test_session_update_refuses_unsupported_input_formats(
    server: FakeRealtimeServer, http: aiohttp.ClientSession, audio_format: Event
) -> None:
    ws = await connect(http, server)
    session = {"type": "realtime", "audio": {"input": {"format": audio_format}}}
    await ws.send_json({"type": "session.update", "session": session})
    error, _ = await recv_until(ws, "error")
    await ws.close()
    assert error["error"]["code"] == "invalid_value"
    assert error["error"]["param"] == "session.audio.input.format"
    assert server.sessions[0].config["audio"]["input"]["format"]["rate"] == 24_000


async def test_bad_messages_get_error_events_and_the_socket_stays_open(
    server: FakeRealtimeServer, http: aiohttp.ClientSession
) -> None:
    ws = await connect(http, server)
    await ws.send_str("not json")
    await ws.send_bytes(b"\x00\x01")
    await ws.send_json({"type": "input_audio_buffer.append", "audio": "!!not base64!!"})
    await ws.send_json({"type": "bogus.event"})
    codes = [(await recv_until(ws, "error"))[0]["error"]["code"] for _ in range(4)]
    assert not ws.closed
    await ws.close()
    assert codes == ["invalid_json", "invalid_json", "invalid_value", "unknown_event"]
    fake = server.sessions[0]
    assert [e["type"] for e in fake.client_events[1:]] == [
        "(invalid json)",
        "(binary)",
        "input_audio_buffer.append",
        "bogus.event",
    ]
    assert fake.append_count == 1
    assert fake.input_audio == b""


# -- a whole turn --------------------------------------------------------------------------


async def test_utterance_gives_vad_events_transcript_and_an_echo_response(
    server: FakeRealtimeServer, http: aiohttp.ClientSession
) -> None:
    ws = await connect(http, server)
    # 0.4 s silence, 0.6 s tone at -12 dBFS, 1 s silence: speech from 400 ms to 1000 ms.
    await append_all(ws, pcm((0.4, -math.inf), (0.6, -12), (1.0, -math.inf)))
    done, seen = await recv_until(ws, "response.done")
    await ws.close()

    by_type: dict[str, list[Event]] = {}
    for event in seen:
        by_type.setdefault(event["type"], []).append(event)
    started = by_type["input_audio_buffer.speech_started"][0]
    stopped = by_type["input_audio_buffer.speech_stopped"][0]
    committed = by_type["input_audio_buffer.committed"][0]
    transcribed = by_type["conversation.item.input_audio_transcription.completed"][0]
    assert started["audio_start_ms"] == 400 - 300  # prefix_padding_ms 300
    assert stopped["audio_end_ms"] == 1000 + 500  # includes silence_duration_ms
    assert started["item_id"] == stopped["item_id"] == committed["item_id"]
    assert transcribed["item_id"] == started["item_id"]
    assert transcribed["transcript"] == "(caller speech 0.90 s)"

    deltas = by_type["response.output_audio.delta"]
    echoed = b"".join(base64.b64decode(d["delta"]) for d in deltas)
    assert len(echoed) == (1000 - 100) * BYTES_PER_MS  # prefix padding + speech
    assert all(len(base64.b64decode(d["delta"])) <= 100 * BYTES_PER_MS for d in deltas)
    response_id = by_type["response.created"][0]["response"]["id"]
    assert {d["response_id"] for d in deltas} == {response_id}
    assert done["response"]["status"] == "completed"
    assert by_type["response.output_audio_transcript.done"][0]["transcript"] == ("(echo of 0.90 s)")
    order = [e["type"] for e in seen if not e["type"].endswith(".delta")]
    assert order.index("response.output_audio.done") < order.index("response.output_item.done")

    fake = server.sessions[0]
    [response] = await fake.wait_responses_done(1, TIMEOUT)
    assert response.total_bytes == len(echoed)
    assert response.response_id == response_id
    assert fake.reply_log[-1][1] == len(echoed)
    assert fake.speech_started_count == 1
    assert len(fake.speech_stopped_ms) == 1
    assert fake.append_count == 100
    assert len(fake.input_audio) == 2 * RATE * 2


async def test_a_click_shorter_than_60_ms_is_not_speech(
    server: FakeRealtimeServer, http: aiohttp.ClientSession
) -> None:
    ws = await connect(http, server)
    await append_all(ws, pcm((0.2, -math.inf), (0.04, -6), (0.8, -math.inf)))
    await ws.send_json({"type": "response.create"})  # nothing heard: the fake plays a tone
    done, seen = await recv_until(ws, "response.done")
    await ws.close()
    types = [event["type"] for event in seen]
    assert "input_audio_buffer.speech_started" not in types
    assert done["response"]["output"][0]["content"][0]["transcript"] == "(tone 0.20 s)"
    assert server.sessions[0].speech_started_count == 0


async def test_truncate_beyond_sent_audio_is_an_error_and_within_is_confirmed(
    server: FakeRealtimeServer, http: aiohttp.ClientSession
) -> None:
    ws = await connect(http, server)
    await ws.send_json({"type": "response.create"})  # no utterance yet: a 200 ms tone
    done, _ = await recv_until(ws, "response.done")
    item_id = done["response"]["output"][0]["id"]
    truncate = {"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0}
    await ws.send_json({**truncate, "audio_end_ms": 1000})
    error, _ = await recv_until(ws, "error")
    await ws.send_json({**truncate, "audio_end_ms": 120})
    truncated, _ = await recv_until(ws, "conversation.item.truncated")
    await ws.send_json({**truncate, "item_id": "item_nope", "audio_end_ms": 0})
    unknown, _ = await recv_until(ws, "error")
    await ws.close()
    assert error["error"]["code"] == "invalid_value"
    assert error["error"]["message"] == "Audio content of 200ms is already shorter than 1000ms"
    assert truncated["item_id"] == item_id
    assert truncated["audio_end_ms"] == 120
    assert unknown["error"]["param"] == "item_id"


async def test_cancel_without_an_active_response_is_an_error(
    server: FakeRealtimeServer, http: aiohttp.ClientSession
) -> None:
    ws = await connect(http, server)
    await ws.send_json({"type": "response.cancel"})
    error, _ = await recv_until(ws, "error")
    await ws.close()
    assert error["error"]["code"] == "response_cancel_not_active"
    assert error["error"]["type"] == "invalid_request_error"


async def test_cancel_stops_a_streaming_response(http: aiohttp.ClientSession) -> None:
    options = FakeRealtimeOptions(reply_realtime_factor=1.0, reply_chunk_ms=20)
    async with FakeRealtimeServer(api_key=KEY, options=options) as server:
        ws = await connect(http, server)
        await append_all(ws, pcm((0.6, -12), (0.6, -math.inf)))
        await recv_until(ws, "response.output_audio.delta")
        await ws.send_json({"type": "response.cancel"})
        done, _ = await recv_until(ws, "response.done")
        fake = server.sessions[0]
        await fake.wait_for_event("response.cancel", TIMEOUT)
        await ws.close()
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["status_details"]["reason"] == "client_cancelled"
    [response] = fake.responses
    assert response.status == "cancelled"
    assert 0 < response.total_bytes < 900 * BYTES_PER_MS  # the echo would be 0.9 s


async def test_server_can_hang_up_and_close_after_responses(http: aiohttp.ClientSession) -> None:
    options = FakeRealtimeOptions(reply_realtime_factor=0, close_after_responses=1)
    async with FakeRealtimeServer(api_key=KEY, options=options) as server:
        ws = await connect(http, server)
        await ws.send_json({"type": "response.create"})
        await recv_until(ws, "response.done")
        async with asyncio.timeout(TIMEOUT):
            closing = await ws.receive()
        fake = server.sessions[0]
        async with asyncio.timeout(TIMEOUT):
            await fake.closed.wait()
        options.close_after_responses = None
        ws2 = await connect(http, server)
        assert await server.wait_for_session(TIMEOUT) is fake  # sessions come in order
        fake2 = await server.wait_for_session(TIMEOUT)
        receiving = asyncio.ensure_future(ws2.receive())
        await fake2.close(4001, b"bye")
        async with asyncio.timeout(TIMEOUT):
            closed2 = await receiving
    assert closing.type is aiohttp.WSMsgType.CLOSE
    assert fake.close_code == 1000
    assert closed2.type is aiohttp.WSMsgType.CLOSE
    assert (ws2.close_code, closed2.extra) == (4001, "bye")
    assert fake2.close_code == 4001


async def test_server_close_closes_live_sockets_with_1001(http: aiohttp.ClientSession) -> None:
    server = FakeRealtimeServer(api_key=KEY)
    await server.start()
    ws = await connect(http, server)
    receiving = asyncio.ensure_future(ws.receive())
    async with asyncio.timeout(TIMEOUT):
        await server.close()
        message = await receiving
    assert message.type is aiohttp.WSMsgType.CLOSE
    assert ws.close_code == 1001
    assert server.sessions[0].close_code == 1001

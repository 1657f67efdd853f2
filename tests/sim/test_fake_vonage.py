"""The fake Vonage caller behaves like Vonage against a tiny local bridge: the answer URL
(https://developer.vonage.com/en/voice/voice-api/webhook-reference), the NCCO ``connect``
(https://developer.vonage.com/en/voice/voice-api/ncco-reference) and the WebSocket audio
(https://developer.vonage.com/en/voice/voice-api/concepts/websockets)."""

from __future__ import annotations

import asyncio
import json
import os
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer

from vonage_bridge.sim.vonage import (
    CALLER_WAV,
    CallerError,
    CallerOptions,
    FakeVonageCaller,
    read_wav_pcm16,
    write_wav_pcm16,
)

SECOND = float(os.environ.get("VB_TEST_TIMEOUT_FACTOR", "1"))
TIMEOUT = 5 * SECOND
FRAME = 640  # bytes per 20 ms at 16 kHz


# -- a tiny bridge: answer URL + WebSocket -------------------------------------------------


@dataclass
class Bridge:
    """What the local bridge saw, plus a handle on its side of each socket."""

    answer_requests: list[dict[str, Any]] = field(default_factory=list)
    ws_queries: list[dict[str, str]] = field(default_factory=list)
    sockets: asyncio.Queue[web.WebSocketResponse] = field(default_factory=asyncio.Queue)
    texts: asyncio.Queue[tuple[float, dict[str, Any]]] = field(default_factory=asyncio.Queue)
    binary_sizes: list[int] = field(default_factory=list)
    received_audio: bytearray = field(default_factory=bytearray)
    echo: bool = True
    close_code: int | None = None
    ws_done: asyncio.Event = field(default_factory=asyncio.Event)


BRIDGE = web.AppKey("bridge", Bridge)


def _ncco(host: str, variant: str) -> Any:
    rate = 8000 if variant == "8k" else 16000
    path = "/refuse" if variant == "refused" else "/ws"
    talk = {"action": "talk", "text": "hi"}
    if variant == "talk-only":
        return [talk]
    if variant == "object":
        return {"action": "talk", "text": "not an array"}
    return [
        talk,
        {
            "action": "connect",
            "from": "447700900001",
            "endpoint": [
                {
                    "type": "websocket",
                    "uri": f"ws://{host}{path}?x=1",
                    "content-type": f"audio/l16;rate={rate}",
                    "headers": {"call_uuid": "abc"},
                }
            ],
        },
    ]


async def _answer(request: web.Request) -> web.Response:
    bridge = request.app[BRIDGE]
    body = await request.json() if request.method == "POST" else None
    bridge.answer_requests.append(
        {"method": request.method, "query": dict(request.query), "body": body}
    )
    variant = request.match_info["variant"]
    if variant == "error-500":
        return web.Response(status=500, text="boom")
    return web.json_response(_ncco(request.host, variant))


async def _ws(request: web.Request) -> web.WebSocketResponse:
    bridge = request.app[BRIDGE]
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    bridge.ws_queries.append(dict(request.query))
    bridge.sockets.put_nowait(ws)
    loop = asyncio.get_running_loop()
    async for msg in ws:
        if msg.type is aiohttp.WSMsgType.BINARY:
            bridge.binary_sizes.append(len(msg.data))
            bridge.received_audio += msg.data
            if bridge.echo:
                await ws.send_bytes(msg.data)
        elif msg.type is aiohttp.WSMsgType.TEXT:
            bridge.texts.put_nowait((loop.time(), json.loads(msg.data)))
    bridge.close_code = ws.close_code
    bridge.ws_done.set()
    return ws


async def _refuse(request: web.Request) -> web.Response:
    return web.Response(status=403, text="forbidden")


@pytest.fixture
async def server(aiohttp_server: AiohttpServer) -> TestServer:
    app = web.Application()
    app[BRIDGE] = Bridge()
    app.router.add_route("*", "/answer/{variant}", _answer)
    app.router.add_get("/ws", _ws)
    app.router.add_get("/refuse", _refuse)
    return await aiohttp_server(app)


@pytest.fixture
def bridge(server: TestServer) -> Bridge:
    return server.app[BRIDGE]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def caller(
    http: aiohttp.ClientSession, server: TestServer
) -> AsyncIterator[FakeVonageCaller]:
    async with FakeVonageCaller(http, str(server.make_url("/answer/ok"))) as fake:
        yield fake


async def _next_text(bridge: Bridge) -> tuple[float, dict[str, Any]]:
    async with asyncio.timeout(TIMEOUT):
        return await bridge.texts.get()


async def _dial(caller: FakeVonageCaller, bridge: Bridge) -> web.WebSocketResponse:
    """Answer, connect, and consume websocket:connected; return the bridge's socket."""
    await caller.answer()
    await caller.connect()
    async with asyncio.timeout(TIMEOUT):
        ws = await bridge.sockets.get()
    _, first = await _next_text(bridge)
    assert first["event"] == "websocket:connected"
    return ws


def _frames(values: list[int], size: int = FRAME) -> bytes:
    """Frames filled with one byte value each, so heard audio can be told apart."""
    return b"".join(bytes([v]) * size for v in values)


def _split(audio: bytes | bytearray, size: int = FRAME) -> list[bytes]:
    return [bytes(audio[i : i + size]) for i in range(0, len(audio), size)]


# -- answer URL -----------------------------------------------------------------------------


async def test_answer_get_carries_vonage_fields_in_query(
    http: aiohttp.ClientSession, server: TestServer, bridge: Bridge
) -> None:
    fake = FakeVonageCaller(
        http, str(server.make_url("/answer/ok")), call_uuid="leg-1", conversation_uuid="CON-1"
    )
    ncco = await fake.answer()
    assert bridge.answer_requests == [
        {
            "method": "GET",
            "query": {
                "to": "447700900001",
                "from": "447700900000",
                "uuid": "leg-1",
                "conversation_uuid": "CON-1",
            },
            "body": None,
        }
    ]
    assert ncco == fake.ncco
    assert [a["action"] for a in ncco] == ["talk", "connect"]


async def test_answer_post_sends_fields_as_json_body(
    http: aiohttp.ClientSession, server: TestServer, bridge: Bridge
) -> None:
    fake = FakeVonageCaller(http, str(server.make_url("/answer/ok")), method="POST")
    await fake.answer()
    (request,) = bridge.answer_requests
    assert request["method"] == "POST"
    assert request["query"] == {}
    assert request["body"] == {
        "to": "447700900001",
        "from": "447700900000",
        "uuid": fake.call_uuid,
        "conversation_uuid": fake.conversation_uuid,
    }
    assert fake.conversation_uuid.startswith("CON-")


@pytest.mark.parametrize(("variant", "status"), [("error-500", 500), ("object", 200)])
async def test_answer_rejects_error_status_or_non_array(
    http: aiohttp.ClientSession, server: TestServer, variant: str, status: int
) -> None:
    fake = FakeVonageCaller(http, str(server.make_url(f"/answer/{variant}")))
    with pytest.raises(CallerError) as info:
        await fake.answer()
    assert info.value.status == status
    assert fake.ncco is None


# -- connect -------------------------------------------------------------------------------


async def test_connect_sends_connected_with_ncco_headers_at_top_level(
    caller: FakeVonageCaller, bridge: Bridge
) -> None:
    await caller.answer()
    await caller.connect()
    _, first = await _next_text(bridge)
    assert first == {
        "event": "websocket:connected",
        "content-type": "audio/l16;rate=16000",
        "call_uuid": "abc",
    }
    assert bridge.ws_queries == [{"x": "1"}]
    assert caller.frame_bytes == 640
    assert caller.sample_rate_hz == 16000


async def test_connect_at_8khz_uses_320_byte_frames(
    http: aiohttp.ClientSession, server: TestServer, bridge: Bridge
) -> None:
    async with FakeVonageCaller(http, str(server.make_url("/answer/8k"))) as fake:
        await _dial(fake, bridge)
        assert fake.frame_bytes == 320
        await fake.stream_silence(50, realtime=False)
        await fake.wait_heard(3 * 320, timeout=TIMEOUT)  # echoed back
        assert bridge.binary_sizes == [320, 320, 320]


async def test_connect_without_websocket_endpoint_raises(
    http: aiohttp.ClientSession, server: TestServer
) -> None:
    fake = FakeVonageCaller(http, str(server.make_url("/answer/talk-only")))
    await fake.answer()
    with pytest.raises(CallerError, match="websocket endpoint"):
        await fake.connect()


async def test_connect_refused_upgrade_raises_with_status(
    http: aiohttp.ClientSession, server: TestServer
) -> None:
    async with FakeVonageCaller(http, str(server.make_url("/answer/refused"))) as fake:
        await fake.answer()
        with pytest.raises(CallerError) as info:
            await fake.connect()
        assert info.value.status == 403


# -- caller audio out ----------------------------------------------------------------------


async def test_stream_audio_sends_exact_frames_with_padded_tail(
    caller: FakeVonageCaller, bridge: Bridge
) -> None:
    bridge.echo = False
    await _dial(caller, bridge)
    pcm = _frames([1, 2, 3]) + b"\x07" * 100
    await caller.stream_audio(pcm, realtime=False)
    await caller.send_dtmf("#")  # a text message after the audio marks its end
    _, dtmf = await _next_text(bridge)
    assert dtmf == {"event": "websocket:dtmf", "digit": "#", "duration": 260}
    assert bridge.binary_sizes == [640, 640, 640, 640]
    assert bytes(bridge.received_audio) == pcm + bytes(540)
    assert [n for _, n in caller.send_log] == [640, 1280, 1920, 2560]


async def test_stream_audio_realtime_paces_on_20ms_deadlines(
    caller: FakeVonageCaller, bridge: Bridge
) -> None:
    bridge.echo = False
    await _dial(caller, bridge)
    await caller.stream_audio(_frames(list(range(8))), realtime=True)
    times = [t for t, _ in caller.send_log]
    assert len(times) == 8
    # Lower bounds only: frame i never leaves before start + i * 20 ms.
    assert all(t - times[0] >= i * 0.02 - 1e-6 for i, t in enumerate(times))


# -- bridge audio in: playback emulation ---------------------------------------------------


async def test_echoed_frames_are_heard_in_order(caller: FakeVonageCaller, bridge: Bridge) -> None:
    await _dial(caller, bridge)
    pcm = _frames([10, 11, 12, 13, 14])
    await caller.stream_audio(pcm, realtime=False)
    await caller.wait_heard(len(pcm), timeout=TIMEOUT)
    assert bytes(caller.heard) == pcm
    assert [n for _, n in caller.play_log] == [640, 1280, 1920, 2560, 3200]
    assert caller.bad_frames == []
    assert caller.first_frame_at is not None


async def test_wrong_size_frame_lands_in_bad_frames_and_is_not_played(
    caller: FakeVonageCaller, bridge: Bridge
) -> None:
    ws = await _dial(caller, bridge)
    await ws.send_bytes(b"\x01" * 320)
    await ws.send_bytes(_frames([2]))
    await ws.send_str(json.dumps({"action": "notify", "payload": {"name": "m"}}))
    _, reply = await _next_text(bridge)
    assert reply == {"event": "websocket:notify", "payload": {"name": "m"}}
    assert caller.bad_frames == [320]
    assert bytes(caller.heard) == _frames([2])
    assert [n for _, n in caller.recv_log] == [320, 960]


async def test_clear_drops_queued_frames_and_replies_cleared(
    caller: FakeVonageCaller, bridge: Bridge
) -> None:
    ws = await _dial(caller, bridge)
    for value in range(1, 51):  # 1 s of audio, queued at once
        await ws.send_bytes(_frames([value]))
    await caller.wait_heard(3 * FRAME, timeout=TIMEOUT)
    await ws.send_str(json.dumps({"action": "clear"}))
    _, cleared = await _next_text(bridge)
    assert cleared == {"event": "websocket:cleared"}

    # Audio sent after the clear plays right after what had played before it.
    for value in (0xEE, 0xEF):
        await ws.send_bytes(_frames([value]))
    await ws.send_str(json.dumps({"action": "notify", "payload": {"name": "after"}}))
    _, notified = await _next_text(bridge)
    assert notified["payload"] == {"name": "after"}
    heard = _split(caller.heard)
    before = len(heard) - 2
    assert 3 <= before < 50
    assert heard[:before] == _split(_frames(list(range(1, before + 1))))
    assert heard[before:] == _split(_frames([0xEE, 0xEF]))
    assert caller.bad_frames == []
    assert {"action": "clear"} in caller.text_messages


async def test_notify_is_echoed_only_after_audio_queued_before_it_has_played(
    caller: FakeVonageCaller, bridge: Bridge
) -> None:
    ws = await _dial(caller, bridge)
    await ws.send_bytes(_frames(list(range(10))))  # wrong: one 6400-byte message
    for value in range(10):
        await ws.send_bytes(_frames([value]))
    await ws.send_str(json.dumps({"action": "notify", "payload": {"name": "m1"}}))
    received_at, reply = await _next_text(bridge)
    assert reply == {"event": "websocket:notify", "payload": {"name": "m1"}}
    assert caller.bad_frames == [6400]
    assert bytes(caller.heard) == _frames(list(range(10)))
    # The 10th frame's 20 ms slot ends 200 ms after the first frame started playing.
    assert received_at >= caller.play_log[0][0] + 10 * 0.02 - 1e-6
    assert caller.unknown_messages == []


async def test_notify_disabled_sends_no_reply(
    http: aiohttp.ClientSession, server: TestServer, bridge: Bridge
) -> None:
    url = str(server.make_url("/answer/ok"))
    async with FakeVonageCaller(http, url, options=CallerOptions(notify_enabled=False)) as fake:
        ws = await _dial(fake, bridge)
        await ws.send_str(json.dumps({"action": "notify", "payload": {"name": "lost"}}))
        await ws.send_bytes(_frames([5]))
        await fake.wait_heard(FRAME, timeout=TIMEOUT)  # the marker was passed before it
        await fake.send_dtmf("1")
        _, message = await _next_text(bridge)
        assert message["event"] == "websocket:dtmf"
        assert {"action": "notify", "payload": {"name": "lost"}} in fake.text_messages


async def test_gap_inside_a_burst_counts_one_underrun(
    caller: FakeVonageCaller, bridge: Bridge
) -> None:
    ws = await _dial(caller, bridge)
    await ws.send_bytes(_frames([1, 2, 3]))  # one oversized message, ignored
    for value in (1, 2, 3):
        await ws.send_bytes(_frames([value]))
    await ws.send_str(json.dumps({"action": "notify", "payload": {"n": 1}}))
    await _next_text(bridge)
    assert caller.underruns == 0
    # The player ran dry at the end of frame 3; more audio arrives a few ms later.
    for value in (4, 5):
        await ws.send_bytes(_frames([value]))
    await ws.send_str(json.dumps({"action": "notify", "payload": {"n": 2}}))
    await _next_text(bridge)
    assert caller.underruns == 1
    assert bytes(caller.heard) == _frames([1, 2, 3, 4, 5])


async def test_unknown_action_is_recorded(caller: FakeVonageCaller, bridge: Bridge) -> None:
    ws = await _dial(caller, bridge)
    await ws.send_str(json.dumps({"action": "dance"}))
    await ws.send_str("not json")
    await ws.send_str(json.dumps({"action": "clear"}))
    await _next_text(bridge)  # websocket:cleared: the earlier messages were handled
    assert caller.unknown_messages == [{"action": "dance"}]
    assert caller.invalid_messages == ["not json"]


# -- ending the call -----------------------------------------------------------------------


async def test_hang_up_closes_with_1000(caller: FakeVonageCaller, bridge: Bridge) -> None:
    await _dial(caller, bridge)
    await caller.hang_up()
    await caller.wait_closed(timeout=TIMEOUT)
    async with asyncio.timeout(TIMEOUT):
        await bridge.ws_done.wait()
    assert bridge.close_code == 1000
    assert caller.close_code == 1000
    await caller.hang_up()  # idempotent
    assert caller.close_code == 1000


async def test_bridge_close_records_code_and_reason(
    caller: FakeVonageCaller, bridge: Bridge
) -> None:
    ws = await _dial(caller, bridge)
    await ws.close(code=4000, message=b"bye")
    await caller.wait_closed(timeout=TIMEOUT)
    assert caller.close_code == 4000
    assert caller.close_reason == "bye"
    with pytest.raises(CallerError, match="closed"):
        await caller.wait_heard(FRAME, timeout=TIMEOUT)
    await caller.stream_audio(_frames([1]), realtime=False)  # returns quietly
    assert caller.send_log == []


# -- WAV fixture and helpers ---------------------------------------------------------------


def test_caller_wav_is_16khz_mono_speech_of_2_5_to_4_s() -> None:
    assert CALLER_WAV.stat().st_size < 150_000
    with wave.open(str(CALLER_WAV), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16000)
    pcm, rate = read_wav_pcm16(CALLER_WAV)
    assert rate == 16000
    assert 2.5 <= len(pcm) / 2 / rate <= 4.0
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    peak_dbfs = 20 * np.log10(np.abs(samples).max() / 32768)
    assert -4.0 <= peak_dbfs <= -2.0
    loud = np.flatnonzero(np.abs(samples) > 0.01 * 32768)
    assert loud[0] <= 0.1 * rate  # leading silence ≤ 100 ms
    assert len(samples) - loud[-1] <= 0.1 * rate  # trailing silence ≤ 100 ms


def test_wav_helpers_round_trip_and_reject_stereo(tmp_path: Path) -> None:
    mono = tmp_path / "mono.wav"
    write_wav_pcm16(mono, b"\x01\x02" * 80, 8000)
    assert read_wav_pcm16(mono) == (b"\x01\x02" * 80, 8000)

    stereo = tmp_path / "stereo.wav"
    with wave.open(str(stereo), "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(bytes(64))
    with pytest.raises(ValueError, match="mono"):
        read_wav_pcm16(stereo)
    with pytest.raises(ValueError):
        write_wav_pcm16(tmp_path / "odd.wav", b"\x00", 16000)

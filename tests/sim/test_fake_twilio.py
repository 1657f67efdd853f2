"""The fake Twilio caller behaves like Twilio against a tiny local stub (Media Streams:
https://www.twilio.com/docs/voice/media-streams/websocket-messages).

The stub is an aiohttp app on 127.0.0.1: a Voice webhook answering TwiML built with the
``twilio`` package, and a Media Streams socket that records what the fake sends and lets the
test play media, marks and clears back.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
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
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

from vonage_bridge.sim.twilio import (
    CALLER_WAV,
    FRAME_BYTES,
    FakeTwilioCaller,
    TwilioCallerError,
    TwilioCallerOptions,
    mulaw_to_pcm16,
    parse_twiml,
    pcm16_to_mulaw,
    read_wav_mulaw,
    write_wav_mulaw,
)
from vonage_bridge.sim.vonage import read_wav_pcm16

SECOND = float(os.environ.get("VB_TEST_TIMEOUT_FACTOR", "1"))
TIMEOUT = 5 * SECOND
TOKEN = "twilio-auth-token-for-tests-only"


# -- the stub: webhook + Media Streams socket ----------------------------------------------


@dataclass
class Stub:
    """What the stub saw, plus a handle on its side of each socket."""

    webhooks: list[tuple[str, dict[str, str], dict[str, str]]] = field(default_factory=list)
    upgrades: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    sockets: asyncio.Queue[web.WebSocketResponse] = field(default_factory=asyncio.Queue)
    texts: asyncio.Queue[tuple[float, dict[str, Any]]] = field(default_factory=asyncio.Queue)
    ws_done: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None


STUB = web.AppKey("stub", Stub)


async def _incoming_call(request: web.Request) -> web.Response:
    stub = request.app[STUB]
    form = await request.post()
    params = {k: str(v) for k, v in form.items()}
    stub.webhooks.append((str(request.url), params, dict(request.headers)))
    variant = request.match_info["variant"]
    if variant == "forbidden":
        return web.Response(status=403, text="bad signature")
    response = VoiceResponse()
    response.say("Hello & welcome <caller>")
    if variant == "say-only":
        return web.Response(text=str(response), content_type="text/xml")
    if variant == "json":
        return web.json_response({"not": "twiml"})
    stream = response.connect().stream(url=f"ws://{request.host}/media?token=t1&x=2")
    stream.parameter(name="From", value=params["From"])
    stream.parameter(name="To", value=params["To"])
    return web.Response(text=str(response), content_type="text/xml")


async def _media(request: web.Request) -> web.WebSocketResponse:
    stub = request.app[STUB]
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    stub.upgrades.append((str(request.url), dict(request.headers)))
    stub.sockets.put_nowait(ws)
    loop = asyncio.get_running_loop()
    async for msg in ws:
        if msg.type is aiohttp.WSMsgType.TEXT:
            try:
                message = json.loads(msg.data)
            except ValueError:
                message = {"not_json": msg.data}
            stub.texts.put_nowait((loop.time(), message))
        elif msg.type is aiohttp.WSMsgType.BINARY:
            stub.texts.put_nowait((loop.time(), {"binary": len(msg.data)}))
    stub.close_code = ws.close_code
    stub.ws_done.set()
    return ws


@pytest.fixture
async def server(aiohttp_server: AiohttpServer) -> TestServer:
    app = web.Application()
    app[STUB] = Stub()
    app.router.add_post("/twilio/{variant}", _incoming_call)
    app.router.add_get("/media", _media)
    return await aiohttp_server(app)


@pytest.fixture
def stub(server: TestServer) -> Stub:
    return server.app[STUB]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def caller(
    http: aiohttp.ClientSession, server: TestServer
) -> AsyncIterator[FakeTwilioCaller]:
    url = str(server.make_url("/twilio/incoming-call"))
    async with FakeTwilioCaller(http, url, auth_token=TOKEN) as fake:
        yield fake


async def _next_text(stub: Stub) -> tuple[float, dict[str, Any]]:
    async with asyncio.timeout(TIMEOUT):
        return await stub.texts.get()


async def _dial(caller: FakeTwilioCaller, stub: Stub) -> web.WebSocketResponse:
    """Answer, connect, consume ``connected`` and ``start``; return the stub's socket."""
    await caller.answer()
    await caller.connect()
    async with asyncio.timeout(TIMEOUT):
        ws = await stub.sockets.get()
    _, connected = await _next_text(stub)
    _, start = await _next_text(stub)
    assert (connected["event"], start["event"]) == ("connected", "start")
    return ws


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def _play(ws: web.WebSocketResponse, sid: str, audio: bytes) -> None:
    await ws.send_json({"event": "media", "streamSid": sid, "media": {"payload": _b64(audio)}})


async def _mark(ws: web.WebSocketResponse, sid: str, name: str) -> None:
    await ws.send_json({"event": "mark", "streamSid": sid, "mark": {"name": name}})


# -- Voice webhook and TwiML ---------------------------------------------------------------


async def test_webhook_posts_twilio_fields_with_a_valid_signature(
    caller: FakeTwilioCaller, stub: Stub
) -> None:
    await caller.answer()
    ((url, params, headers),) = stub.webhooks
    assert params == caller.webhook_params
    assert params["CallSid"].startswith("CA") and len(params["CallSid"]) == 34
    assert params["AccountSid"].startswith("AC") and len(params["AccountSid"]) == 34
    int(params["CallSid"][2:], 16)  # hex digits
    assert params["From"] == "+14155550100"
    assert params["To"] == "+14155550199"
    assert params["Direction"] == "inbound"
    assert params["CallStatus"] == "ringing"
    assert params["ApiVersion"] == "2010-04-01"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert RequestValidator(TOKEN).validate(url, params, headers["X-Twilio-Signature"])


@pytest.mark.parametrize("mode", ["invalid", "missing"])
async def test_webhook_signature_can_be_wrong_or_absent(
    http: aiohttp.ClientSession, server: TestServer, stub: Stub, mode: str
) -> None:
    url = str(server.make_url("/twilio/incoming-call"))
    options = TwilioCallerOptions(webhook_signature=mode)  # type: ignore[arg-type]
    await FakeTwilioCaller(http, url, auth_token=TOKEN, options=options).answer()
    ((signed_url, params, headers),) = stub.webhooks
    if mode == "missing":
        assert "X-Twilio-Signature" not in headers
    else:
        signature = headers["X-Twilio-Signature"]
        assert not RequestValidator(TOKEN).validate(signed_url, params, signature)


async def test_webhook_without_token_sends_no_signature(
    http: aiohttp.ClientSession, server: TestServer, stub: Stub
) -> None:
    await FakeTwilioCaller(http, str(server.make_url("/twilio/incoming-call"))).answer()
    assert "X-Twilio-Signature" not in stub.webhooks[0][2]


async def test_answer_parses_say_stream_url_and_parameters(caller: FakeTwilioCaller) -> None:
    answer = await caller.answer()
    assert answer.say == ("Hello & welcome <caller>",)
    assert caller.greeting == "Hello & welcome <caller>"
    assert answer.stream_url.endswith("/media?token=t1&x=2")  # &amp; unescaped
    assert dict(answer.parameters) == {"From": "+14155550100", "To": "+14155550199"}
    assert caller.answer_info is answer


@pytest.mark.parametrize(
    ("variant", "status", "match"),
    [
        ("forbidden", 403, "HTTP 403"),
        ("say-only", 200, "no <Connect><Stream>"),
        ("json", 200, "not XML"),
    ],
)
async def test_answer_rejects_refusal_or_twiml_without_stream(
    http: aiohttp.ClientSession, server: TestServer, variant: str, status: int, match: str
) -> None:
    fake = FakeTwilioCaller(http, str(server.make_url(f"/twilio/{variant}")), auth_token=TOKEN)
    with pytest.raises(TwilioCallerError, match=match) as info:
        await fake.answer()
    assert info.value.status == status
    assert fake.answer_info is None


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("<Response><Start><Stream url='wss://x/s'/></Start></Response>", "no <Connect>"),
        ("<Response><Connect><Stream/></Connect></Response>", "no <Stream url"),
        ("<Reply/>", "expected <Response>"),
        ("<Response><Say>unclosed</Response>", "not return XML"),
    ],
)
def test_parse_twiml_fails_clearly(body: str, match: str) -> None:
    with pytest.raises(TwilioCallerError, match=match):
        parse_twiml(body)


async def test_connect_before_answer_raises(caller: FakeTwilioCaller) -> None:
    with pytest.raises(TwilioCallerError, match="before answer"):
        await caller.connect()
    with pytest.raises(TwilioCallerError, match="not connected"):
        await caller.send_dtmf("1")


# -- Media Stream: connected, start, media -------------------------------------------------


async def test_connect_signs_the_stream_url_and_sends_connected_then_start(
    caller: FakeTwilioCaller, stub: Stub
) -> None:
    await caller.answer()
    await caller.connect()
    _, connected = await _next_text(stub)
    _, start = await _next_text(stub)
    ((url, headers),) = stub.upgrades
    assert url.startswith("http://")  # aiohttp reports the upgrade request's URL as http
    ws_url = "ws" + url.removeprefix("http")
    assert caller.answer_info is not None
    assert ws_url == caller.answer_info.stream_url
    assert RequestValidator(TOKEN).validate(ws_url, {}, headers["X-Twilio-Signature"])
    assert connected == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    assert start == {
        "event": "start",
        "sequenceNumber": "1",
        "streamSid": caller.stream_sid,
        "start": {
            "streamSid": caller.stream_sid,
            "accountSid": caller.account_sid,
            "callSid": caller.call_sid,
            "tracks": ["inbound"],
            "customParameters": {"From": "+14155550100", "To": "+14155550199"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
    }
    assert caller.stream_sid.startswith("MZ") and len(caller.stream_sid) == 34


async def test_stream_signature_invalid_is_sent_but_does_not_validate(
    http: aiohttp.ClientSession, server: TestServer, stub: Stub
) -> None:
    url = str(server.make_url("/twilio/incoming-call"))
    options = TwilioCallerOptions(stream_signature="invalid")
    async with FakeTwilioCaller(http, url, auth_token=TOKEN, options=options) as fake:
        await _dial(fake, stub)
        ((upgrade_url, headers),) = stub.upgrades
        ws_url = "ws" + upgrade_url.removeprefix("http")
        assert not RequestValidator(TOKEN).validate(ws_url, {}, headers["X-Twilio-Signature"])
        # The webhook was still signed correctly.
        webhook_url, params, webhook_headers = stub.webhooks[0]
        signature = webhook_headers["X-Twilio-Signature"]
        assert RequestValidator(TOKEN).validate(webhook_url, params, signature)


async def test_media_messages_have_incrementing_numbers_and_160_byte_payloads(
    caller: FakeTwilioCaller, stub: Stub
) -> None:
    await _dial(caller, stub)
    audio = bytes(range(1, 201)) * 2  # 400 bytes: two whole frames and 80 bytes
    await caller.stream_audio(audio, realtime=True)
    media = [(await _next_text(stub))[1] for _ in range(3)]
    assert [m["sequenceNumber"] for m in media] == ["2", "3", "4"]
    assert [m["media"]["chunk"] for m in media] == ["1", "2", "3"]
    assert all(m["event"] == "media" and m["streamSid"] == caller.stream_sid for m in media)
    assert all(m["media"]["track"] == "inbound" for m in media)
    # On the media clock: 20 ms apart (more only if the loop stalled), never sent early.
    timestamps = [int(m["media"]["timestamp"]) for m in media]
    assert all(b - a >= 20 and (b - a) % 20 == 0 for a, b in itertools.pairwise(timestamps))
    payloads = [base64.b64decode(m["media"]["payload"]) for m in media]
    assert [len(p) for p in payloads] == [FRAME_BYTES] * 3
    assert b"".join(payloads) == audio + b"\xff" * 80  # tail padded with mu-law silence
    assert [n for _, n in caller.send_log] == [160, 320, 480]
    started_at = caller.stream_started_at
    assert all(
        t >= started_at + ts / 1000 - 1e-6
        for (t, _), ts in zip(caller.send_log, timestamps, strict=True)
    )


async def test_run_streams_speech_then_stops_after_the_tail(
    caller: FakeTwilioCaller, stub: Stub
) -> None:
    await caller.run(b"\x10" * 320, tail_ms=40, realtime=False)
    messages = [(await _next_text(stub))[1] for _ in range(6)]
    assert [m["event"] for m in messages] == ["connected", "start"] + ["media"] * 4
    assert caller.bytes_sent == 4 * FRAME_BYTES
    assert not caller.idle_silence


async def test_idle_silence_keeps_the_line_sending_until_stopped(
    caller: FakeTwilioCaller, stub: Stub
) -> None:
    await _dial(caller, stub)
    caller.start_silence()
    for expected in ("2", "3", "4"):
        _, message = await _next_text(stub)
        assert message["sequenceNumber"] == expected
        assert base64.b64decode(message["media"]["payload"]) == b"\xff" * FRAME_BYTES
    caller.stop_silence()
    await caller.send_dtmf("9")
    while (message := (await _next_text(stub))[1])["event"] == "media":
        pass  # at most one frame was already on its way
    assert message["dtmf"]["digit"] == "9"


# -- playback emulation: media, mark, clear ------------------------------------------------


async def test_mark_is_echoed_only_after_the_audio_before_it_has_played(
    caller: FakeTwilioCaller, stub: Stub
) -> None:
    ws = await _dial(caller, stub)
    sid = caller.stream_sid
    reply = bytes(range(256)) * 5  # 1280 bytes = 160 ms, sent in uneven chunks
    await _play(ws, sid, reply[:500])
    await _play(ws, sid, reply[500:])
    await _mark(ws, sid, "m1")
    received_at, echo = await _next_text(stub)
    assert echo == {
        "event": "mark",
        "sequenceNumber": echo["sequenceNumber"],
        "streamSid": sid,
        "mark": {"name": "m1"},
    }
    assert int(echo["sequenceNumber"]) == 2
    assert bytes(caller.heard) == reply
    assert caller.marks_echoed == ["m1"]
    assert (caller.media_received, caller.marks_received) == (2, 1)
    # The eighth 20 ms slot ends 160 ms after the first one started playing.
    assert received_at >= caller.play_log[0][0] + 8 * 0.02 - 1e-6
    assert caller.bad_messages == []


async def test_clear_drops_queued_audio_and_echoes_pending_marks_at_once(
    caller: FakeTwilioCaller, stub: Stub
) -> None:
    ws = await _dial(caller, stub)
    sid = caller.stream_sid
    await _play(ws, sid, b"\x01" * 8000)  # 1 s
    await _mark(ws, sid, "a")
    await _play(ws, sid, b"\x02" * 8000)
    await _mark(ws, sid, "b")
    await caller.wait_heard(3 * FRAME_BYTES, timeout=TIMEOUT)
    assert caller.pending_marks == ["a", "b"]
    await ws.send_json({"event": "clear", "streamSid": sid})
    _, first = await _next_text(stub)
    _, second = await _next_text(stub)
    assert [first["mark"]["name"], second["mark"]["name"]] == ["a", "b"]
    await caller.wait_cleared(1, timeout=TIMEOUT)
    assert caller.clears_received == 1
    assert caller.pending_marks == []
    heard_before = len(caller.heard)
    assert heard_before < 8000
    assert caller.cleared_bytes == 16000 - heard_before

    # Audio after the clear plays right after what had played before it.
    await _play(ws, sid, b"\x03" * 320)
    await _mark(ws, sid, "c")
    _, third = await _next_text(stub)
    assert third["mark"]["name"] == "c"
    assert bytes(caller.heard) == b"\x01" * heard_before + b"\x03" * 320
    assert caller.underruns == 0


async def test_marks_disabled_are_never_echoed(
    http: aiohttp.ClientSession, server: TestServer, stub: Stub
) -> None:
    url = str(server.make_url("/twilio/incoming-call"))
    options = TwilioCallerOptions(marks_enabled=False)
    async with FakeTwilioCaller(http, url, options=options) as fake:
        ws = await _dial(fake, stub)
        await _mark(ws, fake.stream_sid, "lost")
        await _play(ws, fake.stream_sid, b"\x05" * 160)
        await fake.wait_heard(160, timeout=TIMEOUT)
        await fake.send_dtmf("1")
        _, message = await _next_text(stub)
        assert message["event"] == "dtmf"
        assert fake.marks_received == 1
        assert fake.marks_echoed == []


async def test_gap_inside_a_burst_counts_one_underrun(caller: FakeTwilioCaller, stub: Stub) -> None:
    ws = await _dial(caller, stub)
    sid = caller.stream_sid
    await _play(ws, sid, b"\x01" * 320)
    await _mark(ws, sid, "first")
    await _next_text(stub)
    assert caller.underruns == 0
    # The player ran dry at the end of the burst; more audio arrives a few ms later.
    await _play(ws, sid, b"\x02" * 160)
    await _mark(ws, sid, "second")
    await _next_text(stub)
    assert caller.underruns == 1
    assert bytes(caller.heard) == b"\x01" * 320 + b"\x02" * 160


async def test_malformed_messages_from_the_bridge_are_counted_and_ignored(
    caller: FakeTwilioCaller, stub: Stub
) -> None:
    ws = await _dial(caller, stub)
    sid = caller.stream_sid
    await ws.send_str("{not json")
    await ws.send_json({"event": "media", "streamSid": "MZother", "media": {"payload": "AAAA"}})
    await ws.send_json({"event": "media", "streamSid": sid, "media": {"payload": "@@@"}})
    await ws.send_json({"event": "mark", "streamSid": sid, "mark": {}})
    await ws.send_json({"event": "dance", "streamSid": sid})
    await ws.send_bytes(b"\xff" * 160)
    await _mark(ws, sid, "ok")
    await _next_text(stub)  # echoed: everything before it was handled
    reasons = [reason for reason, _ in caller.bad_messages]
    assert len(reasons) == 6
    assert reasons[0] == "not JSON"
    assert "wrong streamSid" in reasons[1]
    assert reasons[2] == "media payload is not base64"
    assert reasons[3] == "mark without a name string"
    assert "unknown event" in reasons[4]
    assert reasons[5] == "binary message"
    assert caller.heard == bytearray()
    assert caller.media_received == 0


# -- dtmf, malformed sends, stop -----------------------------------------------------------


async def test_dtmf_message_shape(caller: FakeTwilioCaller, stub: Stub) -> None:
    await _dial(caller, stub)
    await caller.send_dtmf("#")
    _, dtmf = await _next_text(stub)
    assert dtmf == {
        "event": "dtmf",
        "streamSid": caller.stream_sid,
        "sequenceNumber": "2",
        "dtmf": {"track": "inbound_track", "digit": "#"},
    }
    with pytest.raises(ValueError, match="DTMF"):
        await caller.send_dtmf("A")


async def test_send_malformed_sends_what_twilio_never_would(
    caller: FakeTwilioCaller, stub: Stub
) -> None:
    await _dial(caller, stub)
    kinds = ["bad_base64", "wrong_stream_sid", "missing_media", "short_frame"]
    for kind in [*kinds, "bad_json", "binary"]:
        await caller.send_malformed(kind)  # type: ignore[arg-type]
    got = [(await _next_text(stub))[1] for _ in range(6)]
    bad_b64, other_sid, no_media, short, bad_json, binary = got
    assert bad_b64["media"]["payload"] == "not base64!"
    assert other_sid["streamSid"] != caller.stream_sid
    assert other_sid["streamSid"].startswith("MZ")
    assert "media" not in no_media and no_media["event"] == "media"
    assert len(base64.b64decode(short["media"]["payload"])) == 100
    assert "not_json" in bad_json
    assert binary == {"binary": 160}
    with pytest.raises(ValueError, match="unknown"):
        await caller.send_malformed("nonsense")  # type: ignore[arg-type]


async def test_hang_up_sends_stop_and_closes_with_1000(
    caller: FakeTwilioCaller, stub: Stub
) -> None:
    await _dial(caller, stub)
    await caller.hang_up()
    _, stop = await _next_text(stub)
    assert stop == {
        "event": "stop",
        "sequenceNumber": "2",
        "streamSid": caller.stream_sid,
        "stop": {"accountSid": caller.account_sid, "callSid": caller.call_sid},
    }
    async with asyncio.timeout(TIMEOUT):
        await stub.ws_done.wait()
    assert stub.close_code == 1000
    assert caller.close_code == 1000
    await caller.hang_up()  # idempotent
    assert [m["event"] for m in caller.sent_messages] == ["connected", "start", "stop"]


async def test_bridge_close_records_code_and_reason(caller: FakeTwilioCaller, stub: Stub) -> None:
    ws = await _dial(caller, stub)
    await ws.close(code=4403, message=b"bad signature")
    await caller.wait_closed(timeout=TIMEOUT)
    assert (caller.close_code, caller.close_reason) == (4403, "bad signature")
    with pytest.raises(TwilioCallerError, match="closed"):
        await caller.wait_heard_ms(20, timeout=TIMEOUT)
    await caller.stream_audio(b"\x00" * 160, realtime=True)  # returns quietly
    assert caller.send_log == []


async def test_wait_heard_times_out_with_progress(caller: FakeTwilioCaller, stub: Stub) -> None:
    await _dial(caller, stub)
    with pytest.raises(TimeoutError, match="heard 0 of 160 bytes"):
        await caller.wait_heard(160, timeout=0.05)


# -- behind a proxy ------------------------------------------------------------------------


async def test_public_base_url_signs_public_urls_and_sends_forwarded_headers(
    http: aiohttp.ClientSession, server: TestServer, stub: Stub
) -> None:
    url = str(server.make_url("/twilio/incoming-call"))
    options = TwilioCallerOptions(public_base_url="https://bridge.example.com")
    async with FakeTwilioCaller(http, url, auth_token=TOKEN, options=options) as fake:
        await _dial(fake, stub)
        _, params, headers = stub.webhooks[0]
        assert headers["X-Forwarded-Proto"] == "https"
        assert headers["X-Forwarded-Host"] == "bridge.example.com"
        public = "https://bridge.example.com/twilio/incoming-call"
        assert RequestValidator(TOKEN).validate(public, params, headers["X-Twilio-Signature"])
        _, ws_headers = stub.upgrades[0]
        public_ws = "wss://bridge.example.com/media?token=t1&x=2"
        signature = ws_headers["X-Twilio-Signature"]
        assert RequestValidator(TOKEN).validate(public_ws, {}, signature)
        assert ws_headers["X-Forwarded-Host"] == "bridge.example.com"


# -- audio helpers -------------------------------------------------------------------------


def test_read_wav_mulaw_turns_the_16khz_caller_into_8khz_mulaw() -> None:
    pcm16k, rate = read_wav_pcm16(CALLER_WAV)
    mulaw = read_wav_mulaw(CALLER_WAV)
    assert rate == 16000
    assert abs(len(mulaw) - len(pcm16k) // 4) <= 2  # half the samples, one byte each
    decoded = np.frombuffer(mulaw_to_pcm16(mulaw), dtype="<i2").astype(np.float64)
    peak_dbfs = 20 * np.log10(np.abs(decoded).max() / 32768)
    assert -6.0 <= peak_dbfs <= -1.0  # speech survived, no clipping


def test_mulaw_helpers_round_trip_and_silence_is_0xff(tmp_path: Path) -> None:
    assert pcm16_to_mulaw(bytes(320), 8000) in (b"\xff" * 160, b"\x7f" * 160)
    assert mulaw_to_pcm16(b"\xff") == b"\x00\x00"
    tone = (np.sin(np.arange(800) / 5) * 8000).astype("<i2").tobytes()
    back = np.frombuffer(mulaw_to_pcm16(pcm16_to_mulaw(tone, 8000)), dtype="<i2")
    error = np.abs(back.astype(int) - np.frombuffer(tone, dtype="<i2").astype(int))
    assert error.max() <= 8000 // 32  # G.711 step at that level is well under 3 %
    path = tmp_path / "heard.wav"
    write_wav_mulaw(path, b"\xff\x00\x80")
    assert read_wav_pcm16(path) == (mulaw_to_pcm16(b"\xff\x00\x80"), 8000)
    with pytest.raises(ValueError, match="even"):
        pcm16_to_mulaw(b"\x00", 8000)

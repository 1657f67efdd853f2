"""A whole Vonage call on loopback: answer URL, media socket, fake Realtime, both directions."""

from __future__ import annotations

import asyncio
import json
import logging
import math

import aiohttp
import numpy as np
import pytest
import soxr
from support import SECOND, Call, StartCall

from vonage_bridge.sim.audio import resample_pcm16
from vonage_bridge.sim.realtime import FakeRealtimeOptions, FakeRealtimeSession
from vonage_bridge.sim.vonage import CALLER_WAV, FakeVonageCaller, read_wav_pcm16

FRAME = 640


async def connected(call: Call) -> tuple[FakeVonageCaller, FakeRealtimeSession]:
    """A caller that has fetched the NCCO and opened the media socket, and its Realtime side."""
    caller = call.caller()
    await caller.answer()
    await caller.connect()
    return caller, await call.fake.wait_for_session(timeout=5 * SECOND)


def speech(ms: int = 1200) -> bytes:
    pcm, rate = read_wav_pcm16(CALLER_WAV)
    assert rate == 16_000
    return pcm[: ms * 32]


def snr_db(ref: np.ndarray, got: np.ndarray) -> float:
    n = min(len(ref), len(got))
    r = ref[:n].astype(np.float64)
    g = got[:n].astype(np.float64)
    return float(10 * np.log10(np.sum(r**2) / max(np.sum((r - g) ** 2), 1e-9)))


async def test_call_bridges_audio_both_ways(start_call: StartCall) -> None:
    call = await start_call()
    caller = call.caller()
    ncco = await caller.answer()
    assert [a["action"] for a in ncco] == ["talk", "connect"]
    await caller.connect()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    pcm = speech()
    # speech at real time (faster is dropped); the silence after at real time too
    await caller.stream_audio(pcm, realtime=True)
    await caller.stream_silence(900)
    done = await rt.wait_responses_done(1, timeout=10 * SECOND)
    expected_frames = math.ceil(done[0].total_bytes * 2 / 3 / FRAME)
    await caller.wait_heard(expected_frames * FRAME, timeout=10 * SECOND)

    # session.update: GA shape, 24 kHz PCM both ways, voice, server VAD, transcription
    update = rt.client_events[0]
    assert update["type"] == "session.update"
    session = update["session"]
    assert session["type"] == "realtime"
    assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert session["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert session["audio"]["output"]["voice"] == "marin"
    assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert session["audio"]["input"]["transcription"]["model"]
    assert "447700900000" in session["instructions"]
    assert rt.handshake["headers"].get("authorization") == "Bearer sk-sim"
    assert not rt.handshake["headers"].get("openai-beta")

    # caller audio reached OpenAI at 24 kHz with its content preserved
    sent = np.frombuffer(pcm + bytes(900 * 32), dtype=np.int16)
    direct = soxr.resample(sent, 16_000, 24_000, quality="LQ")
    got = np.frombuffer(bytes(rt.input_audio), dtype=np.int16)
    assert len(got) >= len(sent) * 1.5 - 24 * 25  # at most ~25 ms still inside the resampler
    assert snr_db(direct[: len(got)], got) > 30.0

    # every frame to the caller is exactly 640 bytes, and the reply has the right length
    assert caller.bad_frames == []
    assert caller.bytes_received == expected_frames * FRAME
    await caller.hang_up()


async def speak_at_rate(
    start_call: StartCall, rate_hz: int
) -> tuple[FakeVonageCaller, FakeRealtimeSession, bytes, int]:
    """A call with ``VONAGE_AUDIO_RATE=rate_hz``: checks that the NCCO asks for that rate and
    the caller streams frames of it (20 ms each), then speaks the words at real time and 900 ms
    of silence. Returns the caller, the Realtime session, the speech sent (whole frames) and
    the reply's bytes at 24 kHz once the reply is done."""
    call = await start_call(VONAGE_AUDIO_RATE=str(rate_hz))
    caller = call.caller()
    ncco = await caller.answer()
    assert ncco[-1]["endpoint"][0]["content-type"] == f"audio/l16;rate={rate_hz}"
    await caller.connect()
    frame = rate_hz // 25  # 20 ms of PCM16
    assert (caller.sample_rate_hz, caller.frame_bytes) == (rate_hz, frame)
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    pcm = resample_pcm16(speech(), 16_000, rate_hz)  # rounded and clipped to int16
    pcm = pcm[: len(pcm) // frame * frame]
    await caller.stream_audio(pcm, realtime=True)
    await caller.stream_silence(900)
    done = await rt.wait_responses_done(1, timeout=10 * SECOND)
    return caller, rt, pcm, done[0].total_bytes


async def test_at_24_khz_audio_passes_through_unchanged_both_ways(start_call: StartCall) -> None:
    """VONAGE_AUDIO_RATE=24000: Vonage's L16 at 24 kHz is Realtime's audio/pcm byte for byte,
    so nothing is resampled: OpenAI gets exactly the caller's bytes, the caller exactly the
    reply's, in 960-byte frames."""
    caller, rt, pcm, reply = await speak_at_rate(start_call, 24_000)
    await caller.wait_heard(math.ceil(reply / 960) * 960, timeout=10 * SECOND)

    session = rt.client_events[0]["session"]
    assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    sent = pcm + bytes(900 * 48)
    assert bytes(rt.input_audio) == sent[: len(rt.input_audio)]  # nothing held back, unchanged
    assert len(rt.input_audio) >= len(pcm)
    assert caller.bad_frames == []
    heard = bytes(caller.heard)
    assert heard[:reply] in sent  # the fake echoes the caller's words: the same bytes
    assert heard[reply:] == bytes(len(heard) - reply)  # the last frame padded with silence
    await caller.hang_up()


async def test_at_8_khz_audio_is_resampled_to_and_from_24_khz(start_call: StartCall) -> None:
    """VONAGE_AUDIO_RATE=8000: 320-byte frames, three times as many samples to OpenAI."""
    caller, rt, pcm, reply = await speak_at_rate(start_call, 8_000)
    frames = math.ceil(reply / 3 / 320)
    await caller.wait_heard(frames * 320, timeout=10 * SECOND)
    sent = len(pcm) + 900 * 16
    assert sent * 3 - 48 * 25 <= len(rt.input_audio) <= sent * 3  # at most ~25 ms held back
    assert caller.bad_frames == []
    assert caller.bytes_received == frames * 320
    await caller.hang_up()


async def test_audio_sent_before_realtime_is_ready_is_held_not_dropped(
    start_call: StartCall,
) -> None:
    call = await start_call(FakeRealtimeOptions(handshake_delay_s=0.4, reply=False))
    caller = call.caller()
    await caller.answer()
    await caller.connect()
    pcm = speech(600)
    await caller.stream_audio(pcm, realtime=False)  # all of it before the fake accepts
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    await caller.stream_silence(200, realtime=False)
    # wait until the last of it arrived
    for _ in range(200):
        if len(rt.input_audio) >= (len(pcm) + 200 * 32) * 1.5 - 24 * 25 * 2:
            break
        await asyncio.wait_for(rt.wait_for_event("input_audio_buffer.append"), 5 * SECOND)
    got = np.frombuffer(bytes(rt.input_audio), dtype=np.int16)
    direct = soxr.resample(np.frombuffer(pcm, dtype=np.int16), 16_000, 24_000, quality="LQ")
    assert rt.client_events[0]["type"] == "session.update"  # configured before any audio
    assert snr_db(direct, got) > 30.0
    await caller.hang_up()


async def test_media_upgrade_without_valid_token_is_refused(start_call: StartCall) -> None:
    call = await start_call()
    base = call.bridge.url.replace("http", "ws") + "/vonage/ws"
    for query in ("", "?call_uuid=abc&exp=9999999999&token=forged"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await call.http.ws_connect(base + query)
        assert info.value.status == 403
    async with call.http.get(call.bridge.url + "/vonage/ws?call_uuid=abc") as resp:
        assert resp.status == 403
        body = await resp.json()
        assert body["error"]["code"] == "media_token_missing"
    assert call.fake.handshakes == []  # no Realtime session was opened


async def test_expired_media_token_is_refused(start_call: StartCall) -> None:
    call = await start_call(MEDIA_TOKEN_TTL_S="10")
    signer_token = call.bridge.app
    from vonage_bridge.web.keys import SIGNER

    token = signer_token[SIGNER].mint("call-1", now=1_000.0)  # long expired
    url = (
        call.bridge.url.replace("http", "ws")
        + f"/vonage/ws?call_uuid=call-1&exp={token.exp}&token={token.token}"
    )
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await call.http.ws_connect(url)
    assert info.value.status == 403


@pytest.mark.parametrize(
    ("options", "env", "reason_part"),
    [
        (FakeRealtimeOptions(reject_status=401), {}, "401"),
        (FakeRealtimeOptions(reject_status=503), {}, "503"),
        (FakeRealtimeOptions(handshake_delay_s=3.0), {"OPENAI_CONNECT_TIMEOUT_S": "0.5"}, "0.5 s"),
    ],
)
async def test_failed_realtime_connect_ends_the_call_cleanly(
    start_call: StartCall,
    caplog: pytest.LogCaptureFixture,
    options: FakeRealtimeOptions,
    env: dict[str, str],
    reason_part: str,
) -> None:
    call = await start_call(options, **env)
    caller = call.caller()
    await caller.answer()
    with caplog.at_level(logging.INFO):
        await caller.connect()
        await caller.wait_closed(timeout=5 * SECOND)
        await _no_live_calls(call)
    assert caller.close_code == 1011
    assert reason_part in caller.close_reason
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any(reason_part in r.getMessage() for r in errors)
    assert not any(r.exc_info for r in errors)  # a named cause, not a traceback


async def _no_live_calls(call: object) -> None:
    from vonage_bridge.web.keys import CALLS

    app = call.bridge.app  # type: ignore[attr-defined]
    tasks = [live.task for live in app[CALLS].values()]
    if tasks:
        await asyncio.wait(tasks, timeout=5 * SECOND)
    assert not app[CALLS]


async def test_caller_hang_up_closes_the_realtime_session(start_call: StartCall) -> None:
    call = await start_call()
    caller, rt = await connected(call)
    await caller.stream_silence(100, realtime=False)
    await caller.hang_up()
    await asyncio.wait_for(rt.closed.wait(), 5 * SECOND)
    assert rt.close_code == 1000
    await _no_live_calls(call)


async def test_realtime_hang_up_closes_the_caller_socket(start_call: StartCall) -> None:
    call = await start_call()
    caller, rt = await connected(call)
    await rt.wait_for_event("session.update")
    await rt.close(1000)
    await caller.wait_closed(timeout=5 * SECOND)
    assert caller.close_code == 1011
    assert "Realtime closed" in caller.close_reason
    await _no_live_calls(call)


async def test_bad_caller_messages_are_logged_once_and_the_call_goes_on(
    start_call: StartCall, caplog: pytest.LogCaptureFixture
) -> None:
    call = await start_call()
    caller, rt = await connected(call)
    ws = caller._ws  # the raw socket, to send what a broken peer would
    assert ws is not None
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            await ws.send_bytes(b"\x01\x02\x03")  # odd length: not PCM16
            await ws.send_str("not json")
            await ws.send_str(json.dumps({"event": "websocket:mystery"}))
        # speech at real time (faster is dropped); the silence after at real time too
        await caller.stream_audio(speech(800), realtime=True)
        await caller.stream_silence(900)
        await rt.wait_responses_done(1, timeout=10 * SECOND)
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("vonage_bridge")]
    assert sum("3 bytes" in m for m in messages) == 1
    assert sum("not JSON" in m for m in messages) == 1
    assert sum("websocket:mystery" in m for m in messages) == 1
    await caller.hang_up()


async def test_server_shutdown_closes_live_calls_with_going_away(start_call: StartCall) -> None:
    call = await start_call()
    caller, rt = await connected(call)
    await rt.wait_for_event("session.update")
    await call.bridge.close()
    await caller.wait_closed(timeout=5 * SECOND)
    assert caller.close_code == 1001
    await asyncio.wait_for(rt.closed.wait(), 5 * SECOND)


def masked_binary(payload: bytes) -> bytes:
    """A client-to-server binary frame (RFC 6455 section 5.2), masked with the all-zero key
    (section 5.3: the payload is then unchanged on the wire)."""
    assert 125 < len(payload) < 65536
    return bytes((0x82, 0x80 | 126)) + len(payload).to_bytes(2, "big") + bytes(4) + payload


async def test_frames_that_arrive_together_go_up_in_one_append(start_call: StartCall) -> None:
    call = await start_call(FakeRealtimeOptions(reply=False))
    caller, rt = await connected(call)
    pcm = speech(200)
    await caller.stream_audio(pcm[:FRAME], realtime=False)  # one frame alone: one append
    first = await rt.wait_for_event("input_audio_buffer.append", timeout=5 * SECOND)
    assert first["audio_bytes"]
    # Four frames in one TCP write: the bridge reads them at once and sends them up together
    # (one resampler block, one append), the audio unchanged and in order.
    ws = caller._ws
    assert ws is not None
    transport = ws._writer.transport
    transport.write(
        b"".join(masked_binary(pcm[i : i + FRAME]) for i in range(FRAME, 5 * FRAME, FRAME))
    )
    combined = await rt.wait_for_event("input_audio_buffer.append", timeout=5 * SECOND)
    assert combined["audio_bytes"] == 4 * FRAME * 3 // 2  # 4 x 20 ms at 24 kHz
    await caller.stream_audio(pcm[5 * FRAME : 6 * FRAME], realtime=False)  # alone again
    last = await rt.wait_for_event("input_audio_buffer.append", timeout=5 * SECOND)
    assert last["audio_bytes"] == FRAME * 3 // 2
    assert rt.append_count == 3
    got = np.frombuffer(bytes(rt.input_audio), dtype=np.int16)
    direct = soxr.resample(np.frombuffer(pcm[: 6 * FRAME], dtype=np.int16), 16_000, 24_000)
    assert snr_db(direct[: len(got)], got) > 30.0
    await caller.hang_up()

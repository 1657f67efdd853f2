"""Recorded calls on loopback: the stereo WAV (caller left, the assistant as heard right),
its timeline, every way a call ends, the download route, and usage and cost in the record."""

from __future__ import annotations

import asyncio
import wave
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from support import SECOND, Call, StartCall
from test_call_records import API_KEY, call_finished, get_json
from test_sip_call import StartSip, post_call, start_sip, wait_task  # noqa: F401 (fixture)
from test_twilio_call import (  # noqa: F401 (fixtures)
    StartTwilio,
    no_live_calls,
    start_twilio,
    twilio_api,
)
from test_twilio_call import speech as mulaw_speech
from test_vonage_call import connected, speech

from vonage_bridge.recording.wav import decode_mulaw
from vonage_bridge.sim.audio import resample_pcm16
from vonage_bridge.sim.realtime import FakeRealtimeOptions, FakeRealtimeSession
from vonage_bridge.sim.vonage import FakeVonageCaller
from vonage_bridge.web.keys import STORE

RATE = 16_000
FRAME_SAMPLES = 320  # 20 ms at 16 kHz


def read_stereo(path: str | Path) -> tuple[int, npt.NDArray[np.int16]]:
    """The WAV's rate and samples as (n, 2); asserts it is stereo PCM16 with a consistent
    header (the data chunk's size is what the file holds)."""
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 2
        assert w.getsampwidth() == 2
        assert w.getcomptype() == "NONE"
        rate, n = w.getframerate(), w.getnframes()
        data = w.readframes(n)
    assert len(data) == n * 4
    assert Path(path).stat().st_size == 44 + n * 4
    return rate, np.frombuffer(data, dtype="<i2").reshape(-1, 2)


def first_nonzero(x: npt.NDArray[np.int16]) -> int:
    nz = np.flatnonzero(x)
    assert len(nz), "no audio at all"
    return int(nz[0])


def correlation(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> float:
    n = min(len(a), len(b))
    return float(np.corrcoef(a[:n].astype(np.float64), b[:n].astype(np.float64))[0, 1])


def best_lag(ref: npt.NDArray[np.int16], channel: npt.NDArray[np.int16]) -> int:
    """Where ``ref`` starts in ``channel`` (FFT cross-correlation)."""
    n = len(channel) + len(ref)
    size = 1 << (n - 1).bit_length()
    spec = np.fft.rfft(channel.astype(np.float64), size) * np.conj(
        np.fft.rfft(ref.astype(np.float64), size)
    )
    xc = np.fft.irfft(spec, size)[: len(channel)]
    return int(np.argmax(xc))


async def recorded_call(call: Call) -> tuple[FakeVonageCaller, FakeRealtimeSession]:
    """A call with a barge-in: 3 s of speech, the echoed reply heard for a while, then 0.8 s
    of speech over it, and the second reply heard in full; then the caller hangs up."""
    caller, rt = await connected(call)
    await caller.stream_audio(speech(3000), realtime=True)
    await caller.stream_silence(900)
    await caller.wait_heard(500 * 32, timeout=10 * SECOND)
    talking = asyncio.create_task(caller.stream_audio(speech(800), realtime=True))
    await rt.wait_for_event("conversation.item.truncate", timeout=5 * SECOND)
    await talking
    await caller.stream_silence(700, realtime=True)  # the burst allowance is spent
    done = await rt.wait_responses_done(2, timeout=10 * SECOND)
    heard_before = len(caller.heard)
    await caller.wait_heard(heard_before + 1, timeout=10 * SECOND)  # the second reply plays
    # ... in full: its bytes all heard (the bridge read its response.done long before)
    second = done[1].total_bytes * 2 // 3  # 24 kHz Realtime audio -> 16 kHz caller audio
    await caller.wait_heard(first_reply_heard(caller) + second - 2 * 640, timeout=10 * SECOND)
    await caller.hang_up()
    await call_finished(call, caller.call_uuid)
    return caller, rt


def first_reply_heard(
    caller: FakeVonageCaller, log: list[tuple[float, int]] | None = None, pause_s: float = 0.1
) -> int:
    """Bytes of the first reply the caller heard (``log``: received) up to its first pause:
    the play log (or the receive log, whose batches come every 120 ms) up to its first gap."""
    log = caller.play_log if log is None else log
    for (t0, n0), (t1, _) in zip(log, log[1:], strict=False):
        if t1 - t0 > pause_s:
            return n0
    return log[-1][1] if log else 0


async def test_recorded_call_is_stereo_aligned_and_cut_at_the_barge_in(
    start_call: StartCall, tmp_path: Path
) -> None:
    call = await start_call(
        RECORD_CALLS="true",
        RECORDINGS_DIR=str(tmp_path),
        CONNECT_API_KEY=API_KEY,
    )
    caller, rt = await recorded_call(call)

    status, record = await get_json(call, f"/calls/{caller.call_uuid}")
    assert status == 200
    rec = record["recording"]
    assert rec["status"] == "complete" and rec["error"] is None
    assert (rec["format"], rec["channels"], rec["rate_hz"]) == ("wav", 2, RATE)
    assert rec["url"] == f"{call.bridge.url}/calls/{caller.call_uuid}/recording"
    path = tmp_path / f"{caller.call_uuid}.wav"
    rate, stereo = read_stereo(path)
    assert rate == RATE
    assert rec["bytes"] == path.stat().st_size
    assert abs(rec["seconds"] - len(stereo) / RATE) < 1e-3
    left, right = stereo[:, 0], stereo[:, 1]

    # left: the caller as received, matching what the fake caller sent
    sent = np.frombuffer(speech(3000), dtype="<i2")
    lag = best_lag(sent, left)
    assert correlation(sent, left[lag:]) > 0.9
    later = np.frombuffer(speech(800), dtype="<i2")
    lag2 = best_lag(later, left[lag + len(sent) :]) + lag + len(sent)
    assert correlation(later, left[lag2:]) > 0.9

    # right: the first reply only as far as the caller heard it, then silence until the next
    heard = np.frombuffer(bytes(caller.heard), dtype="<i2")
    n1 = first_reply_heard(caller) // 2  # samples of the first reply heard
    # the bridge had handed the caller more than that: the clear threw the rest away
    received = first_reply_heard(caller, caller.recv_log, pause_s=0.3) // 2
    assert received > n1 + 2 * FRAME_SAMPLES
    r0 = first_nonzero(right) - first_nonzero(heard)  # where the first reply begins
    assert correlation(heard[:n1], right[r0 : r0 + n1]) > 0.9
    log = caller.play_log
    gap_at = next(i for i in range(len(log) - 1) if log[i + 1][0] - log[i][0] > 0.1)
    second_at = r0 + round((log[gap_at + 1][0] - log[0][0]) * RATE)  # the second reply
    tolerance = FRAME_SAMPLES  # one frame (20 ms)
    assert not right[r0 + n1 + tolerance : second_at - tolerance].any()
    # the second reply, as heard, where the caller heard it (within a frame)
    second = heard[n1:]
    window = right[second_at - 2 * tolerance :]
    found = best_lag(second, window) + second_at - 2 * tolerance
    assert abs(found - second_at) <= tolerance
    assert correlation(second, right[found:]) > 0.9

    # the channels' offset is the call's: caller speech sent -> reply heard, within 20 ms
    # (the speech went out at real time from its start: a frame sent late under load does
    # not move it, as it does not move the recording's caller segment)
    s0 = first_nonzero(sent)
    frames_sent = caller.send_log[: len(sent) // FRAME_SAMPLES]
    speech_began = min(t - 0.020 * (k + 1) for k, (t, _) in enumerate(frames_sent))
    sent_at = speech_began + s0 / RATE
    h0 = first_nonzero(heard)
    heard_at = log[0][0] + h0 / RATE
    recorded_s = (r0 + h0 - (lag + s0)) / RATE
    assert abs(recorded_s - (heard_at - sent_at)) <= 0.020

    # the download: audio/wav with ranges; 404 for a call without a recording
    url = f"{call.bridge.url}/calls/{caller.call_uuid}/recording"
    headers = {"X-API-Key": API_KEY}
    async with call.http.get(url, headers=headers) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "audio/wav"
        assert await resp.read() == path.read_bytes()
    async with call.http.get(url, headers={**headers, "Range": "bytes=40-99"}) as resp:
        assert resp.status == 206
        assert resp.headers["Content-Range"] == f"bytes 40-99/{path.stat().st_size}"
        assert await resp.read() == path.read_bytes()[40:100]
    async with call.http.get(url.replace(caller.call_uuid, "no-such-call"), headers=headers) as r:
        assert r.status == 404
        assert (await r.json())["error"]["code"] == "recording_not_found"
    async with call.http.get(url) as resp:
        assert resp.status == 401


def expected_usage(rt: FakeRealtimeSession) -> dict[str, Any]:
    """The sums of every usage report the fake sent, in the record's shape."""
    t = {"in": 0, "out": 0, "text": 0, "audio": 0, "resp_in": 0, "resp_out": 0}
    r = {"text": 0, "audio": 0, "cached": 0, "c_text": 0, "c_audio": 0, "o_text": 0, "o_audio": 0}
    for event in rt.server_events:
        if event["type"] == "response.done":
            u = event["response"]["usage"]
            d, o = u["input_token_details"], u["output_token_details"]
            t["resp_in"] += u["input_tokens"]
            t["resp_out"] += u["output_tokens"]
            r["text"] += d["text_tokens"]
            r["audio"] += d["audio_tokens"]
            r["cached"] += d["cached_tokens"]
            r["c_text"] += d["cached_tokens_details"]["text_tokens"]
            r["c_audio"] += d["cached_tokens_details"]["audio_tokens"]
            r["o_text"] += o["text_tokens"]
            r["o_audio"] += o["audio_tokens"]
        elif event["type"] == "conversation.item.input_audio_transcription.completed":
            u = event["usage"]
            t["in"] += u["input_tokens"]
            t["out"] += u["output_tokens"]
            t["text"] += u["input_token_details"]["text_tokens"]
            t["audio"] += u["input_token_details"]["audio_tokens"]
    return {
        "input_tokens": t["resp_in"],
        "output_tokens": t["resp_out"],
        "total_tokens": t["resp_in"] + t["resp_out"],
        "input_token_details": {
            "text_tokens": r["text"],
            "audio_tokens": r["audio"],
            "cached_tokens": r["cached"],
            "cached_tokens_details": {"text_tokens": r["c_text"], "audio_tokens": r["c_audio"]},
        },
        "output_token_details": {"text_tokens": r["o_text"], "audio_tokens": r["o_audio"]},
        "transcription": {
            "input_tokens": t["in"],
            "output_tokens": t["out"],
            "input_token_details": {"text_tokens": t["text"], "audio_tokens": t["audio"]},
            "seconds": 0.0,
        },
    }


def expected_cost(u: dict[str, Any]) -> float:
    """gpt-realtime and gpt-4o-mini-transcribe at the built-in prices, USD per 1M tokens."""
    d, c = u["input_token_details"], u["input_token_details"]["cached_tokens_details"]
    o, t = u["output_token_details"], u["transcription"]
    micro = (
        (d["text_tokens"] - c["text_tokens"]) * Decimal("4.00")
        + c["text_tokens"] * Decimal("0.40")
        + (d["audio_tokens"] - c["audio_tokens"]) * Decimal("32.00")
        + c["audio_tokens"] * Decimal("0.40")
        + o["text_tokens"] * Decimal("16.00")
        + o["audio_tokens"] * Decimal("64.00")
        + t["input_token_details"]["text_tokens"] * Decimal("1.25")
        + t["input_token_details"]["audio_tokens"] * Decimal("3.00")
        + t["output_tokens"] * Decimal("5.00")
    )
    return float((micro / 1_000_000).quantize(Decimal("0.000001")))


async def test_record_sums_usage_and_prices_it_exactly(start_call: StartCall) -> None:
    call = await start_call(CONNECT_API_KEY=API_KEY)
    caller, rt = await recorded_call(call)
    reports = [e for e in rt.server_events if e["type"] == "response.done"]
    assert len(reports) == 2  # the cut reply and the second one
    usage = expected_usage(rt)
    assert usage["input_token_details"]["cached_tokens"] > 0  # the second response's prefix
    assert usage["transcription"]["input_tokens"] > 0

    status, record = await get_json(call, f"/calls/{caller.call_uuid}")
    assert status == 200
    assert record["usage"] == usage
    cost = expected_cost(usage)
    assert cost > 0
    assert record["cost_usd"] == cost
    assert record["recording"] is None  # not recorded: RECORD_CALLS is off

    status, page = await get_json(call, f"/calls?min_cost={cost}")
    assert [c["call_uuid"] for c in page["calls"]] == [caller.call_uuid]
    assert page["calls"][0]["cost_usd"] == cost
    assert page["total_cost_usd"] == cost
    status, page = await get_json(call, f"/calls?min_cost={cost + 0.01}")
    assert (page["calls"], page["total_cost_usd"]) == ([], 0.0)
    status, body = await get_json(call, "/calls?min_cost=-1")
    assert (status, body["error"]["code"]) == (400, "invalid_filter")


async def speak_and_hear(caller: FakeVonageCaller, rt: FakeRealtimeSession) -> None:
    await caller.stream_audio(speech(1200), realtime=True)
    await caller.stream_silence(900)
    await rt.wait_responses_done(1, timeout=10 * SECOND)
    await caller.wait_heard(640 * 10, timeout=10 * SECOND)


async def test_call_ended_by_a_realtime_failure_leaves_a_valid_recording(
    start_call: StartCall, tmp_path: Path
) -> None:
    options = FakeRealtimeOptions(reply_realtime_factor=1.0)
    call = await start_call(options, RECORD_CALLS="true", RECORDINGS_DIR=str(tmp_path))
    caller, rt = await connected(call)
    await speak_and_hear(caller, rt)
    await call.fake.close()  # Realtime goes away mid-call
    await caller.wait_closed(timeout=10 * SECOND)
    await call_finished(call, caller.call_uuid)
    _, stereo = read_stereo(tmp_path / f"{caller.call_uuid}.wav")
    assert stereo[:, 0].any() and stereo[:, 1].any()
    assert not list(tmp_path.glob("*.part"))


async def test_call_ended_by_shutdown_leaves_a_valid_recording(
    start_call: StartCall, tmp_path: Path
) -> None:
    options = FakeRealtimeOptions(reply_realtime_factor=1.0)
    call = await start_call(options, RECORD_CALLS="true", RECORDINGS_DIR=str(tmp_path))
    caller, rt = await connected(call)
    await speak_and_hear(caller, rt)
    await call.bridge.close()  # the server stops with the call live
    await caller.wait_closed(timeout=10 * SECOND)
    _, stereo = read_stereo(tmp_path / f"{caller.call_uuid}.wav")
    assert stereo[:, 0].any() and stereo[:, 1].any()


async def test_a_failing_recording_never_stops_the_call(
    start_call: StartCall, tmp_path: Path
) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_bytes(b"")
    call = await start_call(
        RECORD_CALLS="true", RECORDINGS_DIR=str(not_a_folder), CONNECT_API_KEY=API_KEY
    )
    caller, rt = await connected(call)
    await speak_and_hear(caller, rt)  # the reply is heard: the call goes on
    await caller.hang_up()
    await call_finished(call, caller.call_uuid)
    _, record = await get_json(call, f"/calls/{caller.call_uuid}")
    assert "caller hung up" in record["end_reason"]
    rec = record["recording"]
    assert rec["status"] == "failed"
    assert rec["error"] and rec["url"] is None


async def test_twilio_call_is_recorded_at_8_khz_from_mulaw(
    start_twilio: StartTwilio,  # noqa: F811 (fixture)
    tmp_path: Path,
) -> None:
    tw = await start_twilio(RECORD_CALLS="true", RECORDINGS_DIR=str(tmp_path))
    caller, rt = await tw.connected()
    audio = mulaw_speech(1200)
    await caller.stream_audio(audio, realtime=True)
    await caller.stream_silence(900)
    done = await rt.wait_responses_done(1, timeout=10 * SECOND)
    await caller.wait_heard(done[0].total_bytes, timeout=10 * SECOND)
    await caller.hang_up()
    await no_live_calls(tw.call)
    rate, stereo = read_stereo(tmp_path / f"{caller.call_sid}.wav")
    assert rate == 8000
    sent = decode_mulaw(audio)
    lag = best_lag(sent, stereo[:, 0])
    assert correlation(sent, stereo[:, 0][lag:]) > 0.9
    heard = decode_mulaw(bytes(caller.heard))
    r0 = best_lag(heard, stereo[:, 1])
    assert correlation(heard, stereo[:, 1][r0:]) > 0.9


async def test_vonage_call_at_24_khz_is_recorded_at_24_khz(
    start_call: StartCall, tmp_path: Path
) -> None:
    """VONAGE_AUDIO_RATE=24000: the recording is at the caller's rate, both channels."""
    call = await start_call(
        RECORD_CALLS="true", RECORDINGS_DIR=str(tmp_path), VONAGE_AUDIO_RATE="24000"
    )
    caller, rt = await connected(call)
    audio = resample_pcm16(speech(1200), 16_000, 24_000)
    audio = audio[: len(audio) // 960 * 960]
    await caller.stream_audio(audio, realtime=True)
    await caller.stream_silence(900)
    done = await rt.wait_responses_done(1, timeout=10 * SECOND)
    await caller.wait_heard(done[0].total_bytes, timeout=10 * SECOND)
    await caller.hang_up()
    await call_finished(call, caller.call_uuid)
    rate, stereo = read_stereo(tmp_path / f"{caller.call_uuid}.wav")
    assert rate == 24_000
    sent = np.frombuffer(audio, dtype="<i2")
    lag = best_lag(sent, stereo[:, 0])
    assert correlation(sent, stereo[:, 0][lag:]) > 0.99  # as received: the same samples
    heard = np.frombuffer(bytes(caller.heard), dtype="<i2")
    r0 = best_lag(heard, stereo[:, 1])
    assert correlation(heard, stereo[:, 1][r0:]) > 0.9


async def test_sip_call_records_usage_and_says_recording_is_unavailable(
    start_sip: StartSip,  # noqa: F811 (fixture)
) -> None:
    bridge, fake, http = await start_sip(RECORD_CALLS="true")
    await post_call(bridge, http, "rtc_rec", path="/webhook")
    sideband = await fake.wait_for_sideband(5 * SECOND)
    await sideband.next_event(5 * SECOND)  # greeting
    usage = {
        "input_tokens": 1000,
        "output_tokens": 200,
        "input_token_details": {"text_tokens": 1000, "audio_tokens": 0, "cached_tokens": 0},
        "output_token_details": {"text_tokens": 50, "audio_tokens": 150},
    }
    response = {"id": "resp_1", "status": "completed", "output": [], "usage": usage}
    await sideband.send({"type": "response.done", "response": response})
    await sideband.close()
    await wait_task(bridge, "rtc_rec")
    record = await bridge.app[STORE].get("rtc_rec")
    assert record is not None
    assert record.recording is not None
    assert record.recording["status"] == "unavailable"
    assert "openai-sip" in record.recording["error"] and record.recording["url"] is None
    assert record.usage is not None
    assert (record.usage["input_tokens"], record.usage["output_tokens"]) == (1000, 200)
    # gpt-realtime: 1000 text in at 4.00, 50 text out at 16.00, 150 audio out at 64.00 per 1M
    assert record.cost_usd == (4000 + 800 + 9600) / 1e6

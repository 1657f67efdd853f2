"""A Vonage call against a scripted fake Realtime: the bridge must send exactly the client
events the script expects (session.update, audio, the caller's key press, response.create),
and the caller hears the scripted reply."""

from __future__ import annotations

import base64

import numpy as np
from support import SECOND, StartCall
from test_vonage_call import speech

from vonage_bridge.sim.realtime import FakeRealtimeOptions
from vonage_bridge.sim.realtime_script import (
    RealtimeScript,
    RealtimeStep,
    audio_reply,
    session_updated,
)

FRAME = 640  # L16 at 16 kHz, 20 ms
PCM_24K = {"type": "audio/pcm", "rate": 24_000}
REPLY_MS = 400


def tone_24k(ms: int) -> bytes:
    t = np.arange(24 * ms) / 24_000
    return (np.sin(2 * np.pi * 440 * t) * 8_000).astype("<i2").tobytes()


def ga_pcm_session(event: dict[str, object]) -> bool:
    session = event["session"]
    assert isinstance(session, dict)
    audio = session["audio"]
    return bool(
        session["type"] == "realtime"
        and audio["input"]["format"] == PCM_24K
        and audio["output"]["format"] == PCM_24K
        and audio["input"]["turn_detection"]["type"] == "server_vad"
    )


def pcm16_audio(event: dict[str, object]) -> bool:
    audio = event["audio"]
    return isinstance(audio, str) and len(base64.b64decode(audio)) % 2 == 0 < len(audio)


def pressed(digit: str) -> RealtimeStep:
    text = f"The caller pressed {digit}"
    return RealtimeStep(
        "conversation.item.create",
        when=lambda e: e["item"]["content"] == [{"type": "input_text", "text": text}],
        note=text,
    )


async def test_scripted_session_update_audio_and_response_flow(start_call: StartCall) -> None:
    script = RealtimeScript(
        [
            RealtimeStep("session.update", when=ga_pcm_session, emit=session_updated),
            RealtimeStep("input_audio_buffer.append", when=pcm16_audio, note="PCM16 audio"),
            pressed("5"),
            RealtimeStep("response.create", emit=audio_reply(tone_24k(REPLY_MS))),
        ],
        ignore={"input_audio_buffer.append"},
    )
    call = await start_call(FakeRealtimeOptions(script=script))
    caller = call.caller()
    await caller.answer()
    await caller.connect()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    await caller.stream_audio(speech(400), realtime=False)
    await rt.wait_for_event("input_audio_buffer.append", timeout=5 * SECOND)
    await caller.send_dtmf("5")
    await script.wait_done(timeout=5 * SECOND)

    # 400 ms at 24 kHz comes out as 20 frames of 640 bytes at 16 kHz, less the resampler's tail
    await caller.wait_heard((REPLY_MS // 20 - 1) * FRAME, timeout=5 * SECOND)
    assert caller.bad_frames == []
    assert caller.bytes_received % FRAME == 0
    await caller.hang_up()
    await rt.closed.wait()
    script.assert_complete()
    assert [e["type"] for e in rt.server_events if e["type"] == "error"] == []

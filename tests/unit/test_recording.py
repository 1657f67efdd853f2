"""The recording's file format, its timeline (caller left, the assistant as heard right), a
failing writer, and retention. The recorder's writer is a thread: these tests await its
result, never sleep."""

from __future__ import annotations

import io
import os
import time
import wave
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt
import pytest

from vonage_bridge.audio.formats import L16_16K, PCMU_8K, AudioFormat
from vonage_bridge.recording.recorder import CallRecorder, RecordingResult
from vonage_bridge.recording.retention import DAY_S, delete_old_recordings
from vonage_bridge.recording.wav import MULAW_TO_PCM16, decode_mulaw, file_stem, wav_header

RATE = 16_000
FRAME = 320  # samples per 20 ms at 16 kHz


def tone(value: int, frames: int = 1) -> bytes:
    return np.full(FRAME * frames, value, dtype="<i2").tobytes()


def read(path: Path) -> tuple[int, npt.NDArray[np.int16]]:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (2, 2)
        data = w.readframes(w.getnframes())
        return w.getframerate(), np.frombuffer(data, dtype="<i2").reshape(-1, 2)


def recorder(tmp_path: Path, fmt: AudioFormat = L16_16K, **kwargs: Any) -> CallRecorder:
    # a deep queue: the tests feed a whole call at once, faster than the thread writes
    kwargs.setdefault("queue_items", 10_000)
    return CallRecorder(tmp_path, "call-1", fmt, url="http://x/r", now=100.0, **kwargs)


# ------------------------------------------------------------------ format


def test_wav_header_is_read_back_by_the_wave_module() -> None:
    raw = wav_header(8000, 8) + bytes(range(8))
    with wave.open(io.BytesIO(raw), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (
            2,
            2,
            8000,
            2,
        )
    with pytest.raises(ValueError):
        wav_header(8000, 6)  # not whole stereo frames


def test_mulaw_decodes_as_g711() -> None:
    assert MULAW_TO_PCM16[0xFF] == 0 and MULAW_TO_PCM16[0x7F] == 0
    assert MULAW_TO_PCM16[0x00] == -32124 and MULAW_TO_PCM16[0x80] == 32124
    # the segment boundaries of the positive half: 0x8F..0x80 from 0 up in eight segments
    assert list(decode_mulaw(bytes([0xFE, 0xF0, 0xEF, 0xE0]))) == [8, 120, 132, 372]
    # monotone over each half
    assert np.all(np.diff(MULAW_TO_PCM16[0x80:].astype(int)) < 0)


def test_file_stem_keeps_plain_ids_and_hashes_the_rest() -> None:
    assert file_stem("CA0123abc-def_9") == "CA0123abc-def_9"
    for hostile in ("../../etc/passwd", "a/b", "", "x" * 101, "é"):
        stem = file_stem(hostile)
        assert stem.startswith("call-") and len(stem) == 5 + 64
        assert "/" not in stem and ".." not in stem


# ------------------------------------------------------------------ timeline


async def test_channels_follow_the_call_timeline_and_a_barge_in_cuts_the_reply(
    tmp_path: Path,
) -> None:
    rec = recorder(tmp_path)
    t0 = 100.0
    # the caller: 1 s of frames, the first arriving at 0.02 s (so it began at 0)
    for i in range(50):
        rec.caller(tone(1000), t0 + 0.02 * (i + 1))
    # the reply: 6 frames handed at 0.5 s that play 0.5-0.62 s, then 6 more for 0.62-0.74
    rec.played([tone(2000)] * 6, t0 + 0.62, t0 + 0.5)
    rec.played([tone(3000)] * 6, t0 + 0.74, t0 + 0.6)
    rec.cleared(1, t0 + 0.66)  # barge-in at 0.66 s: what plays after it was cleared
    rec.cleared(1, t0 + 0.7)  # the same epoch again: nothing more is cut
    result = await rec.close(t0 + 1.0)

    assert result.status == "complete" and result.error is None
    assert result.path == tmp_path / "call-1.wav" and result.url == "http://x/r"
    rate, audio = read(tmp_path / "call-1.wav")
    assert rate == RATE
    assert result.bytes == 44 + audio.size * 2 == (tmp_path / "call-1.wav").stat().st_size
    assert result.seconds == pytest.approx(len(audio) / RATE)
    left, right = audio[:, 0], audio[:, 1]
    assert (left[: 50 * FRAME] == 1000).all()
    assert not right[: int(0.5 * RATE)].any()
    assert (right[int(0.5 * RATE) : int(0.62 * RATE)] == 2000).all()
    assert (right[int(0.62 * RATE) : int(0.66 * RATE)] == 3000).all()
    assert not right[int(0.66 * RATE) :].any()
    assert not list(tmp_path.glob("*.part"))


async def test_a_long_call_goes_round_the_window_intact(tmp_path: Path) -> None:
    """20 s: the writer's window (a ring of a few seconds) wraps several times."""
    rec = recorder(tmp_path)
    n = 1000
    for i in range(n):
        rec.caller(tone(i % 500 + 1), 100.0 + 0.02 * (i + 1))
        if i % 6 == 0:  # reply audio all along, each batch numbered too
            rec.played([tone(-(i % 500) - 1)] * 6, 100.0 + 0.02 * i + 0.12, 100.0 + 0.02 * i)
    result = await rec.close(100.0 + 0.02 * n)
    assert result.seconds == pytest.approx(20.04)  # the last reply batch plays to 20.04 s
    _, audio = read(tmp_path / "call-1.wav")
    expected = np.repeat(np.arange(n) % 500 + 1, FRAME)
    assert (audio[: n * FRAME, 0] == expected).all() and not audio[n * FRAME :, 0].any()
    batches = np.repeat(-(np.arange(0, n, 6) % 500) - 1, 6 * FRAME)[: n * FRAME]
    assert (audio[: len(batches), 1] == batches).all()


async def test_a_pause_in_the_caller_stream_leaves_silence_and_a_late_read_moves_back(
    tmp_path: Path,
) -> None:
    rec = recorder(tmp_path)
    t0 = 100.0
    for i in range(10):  # 0-0.2 s
        rec.caller(tone(1000), t0 + 0.02 * (i + 1))
    # the stream pauses; at 0.5 s it resumes, but the loop reads the first frame 30 ms late
    rec.caller(tone(2000), t0 + 0.52 + 0.03)
    for i in range(1, 10):  # the others on time
        rec.caller(tone(2000), t0 + 0.52 + 0.02 * i)
    await rec.close(t0 + 1.0)
    _, audio = read(tmp_path / "call-1.wav")
    left = audio[:, 0]
    assert (left[: 10 * FRAME] == 1000).all()
    assert not left[10 * FRAME : int(0.5 * RATE)].any()
    assert (left[int(0.5 * RATE) : int(0.7 * RATE)] == 2000).all()  # back where it began
    assert not left[int(0.7 * RATE) :].any()


async def test_twilio_audio_is_decoded_from_mulaw_at_8_khz(tmp_path: Path) -> None:
    rec = recorder(tmp_path, PCMU_8K)
    for i in range(5):
        rec.caller(bytes([0x80]) * 160, 100.0 + 0.02 * (i + 1))
    rec.played([bytes([0x00]) * 160] * 2, 100.04, 100.0)
    result = await rec.close(100.1)
    assert result.rate_hz == 8000
    rate, audio = read(tmp_path / "call-1.wav")
    assert rate == 8000 and len(audio) == 800  # 0.1 s
    assert (audio[:800, 0] == 32124).all()
    assert (audio[:320, 1] == -32124).all() and not audio[320:, 1].any()


# ------------------------------------------------------------------ failures


class FullDisk(io.BytesIO):
    """A file that takes ``room`` bytes, then fails as a full disk does."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room

    def write(self, data: bytes) -> int:  # type: ignore[override]
        if self.tell() + len(data) > self.room:
            raise OSError(28, "No space left on device")
        return super().write(data)


async def test_a_writer_that_fails_stops_the_recording_not_the_hooks(tmp_path: Path) -> None:
    disk = FullDisk(44 + 4 * RATE // 2)  # half a second of stereo audio

    def opener(path: Path) -> IO[bytes]:
        path.touch()
        return disk

    rec = recorder(tmp_path, opener=opener, queue_items=2)
    for i in range(200):  # 4 s of caller audio: more than the disk takes
        rec.caller(tone(1000), 100.0 + 0.02 * (i + 1))
    rec.played([tone(5)] * 6, 104.2, 104.0)
    rec.cleared(1, 104.1)
    result = await rec.close(105.0)
    assert result.status == "failed"
    assert result.error is not None and "No space left" in result.error
    assert result.to_json()["status"] == "failed"


async def test_a_folder_that_cannot_be_made_fails_the_recording(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    rec = CallRecorder(blocker / "sub", "call-1", L16_16K, url="u", now=0.0)
    rec.caller(tone(1), 0.02)
    result = await rec.close(1.0)
    assert result.status == "failed" and result.error
    assert result.to_json()["url"] is None and result.path is None


def test_unavailable_recording_says_why() -> None:
    body = RecordingResult.unavailable("not on this front door").to_json()
    assert body["status"] == "unavailable" and body["error"] == "not on this front door"
    assert body["url"] is None and body["format"] is None


# ------------------------------------------------------------------ retention


def test_retention_deletes_only_old_recordings(tmp_path: Path) -> None:
    now = time.time()
    old = tmp_path / "old.wav"
    stale = tmp_path / "crashed.wav.part"
    new = tmp_path / "new.wav"
    other = tmp_path / "notes.txt"
    for path in (old, stale, new, other):
        path.write_bytes(b"x")
    for path in (old, stale, other):
        os.utime(path, (now - 31 * DAY_S, now - 31 * DAY_S))
    assert sorted(delete_old_recordings(tmp_path, 30, now)) == sorted([old, stale])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.wav", "notes.txt"]
    assert delete_old_recordings(tmp_path, 0, now + 1000 * DAY_S) == []  # 0: keep forever
    assert delete_old_recordings(tmp_path / "missing", 30, now) == []

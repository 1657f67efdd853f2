"""The README's first command: one simulated call, in real time, through the real app."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vonage_bridge.sim.__main__ import main
from vonage_bridge.sim.audio import resample_pcm16
from vonage_bridge.sim.twilio import mulaw_to_pcm16, read_wav_mulaw
from vonage_bridge.sim.vonage import CALLER_WAV, read_wav_pcm16


def match(heard: bytes, said: bytes) -> float:
    """Correlation of the first half of what was said with the best-aligned part of what
    was heard (PCM16): 1.0 is the same audio."""
    h = np.frombuffer(heard, dtype=np.int16).astype(np.float64)
    s = np.frombuffer(said, dtype=np.int16).astype(np.float64)
    first = s[: len(s) // 2]
    lag = int(np.argmax(np.correlate(h, first, mode="valid")))
    seg = h[lag : lag + len(first)]
    return float(np.dot(seg, first) / np.sqrt(np.dot(seg, seg) * np.dot(first, first) + 1e-9))


def test_simulation_caller_hears_its_own_speech_back(tmp_path: Path) -> None:
    out = tmp_path / "heard.wav"
    assert main(["--quiet", "--out", str(out)]) == 0
    heard, rate = read_wav_pcm16(out)
    said, _ = read_wav_pcm16(CALLER_WAV)
    assert rate == 16_000
    assert abs(len(heard) - len(said)) <= 4 * 640  # the echo is the utterance, whole frames
    # The fake Realtime echoes the caller: after 16k -> 24k -> 16k the speech must still match.
    rho = match(heard, said)
    assert rho > 0.9, f"heard audio does not match the caller's speech (rho={rho:.2f})"


def test_simulation_at_24_khz_passes_the_speech_through_unchanged(tmp_path: Path) -> None:
    """``--vonage-rate 24000``: L16 at Realtime's own rate, no resampling on the bridge, so
    the echo is the caller's 24 kHz speech sample for sample."""
    out = tmp_path / "heard.wav"
    assert main(["--quiet", "--vonage-rate", "24000", "--out", str(out)]) == 0
    heard, rate = read_wav_pcm16(out)
    assert rate == 24_000
    said16, _ = read_wav_pcm16(CALLER_WAV)
    said = resample_pcm16(said16, 16_000, 24_000)
    assert abs(len(heard) - len(said)) <= 4 * 960  # whole 20 ms frames of 960 bytes
    rho = match(heard, said)
    assert rho > 0.99, f"heard audio does not match the caller's speech (rho={rho:.3f})"


def test_twilio_simulation_caller_hears_its_own_mulaw_speech_back(tmp_path: Path) -> None:
    out = tmp_path / "heard.wav"
    assert main(["--quiet", "--front-door", "twilio", "--out", str(out)]) == 0
    heard, rate = read_wav_pcm16(out)
    assert rate == 8_000
    said = mulaw_to_pcm16(read_wav_mulaw(CALLER_WAV))
    assert abs(len(heard) - len(said)) <= 4 * 320  # whole 20 ms frames (decoded to PCM16)
    # mu-law passes through untouched both ways: the echo is the utterance, sample for sample
    rho = match(heard, said)
    assert rho > 0.99, f"heard audio does not match the caller's speech (rho={rho:.3f})"


def test_simulation_refuses_an_unknown_front_door() -> None:
    with pytest.raises(SystemExit):
        main(["--front-door", "plivo"])


def test_simulation_is_answered_by_the_assistant_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--assistant`` binds the dialled number; from ``--assistants-file`` it keeps its
    fields (and the file is loaded at start-up: version 1)."""
    path = tmp_path / "assistants.toml"
    path.write_text('[[assistants]]\nname = "sales"\nvoice = "ash"\n', encoding="utf-8")
    out = tmp_path / "heard.wav"
    argv = ["--quiet", "--out", str(out), "--assistant", "sales", "--assistants-file", str(path)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "assistant                          sales (version 2)" in printed  # + the number


def test_simulation_refuses_an_assistant_it_cannot_bind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--quiet", "--out", str(tmp_path / "x.wav"), "--assistant", "Bad Name"]) == 1
    assert "assistant 'Bad Name'" in capsys.readouterr().err

"""Audio the fake callers send and keep: the caller's recording, WAV files and G.711 mu-law.

Entry ring (I/O): used by the fake callers (``sim/vonage.py``, ``sim/twilio.py``), the
simulation, the tests and the bench, never by the core.

- WAV: mono 16-bit PCM files, read at their own rate and written at a given one;
- mu-law: 8 kHz G.711 mu-law, the audio of Twilio Media Streams, to and from PCM16 (resampled
  with soxr when the PCM is at another rate).

Source: ITU-T G.711 (https://www.itu.int/rec/T-REC-G.711); Twilio Media Streams messages, for
the 8 kHz mu-law payloads (https://www.twilio.com/docs/voice/media-streams/websocket-messages).
"""

from __future__ import annotations

import os
import wave
from pathlib import Path
from typing import Final

import numpy as np
import soxr

from .realtime import MULAW

__all__ = [
    "CALLER_WAV",
    "MULAW_RATE_HZ",
    "MULAW_SILENCE",
    "mulaw_to_pcm16",
    "pcm16_to_mulaw",
    "read_wav_mulaw",
    "read_wav_pcm16",
    "write_wav_mulaw",
    "write_wav_pcm16",
]

CALLER_WAV: Path = Path(__file__).parent / "data" / "caller.wav"
"""Real English speech, 16 kHz mono PCM16, about 3.3 s (see ``data/README.md``)."""

MULAW_RATE_HZ: Final = 8_000
"""Sample rate of G.711 mu-law on the phone network (and of Twilio Media Streams), Hz."""

MULAW_SILENCE: Final = b"\xff"
"""One byte of mu-law digital silence (code 0xFF decodes to 0)."""


# -- WAV -------------------------------------------------------------------------------------


def read_wav_pcm16(path: str | os.PathLike[str]) -> tuple[bytes, int]:
    """Read a mono 16-bit PCM WAV file.

    Args:
        path: the WAV file.

    Returns:
        ``(pcm, sample_rate_hz)``: PCM16 LE samples (bytes) and the sample rate (Hz).

    Raises:
        ValueError: if the file is not a mono 16-bit PCM WAV.
    """
    try:
        with wave.open(os.fspath(path), "rb") as wav:
            if wav.getnchannels() != 1:
                raise ValueError(f"{path}: {wav.getnchannels()} channels, expected mono")
            if wav.getsampwidth() != 2:
                raise ValueError(f"{path}: {8 * wav.getsampwidth()}-bit samples, expected 16")
            return wav.readframes(wav.getnframes()), wav.getframerate()
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"{path}: not a PCM WAV file ({exc})") from exc


def write_wav_pcm16(path: str | os.PathLike[str], pcm: bytes, sample_rate_hz: int) -> None:
    """Write PCM16 LE mono samples as a WAV file.

    Args:
        path: destination file.
        pcm: PCM16 LE mono samples; an even number of bytes.
        sample_rate_hz: sample rate, Hz.

    Raises:
        ValueError: if ``pcm`` has an odd length.
    """
    if len(pcm) % 2:
        raise ValueError(f"PCM16 needs an even number of bytes, got {len(pcm)}")
    with wave.open(os.fspath(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate_hz)
        wav.writeframes(pcm)


def resample_pcm16(pcm: bytes, from_hz: int, to_hz: int) -> bytes:
    """PCM16 LE mono at ``from_hz`` -> the same sound at ``to_hz`` (soxr HQ, whole recording at
    once; for the fakes' recordings, not the bridge's streaming path).

    Args:
        pcm: PCM16 LE mono samples; an even number of bytes.
        from_hz: rate of ``pcm``, Hz. to_hz: rate wanted, Hz.
    Returns:
        PCM16 LE mono at ``to_hz`` (``pcm`` itself when the rates are equal).
    Raises:
        ValueError: if ``pcm`` has an odd length or a rate is not positive.
    """
    if len(pcm) % 2:
        raise ValueError(f"PCM16 needs an even number of bytes, got {len(pcm)}")
    if from_hz <= 0 or to_hz <= 0:
        raise ValueError(f"sample rates must be positive, got {from_hz} and {to_hz}")
    if from_hz == to_hz or not pcm:
        return pcm
    samples = np.frombuffer(pcm, dtype="<i2")
    out = soxr.resample(samples, from_hz, to_hz, quality="HQ")
    return np.asarray(np.clip(np.rint(out), -32768, 32767), dtype="<i2").tobytes()


# -- mu-law ----------------------------------------------------------------------------------


def pcm16_to_mulaw(pcm: bytes, sample_rate_hz: int) -> bytes:
    """PCM16 LE mono at any rate -> 8 kHz G.711 mu-law.

    Args:
        pcm: PCM16 LE mono samples; an even number of bytes.
        sample_rate_hz: rate of ``pcm``, Hz; resampled to 8 kHz with soxr when different.

    Returns:
        mu-law bytes, one per sample at 8 kHz.

    Raises:
        ValueError: if ``pcm`` has an odd length or the rate is not positive.
    """
    if len(pcm) % 2:
        raise ValueError(f"PCM16 needs an even number of bytes, got {len(pcm)}")
    if sample_rate_hz <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate_hz}")
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.int16)
    if sample_rate_hz != MULAW_RATE_HZ and samples.size:
        samples = np.asarray(
            soxr.resample(samples, sample_rate_hz, MULAW_RATE_HZ, quality="HQ"), dtype=np.int16
        )
    return MULAW.encode(samples)


def mulaw_to_pcm16(mulaw: bytes) -> bytes:
    """8 kHz G.711 mu-law -> PCM16 LE mono at 8 kHz (two bytes per input byte)."""
    return bytes(MULAW.decode(mulaw).astype("<i2").tobytes())


def read_wav_mulaw(path: str | os.PathLike[str] = CALLER_WAV) -> bytes:
    """Read a mono PCM16 WAV at any rate as 8 kHz mu-law, ready for a Twilio caller.

    Args:
        path: the WAV file; the project's caller speech (16 kHz) by default.

    Returns:
        mu-law bytes at 8 kHz.

    Raises:
        ValueError: if the file is not a mono 16-bit PCM WAV.
    """
    pcm, rate = read_wav_pcm16(path)
    return pcm16_to_mulaw(pcm, rate)


def write_wav_mulaw(path: str | os.PathLike[str], mulaw: bytes) -> None:
    """Write 8 kHz mu-law as a PCM16 WAV at 8 kHz (decoded, so any player opens it)."""
    write_wav_pcm16(path, mulaw_to_pcm16(mulaw), MULAW_RATE_HZ)

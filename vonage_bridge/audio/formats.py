"""Audio formats and frame arithmetic. Pure: no I/O.

Source: protocols.md A3 [V-WSG] frame-size table; B1 [OAI-SPEC RealtimeAudioFormats].
"""

from __future__ import annotations

from dataclasses import dataclass

FRAME_MS = 20
"""Vonage sends and expects one 20 ms frame per binary WebSocket message. [V-WSG]"""
SAMPLE_BYTES = 2
"""16-bit linear PCM."""


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """A mono 16-bit little-endian PCM format.

    Attributes:
        encoding: ``"l16"`` (Vonage's name) or ``"pcm16"`` (OpenAI's ``audio/pcm``).
        sample_rate_hz: samples per second.
    """

    encoding: str
    sample_rate_hz: int

    def frame_bytes(self, frame_ms: int = FRAME_MS) -> int:
        """Size of one frame in bytes, e.g. 640 for L16 at 16 kHz and 20 ms.

        Raises:
            ValueError: if ``frame_ms`` does not give a whole number of samples.
        """
        samples, rest = divmod(self.sample_rate_hz * frame_ms, 1000)
        if rest:
            raise ValueError(f"{frame_ms} ms is not a whole number of samples")
        return samples * SAMPLE_BYTES

    def bytes_to_ms(self, n_bytes: int) -> float:
        """Duration in ms of ``n_bytes`` of audio in this format."""
        return n_bytes / SAMPLE_BYTES * 1000.0 / self.sample_rate_hz

    def ms_to_bytes(self, ms: float) -> int:
        """Bytes of audio (whole samples) for ``ms`` milliseconds in this format."""
        return int(ms * self.sample_rate_hz / 1000.0) * SAMPLE_BYTES


L16_16K = AudioFormat("l16", 16_000)
"""Vonage WebSocket audio: ``audio/l16;rate=16000``, 640 bytes per 20 ms frame."""
PCM16_24K = AudioFormat("pcm16", 24_000)
"""OpenAI Realtime ``{"type": "audio/pcm", "rate": 24000}``, the only PCM rate it takes."""

"""Audio formats and frame arithmetic. Pure: no I/O.

Vonage sends L16 in 20 ms frames (320/640/960 bytes at 8/16/24 kHz); OpenAI takes
``audio/pcm`` at 24 kHz or ``audio/pcmu``; Twilio sends 8 kHz mu-law, 160 bytes per 20 ms.

Sources: https://developer.vonage.com/en/voice/voice-api/concepts/websockets,
https://platform.openai.com/docs/api-reference/realtime,
https://www.twilio.com/docs/voice/media-streams/websocket-messages
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FRAME_MS = 20
"""Vonage and Twilio both carry 20 ms of audio per media message (see the module sources)."""
SAMPLE_BYTES = 2
"""16-bit linear PCM."""
MULAW_SILENCE = 0xFF
"""G.711 mu-law code for zero amplitude (0x7F is the negative zero)."""


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """A mono audio format: 16-bit little-endian PCM, or 8-bit G.711 mu-law.

    Attributes:
        encoding: ``"l16"`` (Vonage's name), ``"pcm16"`` (OpenAI's ``audio/pcm``) or
            ``"pcmu"`` (G.711 mu-law: Twilio's ``audio/x-mulaw``, OpenAI's ``audio/pcmu``).
        sample_rate_hz: samples per second.
        sample_bytes: bytes per sample (2 for PCM16, 1 for mu-law).
        silence_byte: the byte that encodes silence (0 for PCM, 0xFF for mu-law).
    """

    encoding: str
    sample_rate_hz: int
    sample_bytes: int = SAMPLE_BYTES
    silence_byte: int = 0

    def frame_bytes(self, frame_ms: int = FRAME_MS) -> int:
        """Size of one frame in bytes: 640 for L16 at 16 kHz, 160 for mu-law, at 20 ms.

        Raises:
            ValueError: if ``frame_ms`` does not give a whole number of samples.
        """
        samples, rest = divmod(self.sample_rate_hz * frame_ms, 1000)
        if rest:
            raise ValueError(f"{frame_ms} ms is not a whole number of samples")
        return samples * self.sample_bytes

    @property
    def bytes_per_ms(self) -> float:
        """Bytes of audio per millisecond (48 for PCM16 at 24 kHz, 8 for mu-law)."""
        return self.sample_rate_hz * self.sample_bytes / 1000.0

    def bytes_to_ms(self, n_bytes: int) -> float:
        """Duration in ms of ``n_bytes`` of audio in this format."""
        return n_bytes / self.sample_bytes * 1000.0 / self.sample_rate_hz

    def ms_to_bytes(self, ms: float) -> int:
        """Bytes of audio (whole samples) for ``ms`` milliseconds in this format."""
        return int(ms * self.sample_rate_hz / 1000.0) * self.sample_bytes

    def silence(self, n_bytes: int) -> bytes:
        """``n_bytes`` of silence in this format."""
        return bytes((self.silence_byte,)) * n_bytes


L16_16K = AudioFormat("l16", 16_000)
"""Vonage WebSocket audio: ``audio/l16;rate=16000``, 640 bytes per 20 ms frame."""
PCM16_24K = AudioFormat("pcm16", 24_000)
"""OpenAI Realtime ``{"type": "audio/pcm", "rate": 24000}``, the only PCM rate it takes."""
PCMU_8K = AudioFormat("pcmu", 8_000, sample_bytes=1, silence_byte=MULAW_SILENCE)
"""G.711 mu-law at 8 kHz: Twilio Media Streams ``audio/x-mulaw`` and OpenAI ``audio/pcmu``,
160 bytes per 20 ms frame."""


def realtime_format_json(fmt: AudioFormat) -> dict[str, Any]:
    """The Realtime ``audio.input.format`` / ``audio.output.format`` object for ``fmt``.

    Raises:
        ValueError: OpenAI takes PCM16 at 24 kHz and G.711 at 8 kHz only.
    Source: https://platform.openai.com/docs/api-reference/realtime (audio formats).
    """
    if fmt.encoding == "pcm16" and fmt.sample_rate_hz == 24_000:
        return {"type": "audio/pcm", "rate": 24_000}
    if fmt.encoding == "pcmu" and fmt.sample_rate_hz == 8_000:
        return {"type": "audio/pcmu"}
    raise ValueError(f"OpenAI Realtime has no format for {fmt}")

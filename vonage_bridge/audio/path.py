"""The audio path of one call: caller format <-> Realtime format, one object per call. Pure.

Two kinds, chosen by the front door:

- :class:`ResamplingPath`: Vonage L16 (8/16/24 kHz) <-> OpenAI ``audio/pcm`` at 24 kHz, one
  streaming resampler per direction (``audio.resampler``: a low-delay FIR for ``LQ``, soxr
  for the other qualities), never cleared mid-call (the caller-bound one is replaced at a
  barge-in, whose held audio must not be heard: ``reset_down``).
- :class:`PassthroughPath`: the same bytes both ways, for Twilio's 8 kHz mu-law <-> OpenAI
  ``audio/pcmu`` (no resampling, no transcoding: both ends speak G.711 mu-law at 8 kHz), and
  for Vonage L16 at 24 kHz <-> ``audio/pcm`` at 24 kHz (both 16-bit little-endian mono).

:func:`l16_path` picks Vonage's.

The session (``core/session.py``) sees only this interface, so barge-in, marks and held audio work
the same on every front door.

Sources: https://developer.vonage.com/en/voice/voice-api/concepts/websockets (L16 rates),
https://platform.openai.com/docs/api-reference/realtime (audio formats),
https://www.twilio.com/docs/voice/media-streams/websocket-messages (Twilio mu-law).
"""

from __future__ import annotations

from typing import Protocol

from .formats import PCM16_24K, PCMU_8K, AudioFormat
from .resampler import StreamResampler


class AudioPath(Protocol):
    """Converts one call's audio between the caller's format and the Realtime format.

    Attributes:
        caller: the caller side's format (frames in, frames out).
        realtime: the Realtime session's input and output format.
    """

    caller: AudioFormat
    realtime: AudioFormat

    def up(self, frame: bytes) -> bytes:
        """Caller audio -> Realtime audio (may be empty while a resampler fills)."""
        ...

    def down(self, audio: bytes) -> bytes:
        """Realtime audio -> caller audio (may be empty while a resampler fills)."""
        ...

    def drain_down(self) -> bytes:
        """The caller-bound audio still held inside the path (end of a response)."""
        ...

    def reset_down(self) -> None:
        """Forget the caller-bound audio still held (barge-in: it must not be heard)."""
        ...


class ResamplingPath:
    """L16 at ``caller_rate_hz`` <-> PCM16 at 24 kHz through two streaming resamplers.

    Args:
        caller_rate_hz: Vonage's L16 rate (8000, 16000 or 24000).
        quality: ``RESAMPLE_QUALITY``: ``"LQ"`` (default) the low-delay FIR (1.75 ms held at
            16 kHz), or a soxr recipe ``QQ MQ HQ VHQ`` (see ``audio.resampler``).
    """

    __slots__ = ("caller", "realtime", "_quality", "_up", "_down")

    def __init__(self, caller_rate_hz: int, quality: str = "LQ") -> None:
        self.caller = AudioFormat("l16", caller_rate_hz)
        self.realtime = PCM16_24K
        self._quality = quality
        self._up = StreamResampler(caller_rate_hz, PCM16_24K.sample_rate_hz, quality)
        self._down = StreamResampler(PCM16_24K.sample_rate_hz, caller_rate_hz, quality)

    def up(self, frame: bytes) -> bytes:
        """Raises ValueError on an odd byte count (not PCM16)."""
        return self._up.process(frame)

    def down(self, audio: bytes) -> bytes:
        """Raises ValueError on an odd byte count (not PCM16)."""
        return self._down.process(audio)

    def drain_down(self) -> bytes:
        """See :meth:`AudioPath.drain_down`: the 24 kHz -> caller-rate resampler's tail, PCM16."""
        return self._down.drain()

    def reset_down(self) -> None:
        """See :meth:`AudioPath.reset_down`: a fresh 24 kHz -> caller-rate resampler."""
        rate = self.caller.sample_rate_hz
        self._down = StreamResampler(PCM16_24K.sample_rate_hz, rate, self._quality)


class PassthroughPath:
    """The caller and Realtime speak the same bytes (default: 8 kHz mu-law, Twilio <->
    ``audio/pcmu``): they pass unchanged, nothing is held.

    Args:
        fmt: the caller's format.
        realtime: the Realtime session's, when it has another name for the same bytes
            (Vonage ``l16`` at 24 kHz is ``audio/pcm`` at 24 kHz); default ``fmt``.
    Raises:
        ValueError: if the two formats differ in rate or sample size (not the same bytes).
    """

    __slots__ = ("caller", "realtime")

    def __init__(self, fmt: AudioFormat = PCMU_8K, realtime: AudioFormat | None = None) -> None:
        realtime = fmt if realtime is None else realtime
        if (fmt.sample_rate_hz, fmt.sample_bytes) != (
            realtime.sample_rate_hz,
            realtime.sample_bytes,
        ):
            raise ValueError(f"{fmt} and {realtime} are not the same bytes")
        self.caller = fmt
        self.realtime = realtime

    def up(self, frame: bytes) -> bytes:
        """See :meth:`AudioPath.up`: ``frame`` unchanged."""
        return frame

    def down(self, audio: bytes) -> bytes:
        """See :meth:`AudioPath.down`: ``audio`` unchanged."""
        return audio

    def drain_down(self) -> bytes:
        """See :meth:`AudioPath.drain_down`: always ``b""`` (nothing is held)."""
        return b""

    def reset_down(self) -> None:
        """See :meth:`AudioPath.reset_down`: nothing to forget."""
        pass


def l16_path(rate_hz: int, quality: str = "LQ") -> AudioPath:
    """Vonage's path for L16 at ``rate_hz`` (Hz; 8000, 16000 or 24000): at 24 kHz the frames
    already are Realtime's ``audio/pcm`` (16-bit little-endian mono, 24 kHz) and pass through;
    otherwise :class:`ResamplingPath` with ``quality``.

    Raises:
        ValueError: on a rate that is not positive.
    Sources: https://developer.vonage.com/en/voice/voice-api/concepts/websockets (L16),
    https://platform.openai.com/docs/api-reference/realtime (``audio/pcm``: 24 kHz only).
    """
    if rate_hz == PCM16_24K.sample_rate_hz:
        return PassthroughPath(AudioFormat("l16", rate_hz), PCM16_24K)
    return ResamplingPath(rate_hz, quality)

"""Playout toward the caller: exact frames, bounded look-ahead, underrun accounting. Pure.

Vonage plays each binary message as one 20 ms frame and buffers what we send ahead of time
(about 20 s); Twilio plays the mu-law of each ``media`` message in order (a batch of
frames per message here) and buffers minutes of it. We keep that buffer fed but never
more than ``lookahead_ms`` ahead of the caller's ear: enough to ride out scheduling and
network jitter (a loop running late under load), small enough that a barge-in's ``clear``
has little to throw away.
Frames are sent in batches (wake up when the look-ahead falls to ``lookahead - refill``,
the refill being about half the look-ahead): at the default 240 ms look-ahead a call costs
about 8 timer wake-ups a second (6 frames each; 25 of 2 frames at 100 ms), and the caller
still has 120 ms buffered when the pump wakes, so a loop running late does not starve it.
The caller's heard position comes from its playback acknowledgements (Vonage ``notify``,
Twilio ``mark``, one every 100 ms of audio even inside a large batch), not from this
estimate, so a deeper look-ahead does not blur barge-in.

Time is passed in (seconds on any monotonic clock); nothing here reads a clock.

Sources: https://developer.vonage.com/en/voice/voice-api/concepts/websockets (buffer),
https://www.twilio.com/docs/voice/media-streams/websocket-messages (``media`` messages).
"""

from __future__ import annotations

FRAME_S = 0.020
_EPS = 1e-6
MIN_REFILL_MS = 40


def default_refill_ms(lookahead_ms: int) -> int:
    """The refill for a look-ahead, ms: half of it rounded down to whole 20 ms frames, at
    least :data:`MIN_REFILL_MS` (100 -> 40, 200 -> 100, 240 -> 120, 300 -> 140).

    A deeper look-ahead then buys both a larger margin against a late wake-up (the caller
    still has ``lookahead - refill`` ms buffered when we wake) and fewer, larger batches.
    """
    frame_ms = round(FRAME_S * 1000)
    return max(MIN_REFILL_MS, lookahead_ms // 2 // frame_ms * frame_ms)


class Playout:
    """Audio queued for the caller, cut into exact frames and released at playback pace.

    Args:
        frame_bytes: size of one frame (640 for L16 at 16 kHz, 160 for 8 kHz mu-law).
        lookahead_ms: how far ahead of the caller's playback position we may send.
        refill_ms: how far the look-ahead may fall before we send again; default
            :func:`default_refill_ms` (half the look-ahead in whole frames, at least 40 ms).
        silence_byte: the byte that pads a tail (0 for PCM, 0xFF for mu-law).
    Raises:
        ValueError: ``lookahead_ms`` under two frames (40 ms).
    """

    __slots__ = (
        "_buf",
        "frame_bytes",
        "_silence",
        "_lookahead_s",
        "_low_water_s",
        "_play_until",
        "_in_burst",
        "_ending",
        "frames_out",
        "underruns",
        "padded_bytes",
    )

    def __init__(
        self,
        frame_bytes: int,
        lookahead_ms: int = 100,
        refill_ms: int | None = None,
        *,
        silence_byte: int = 0,
    ) -> None:
        if lookahead_ms < 2 * FRAME_S * 1000:
            raise ValueError("lookahead_ms must cover at least two frames")
        if refill_ms is None:
            refill_ms = default_refill_ms(lookahead_ms)
        self._buf = bytearray()
        self.frame_bytes = frame_bytes
        self._silence = bytes((silence_byte,)) * frame_bytes
        self._lookahead_s = lookahead_ms / 1000.0
        self._low_water_s = max(FRAME_S, (lookahead_ms - refill_ms) / 1000.0)
        self._play_until = 0.0  # when everything sent so far will have been played
        self._in_burst = False  # frames of one continuous stretch of audio are being sent
        self._ending = False  # the current stretch is complete (tail padded)
        self.frames_out = 0
        self.underruns = 0
        self.padded_bytes = 0

    def push(self, pcm: bytes) -> None:
        """Queue PCM16 audio at the caller's rate; any length."""
        self._ending = False  # a new stretch (or more of this one) needs its own end
        self._buf += pcm

    def end_of_audio(self) -> None:
        """The current stretch of audio is complete: pad its tail to a whole frame.

        Vonage drops the call on a short frame, so the tail is padded with silence, never
        sent short.

        Sources: https://developer.vonage.com/en/voice/voice-api/concepts/websockets (exact
        frames), https://github.com/vocodedev/vocode-core/issues/727 (disconnect seen).
        """
        rest = len(self._buf) % self.frame_bytes
        if rest:
            pad = self.frame_bytes - rest
            self._buf += self._silence[:pad]
            self.padded_bytes += pad
        if self._buf:
            self._ending = True
        else:  # everything already went out: the next audio starts a new stretch
            self._in_burst = False

    def clear(self) -> int:
        """Drop everything not yet sent (barge-in, with Vonage's ``clear``): the next audio
        starts playing at once. Returns the bytes dropped."""
        dropped = len(self._buf)
        self._buf.clear()
        self._play_until = 0.0  # Vonage dropped its queue too: the caller hears nothing now
        self._in_burst = False
        self._ending = False
        return dropped

    @property
    def buffered_bytes(self) -> int:
        """Audio queued here and not yet sent, in bytes."""
        return len(self._buf)

    def ahead_s(self, now: float) -> float:
        """Seconds of sent audio the caller has not heard yet (our estimate)."""
        return max(0.0, self._play_until - now)

    def take(self, now: float) -> list[bytes]:
        """Frames to send now: as many as fit in the look-ahead window.

        An underrun is counted when a frame of a stretch that is still streaming goes out
        after the caller's buffer ran dry (a gap the caller hears mid-response).
        """
        fb = self.frame_bytes
        frames: list[bytes] = []
        buf = self._buf
        # A frame goes out only if, once sent, we are at most lookahead ahead (the epsilon
        # absorbs the rounding of summing 0.02 s steps in floating point).
        limit = now + self._lookahead_s + _EPS
        while len(buf) >= fb and max(self._play_until, now) + FRAME_S <= limit:
            if self._play_until < now:
                if self._in_burst:
                    self.underruns += 1
                self._play_until = now
            frames.append(bytes(buf[:fb]))
            del buf[:fb]
            self._play_until += FRAME_S
            self._in_burst = True
        if frames:
            self.frames_out += len(frames)
            if self._ending and not buf:
                self._in_burst = False
                self._ending = False
        return frames

    def wakeup_at(self, now: float) -> float | None:
        """When to call :meth:`take` next, or ``None`` to wait for more audio first."""
        if len(self._buf) < self.frame_bytes:
            return None
        return max(now, self._play_until - self._low_water_s)

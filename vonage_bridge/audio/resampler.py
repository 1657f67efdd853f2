"""One streaming resampler per direction per call. Pure: deterministic computation.

Two engines behind one interface, chosen by the quality name (``RESAMPLE_QUALITY``):

- ``LQ`` (the default): a linear-phase polyphase FIR designed once per rate pair with numpy
  (Kaiser-windowed sinc), applied to each chunk with one matrix product; the only state is the
  input the filter still needs. It holds back half the filter: 1.75 ms at 16 <-> 24 kHz (42
  output samples at 24 kHz, 28 at 16 kHz, measured with 20 ms chunks; at most one more output
  group when a chunk is not a whole number of groups), 3.5-3.6 ms for 8 kHz, 0 at 24 kHz.
- ``QQ MQ HQ VHQ``: soxr's streaming resampler with that recipe, as before. soxr works in
  blocks: ``MQ``/``HQ`` hold back ~21 ms on average (up to 40 ms), ``VHQ`` ~42 ms; ``QQ``
  holds nothing but aliases badly (a 10 kHz tone going 24 -> 16 kHz comes out at -11 dBFS).

The FIR keeps soxr LQ's band edges: flat to 6 kHz (soxr LQ: -0.3 dB there, -3 dB at 6.5 kHz,
-13 dB at 7 kHz; the FIR: -0.0 / -0.4 / -6 dB), stopband from the lower rate's Nyquist
frequency (8 kHz), designed for 110 dB. Measured by bench/resampler_quality.py (20 ms chunks,
against the ideal sine), soxr LQ then the FIR: SNR of a -12 dBFS 1 kHz tone 80 / 86 dB (int16
rounding alone allows ~83-86), alias rejection 24 -> 16 kHz 110 / 124 dB, image rejection
16 -> 24 kHz 113 / 117 dB. soxr LQ held back 11 ms on average and up to 20 ms (a whole 20 ms
frame) at 16 <-> 24 kHz: that was the 20 ms p95 of the caller -> OpenAI delay. The price is
CPU: 7-8 us per 20 ms frame each way against soxr LQ's 5-6 us, mostly numpy's per-call
overhead (six calls a chunk whatever its length), so a block of frames costs less per frame
(16 -> 24 kHz: 10 us for 40 ms, 23 us for a 100 ms delta 24 -> 16 kHz; bench/frames.py).

The stream is never cleared mid-call: clearing throws away the audio it holds (Pipecat lost
50-100 ms mid-word that way). At the end of a response, :meth:`StreamResampler.drain` pushes
the held tail out (the FIR computes it against silence; soxr is fed silence *through* the
stream, and exactly the output that silence produces is discarded), so the next response
starts at the right position with no added gap.

The FIR is bit-exact between two identical streams; soxr output may differ by a few LSB.

Sources: Kaiser window design (https://numpy.org/doc/stable/reference/generated/numpy.kaiser.html,
https://ccrma.stanford.edu/~jos/sasp/Kaiser_Window.html); polyphase resampling
(https://ccrma.stanford.edu/~jos/resample/); python-soxr ``ResampleStream``
(https://python-soxr.readthedocs.io); the Pipecat mid-word drops
https://github.com/pipecat-ai/pipecat/issues/5769.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import numpy.typing as npt
import soxr

_DRAIN_STEP_MS = 10
_DRAIN_MAX_STEPS = 50

FIR_QUALITY = "LQ"
"""The quality name served by the polyphase FIR; every other name goes to soxr."""

_FIR_PASSBAND = 0.75  # passband edge, fraction of the lower rate's Nyquist frequency
_FIR_STOPBAND = 1.0  # stopband edge, same unit: nothing at or above it can alias
_FIR_ATTENUATION_DB = 110.0  # stopband rejection (and passband ripple, ~3e-6)
_FIR_CHUNK_SAMPLES = 2_400  # input buffer sized for 100 ms at 24 kHz; grows if needed

_F32 = np.dtype(np.float32).itemsize
_INT16_MIN = np.float32(-32768.0)  # numpy scalars: a Python float costs a conversion per call
_INT16_MAX = np.float32(32767.0)
_copyto = np.copyto
_dot = np.dot
# the ufunc np.clip wraps (numpy's stubs do not list numpy._core)
_clip: np.ufunc = np._core.umath.clip  # type: ignore[attr-defined]
_rint = np.rint


class _Engine(Protocol):
    def process(self, samples: npt.NDArray[np.int16]) -> bytes:
        """int16 samples at the input rate -> PCM16 bytes at the output rate (may be empty)."""
        ...

    def drain(self) -> bytes:
        """The held tail, PCM16 at the output rate (see :meth:`StreamResampler.drain`)."""
        ...


class StreamResampler:
    """Streaming PCM16 mono resampler, bytes in and bytes out.

    Args:
        in_rate_hz: input sample rate (Hz).
        out_rate_hz: output sample rate (Hz).
        quality: ``LQ`` for the low-delay FIR, or a soxr recipe ``QQ MQ HQ VHQ``.
    Raises:
        ValueError: on a rate that is not positive, or a quality soxr does not know.
    """

    __slots__ = ("in_rate_hz", "out_rate_hz", "_engine")

    def __init__(self, in_rate_hz: int, out_rate_hz: int, quality: str = FIR_QUALITY) -> None:
        if in_rate_hz <= 0 or out_rate_hz <= 0:
            raise ValueError(f"sample rates must be positive: {in_rate_hz} -> {out_rate_hz}")
        self.in_rate_hz = in_rate_hz
        self.out_rate_hz = out_rate_hz
        self._engine: _Engine
        if quality == FIR_QUALITY:
            self._engine = _PolyphaseFir(in_rate_hz, out_rate_hz)
        else:
            self._engine = _SoxrStream(in_rate_hz, out_rate_hz, quality)

    def process(self, pcm: bytes) -> bytes:
        """Resample one chunk; output length varies (the engine holds a tail back).

        Args:
            pcm: PCM16 little-endian mono at ``in_rate_hz``; any even length.
        Returns:
            PCM16 at ``out_rate_hz``; may be empty.
        Raises:
            ValueError: if ``pcm`` has an odd number of bytes.
        """
        if len(pcm) & 1:
            raise ValueError(f"PCM16 chunk of odd length {len(pcm)} bytes")
        return self._engine.process(np.frombuffer(pcm, dtype=np.int16))

    def drain(self) -> bytes:
        """Flush the audio the stream holds without losing any of it.

        Returns:
            The held tail (PCM16 at ``out_rate_hz``), so everything fed so far has come out:
            ``ceil(n * out / in)`` samples in all for the ``n`` input samples fed since the
            previous drain (exactly ``n * out / in`` when that is whole).
        """
        return self._engine.drain()


class _PolyphaseFir:
    """Rational resampler L/M: up by L, Kaiser-windowed sinc, down by M, polyphase.

    Output sample ``k`` is the filter centred on input time ``k * M / L``, so the output is
    not shifted. Outputs come in groups of ``L`` per ``M`` input samples; group ``g`` reads the
    ``K`` input samples from ``g * M + qmin``, and ``Y[g] = W[g] @ H`` with ``H`` (``K x L``)
    the filter's phases. The input lives in a float32 buffer whose first sample is input
    index ``g0 * M + qmin`` (``g0``: the next group); nothing is allocated per chunk except the
    output bytes (and the buffers, when a chunk larger than any before arrives).
    """

    __slots__ = (
        "_l", "_m", "_h", "_k", "_qmin", "_qmax", "_buf", "_view", "_start", "_end",
        "_win", "_y", "_yi", "_fed", "_groups",
    )  # fmt: skip

    def __init__(self, in_rate_hz: int, out_rate_hz: int) -> None:
        g = math.gcd(in_rate_hz, out_rate_hz)
        self._l = out_rate_hz // g
        self._m = in_rate_hz // g
        taps = design_lowpass(in_rate_hz, out_rate_hz)
        self._h, self._qmin, self._qmax = _phase_matrix(taps, self._l, self._m)
        self._k = self._h.shape[0]
        self._buf = np.zeros(0, dtype=np.float32)
        self._view = np.zeros((0, self._k), dtype=np.float32)
        self._win = np.zeros((0, self._k), dtype=np.float32)
        self._y = np.zeros((0, self._l), dtype=np.float32)
        self._yi = np.zeros((0, self._l), dtype=np.int16)
        self._grow(_FIR_CHUNK_SAMPLES)
        self._start = 0
        self._end = 0
        self._fed = 0  # real input samples since the last drain
        self._groups = 0  # output groups produced since the last drain
        self._restart()

    def _restart(self) -> None:
        """Fresh stretch: silence before it, nothing fed."""
        self._buf[: -self._qmin] = 0.0
        self._start = 0
        self._end = -self._qmin
        self._fed = 0
        self._groups = 0

    def _grow(self, chunk: int) -> None:
        """Size the buffers for chunks of up to ``chunk`` input samples (allocates).

        What is held between chunks is under ``K + M`` samples, so half the buffer takes a
        chunk of this size with what is held and the filter's reach: a stream of such chunks
        compacts now and then (a copy of what is held) and never grows again."""
        k, m = self._k, self._m
        cap = 2 * (chunk + 2 * (k + m))
        buf = np.zeros(cap, dtype=np.float32)
        held = self._buf[self._start : self._end] if len(self._buf) else self._buf
        buf[: len(held)] = held
        self._end = len(held) if len(self._buf) else 0
        self._start = 0
        self._buf = buf
        rows = (cap - k) // m + 1
        self._view = np.lib.stride_tricks.as_strided(
            buf, shape=(rows, k), strides=(m * _F32, _F32), writeable=False
        )
        groups = (chunk + k) // m + 1
        self._win = np.empty((groups, k), dtype=np.float32)
        self._y = np.empty((groups, self._l), dtype=np.float32)
        self._yi = np.empty((groups, self._l), dtype=np.int16)

    def _append(self, samples: npt.NDArray[np.generic], zeros: int = 0) -> None:
        n = len(samples) + zeros
        if self._end + n > len(self._buf):
            held = self._end - self._start
            if held + n + self._k > len(self._buf) // 2:
                self._grow(max(n, _FIR_CHUNK_SAMPLES))
            else:  # compact: keep what the next groups need at the front (start stays % M)
                self._buf[:held] = self._buf[self._start : self._end]
                self._start, self._end = 0, held
        end = self._end + len(samples)
        np.copyto(self._buf[self._end : end], samples, casting="unsafe")
        if zeros:
            self._buf[end : end + zeros] = 0.0
        self._end = end + zeros

    def _run(self, groups: int) -> npt.NDArray[np.int16]:
        """Compute ``groups`` output groups from the buffer's front; returns a view.

        Six numpy calls whatever the block's size (the per-call overhead is most of the cost
        at 20 ms): gather the windows, one matrix product, clip, round, convert."""
        if groups > len(self._win):  # the input these groups read: sized for it at once
            self._grow(groups * self._m + self._k)
        row = self._start // self._m
        win, y, yi = self._win[:groups], self._y[:groups], self._yi[:groups]
        _copyto(win, self._view[row : row + groups])
        _dot(win, self._h, out=y)  # np.dot: less call overhead than np.matmul here
        _clip(y, _INT16_MIN, _INT16_MAX, out=y)  # the ufunc: np.clip's wrapper costs ~2 us
        _rint(y, out=y)  # round half to even (exact in float32 below 2**24)
        _copyto(yi, y, casting="unsafe")  # whole numbers in range: exact
        self._start += groups * self._m
        self._groups += groups
        return yi.reshape(-1)

    def process(self, samples: npt.NDArray[np.int16]) -> bytes:
        """See :meth:`StreamResampler.process`: the whole groups the input now allows."""
        n = len(samples)
        self._fed += n
        end = self._end + n
        if end <= len(self._buf):  # the usual case: room after what is held
            _copyto(self._buf[self._end : end], samples, casting="unsafe")
            self._end = end
        else:
            self._append(samples)
        groups = (self._end - self._start - self._k) // self._m + 1
        if groups <= 0:
            return b""
        return self._run(groups).tobytes()

    def drain(self) -> bytes:
        """See :meth:`StreamResampler.drain`: the tail computed against silence; then a fresh
        stretch."""
        # Outputs whose centre lies before the end of the real input: k * M / L < fed.
        total = -(-self._fed * self._l // self._m)
        wanted = total - self._groups * self._l
        if wanted <= 0:
            self._restart()
            return b""
        groups = -(-wanted // self._l)
        need = (groups - 1) * self._m + self._k - (self._end - self._start)
        if need > 0:
            self._append(self._buf[:0], zeros=need)  # silence after the real input
        out = self._run(groups)[:wanted].tobytes()
        self._restart()  # the held tail is out; the next stretch starts after silence
        return out


def design_lowpass(in_rate_hz: int, out_rate_hz: int) -> npt.NDArray[np.float64]:
    """The FIR's prototype lowpass, at ``L * in_rate_hz`` (the common rate), gain ``L``.

    Kaiser-windowed sinc: passband to 0.75 and stopband from 1.0 of the lower rate's Nyquist
    frequency, 110 dB; odd length, symmetric (linear phase, delay ``(len - 1) / 2``).

    Returns:
        The taps (float64); ``[1.0]`` when the rates are equal.
    """
    g = math.gcd(in_rate_hz, out_rate_hz)
    up = out_rate_hz // g
    if in_rate_hz == out_rate_hz:
        return np.ones(1)
    common = in_rate_hz * up
    nyquist = min(in_rate_hz, out_rate_hz) / 2
    f_pass, f_stop = _FIR_PASSBAND * nyquist, _FIR_STOPBAND * nyquist
    width = 2 * math.pi * (f_stop - f_pass) / common  # rad/sample
    a = _FIR_ATTENUATION_DB
    n = int(math.ceil((a - 7.95) / (2.285 * width))) | 1
    beta = 0.1102 * (a - 8.7)
    cutoff = (f_pass + f_stop) / 2 / common  # cycles/sample
    t = np.arange(n) - (n - 1) / 2
    taps: npt.NDArray[np.float64] = 2 * cutoff * np.sinc(2 * cutoff * t) * np.kaiser(n, beta)
    return taps * up


def _phase_matrix(
    taps: npt.NDArray[np.float64], up: int, down: int
) -> tuple[npt.NDArray[np.float32], int, int]:
    """``H`` (``K x L``): ``H[q - qmin, p] = taps[p*M + D - q*L]``, output ``g*L + p`` being
    ``sum_q x[g*M + q] * H[q - qmin, p]``; and ``qmin``, ``qmax`` (input offsets)."""
    n = len(taps)
    centre = (n - 1) // 2
    qmin = min(-((n - 1 - p * down - centre) // up) for p in range(up))
    qmax = max((p * down + centre) // up for p in range(up))
    h = np.zeros((qmax - qmin + 1, up), dtype=np.float64)
    for p in range(up):
        for q in range(qmin, qmax + 1):
            i = p * down + centre - q * up
            if 0 <= i < n:
                h[q - qmin, p] = taps[i]
    return h.astype(np.float32), qmin, qmax


class _SoxrStream:
    """soxr ``ResampleStream`` (int16) with a drain that never clears the stream."""

    __slots__ = ("_stream", "_ratio", "_in_rate", "_in", "_out", "_discard_to")

    def __init__(self, in_rate_hz: int, out_rate_hz: int, quality: str) -> None:
        self._stream = soxr.ResampleStream(
            in_rate_hz, out_rate_hz, 1, dtype="int16", quality=quality
        )
        self._in_rate = in_rate_hz
        self._ratio = out_rate_hz / in_rate_hz
        self._in = 0  # input samples fed, silence from drain() included
        self._out = 0  # output samples produced by soxr, discarded ones included
        self._discard_to = 0  # output samples before this index are drain silence

    def process(self, samples: npt.NDArray[np.int16]) -> bytes:
        """See :meth:`StreamResampler.process`, minus output owed to an earlier drain's silence."""
        out = self._stream.resample_chunk(samples)
        self._in += len(samples)
        return self._emit(out)

    def drain(self) -> bytes:
        """See :meth:`StreamResampler.drain`: silence fed in 10 ms steps (at most 50).

        Returns the output up to ``round(fed * out / in)`` samples; what the silence produces
        beyond that is discarded, now and in later :meth:`process` calls.
        """
        target = round(self._in * self._ratio)
        step = np.zeros(self._in_rate * _DRAIN_STEP_MS // 1000, dtype=np.int16)
        parts: list[bytes] = []
        for _ in range(_DRAIN_MAX_STEPS):
            if self._out >= target:
                break
            before = self._out
            out = self._stream.resample_chunk(step)
            self._in += len(step)
            self._out += len(out)
            # keep [before, target) but never output of silence fed by an earlier drain
            start = max(0, self._discard_to - before)
            stop = max(0, min(len(out), target - before))
            if stop > start:
                parts.append(out[start:stop].tobytes())
        # Everything produced from the silence we fed is discarded, now and later.
        self._discard_to = round(self._in * self._ratio)
        return b"".join(parts)

    def _emit(self, out: npt.NDArray[np.int16]) -> bytes:
        start = self._out
        self._out += len(out)
        if start >= self._discard_to:
            return out.tobytes()
        skip = min(len(out), self._discard_to - start)
        return out[skip:].tobytes()

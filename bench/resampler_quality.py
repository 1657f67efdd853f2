"""Resampler quality, held-back delay and cost: the bridge's StreamResampler against soxr LQ.

Every signal goes through the streaming path the way a call feeds it (20 ms chunks, then a
drain) and is compared with the ideal: the same sine evaluated at the output sample times
(float, not rounded). Printed, never asserted.

- **SNR**: tones at -12 dBFS (300 Hz, 1 kHz, 3 kHz) and a linear sweep 50 Hz -> 5 kHz over
  2 s, against the ideal; 100 ms cut at each end. int16 rounding of input and output alone
  limits this to about 83 dB at -12 dBFS.
- **passband**: gain at 5, 6, 6.5, 7 kHz (least-squares fit of the output to a sine at the
  tone's frequency).
- **alias rejection** (24 -> 16 kHz): tones at -0.8 dBFS from 8.5 to 11.5 kHz (+37 Hz, so that
  int16 rounding harmonics do not land on the measured frequency); the level of what comes
  out at the alias frequency ``16 kHz - f``, relative to the tone; worst case ("all 0": every
  output sample was 0, the alias is under half an LSB).
  **image rejection** (16 -> 24 kHz): tones from 0.5 to 6 kHz (+37 Hz); the level of the image at
  ``16 kHz - f``; worst case (and at 7 kHz, inside the transition band).
- **held back**: after each 20 ms chunk, input fed so far (at the output rate) minus output
  produced, in output samples and ms; mean and max over 2 s of chunks.
- **µs per 20 ms frame**: ``process`` on Gaussian noise (3000 rms), each engine timed in turn
  (interleaved rounds, median of the rounds' per-frame means).

    .venv/bin/python bench/resampler_quality.py            # ~10 s
    .venv/bin/python bench/resampler_quality.py --rounds 21

"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import soxr

from vonage_bridge.audio.resampler import StreamResampler

Floats = npt.NDArray[np.float64]
CHUNK_MS = 20
EDGE_S = 0.1


class SoxrLQ:
    """soxr LQ streaming as the bridge used it before (int16 stream, 20 ms chunks)."""

    def __init__(self, in_rate: int, out_rate: int, quality: str = "LQ") -> None:
        self._s = soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16", quality=quality)

    def process(self, pcm: bytes) -> bytes:
        out: npt.NDArray[np.int16] = self._s.resample_chunk(np.frombuffer(pcm, np.int16))
        return out.tobytes()

    def drain(self) -> bytes:
        out: npt.NDArray[np.int16] = self._s.resample_chunk(np.zeros(0, np.int16), last=True)
        return out.tobytes()


Engine = StreamResampler | SoxrLQ
ENGINES: dict[str, Callable[[int, int], Engine]] = {
    "soxr LQ (before)": SoxrLQ,
    "FIR LQ (now)": lambda i, o: StreamResampler(i, o, "LQ"),
}


def run(
    make: Callable[[int, int], Engine], x: npt.NDArray[np.int16], fin: int, fout: int
) -> Floats:
    r = make(fin, fout)
    step = fin * CHUNK_MS // 1000
    parts = [r.process(x[i : i + step].tobytes()) for i in range(0, len(x), step)]
    parts.append(r.drain())
    return np.frombuffer(b"".join(parts), np.int16).astype(np.float64)


def sine(f: float, rate: int, n: int, amp: float) -> Floats:
    return amp * np.sin(2 * np.pi * f * np.arange(n) / rate)


def middle(y: Floats, rate: int) -> slice:
    return slice(int(EDGE_S * rate), len(y) - int(EDGE_S * rate))


def snr_db(ref: Floats, got: Floats) -> float:
    return float(10 * np.log10(np.sum(ref**2) / max(float(np.sum((got - ref) ** 2)), 1e-12)))


def level_db(y: Floats, rate: int, f: float, amp: float, also: float | None = None) -> float:
    """Amplitude of the component of ``y`` at ``f`` (least squares), dB relative to ``amp``.

    ``also``: a frequency fitted jointly (the tone itself when measuring its image), so that
    its leakage over a window of a non-whole number of periods does not count as ``f``.
    """
    t = np.arange(len(y)) / rate
    freqs = [f] if also is None else [f, also]
    basis = np.stack([fn(2 * np.pi * g * t) for g in freqs for fn in (np.sin, np.cos)], axis=1)
    coef = np.linalg.lstsq(basis, y, rcond=None)[0]
    return float(20 * np.log10(max(float(np.hypot(coef[0], coef[1])), 1e-9) / amp))


@dataclass(slots=True)
class Quality:
    snr: dict[str, float]
    passband: dict[float, float]
    rejection: float  # worst alias (down) or image (up), dB
    rejection_7k: float | None  # up only: image of a 7 kHz tone
    held_mean: float  # output samples
    held_max: float
    silent: bool  # every alias tone came out as exact zeros


def measure(make: Callable[[int, int], Engine], fin: int, fout: int) -> Quality:
    secs = 1.0
    n = int(fin * secs)
    snr: dict[str, float] = {}
    for f in (300.0, 1000.0, 3000.0):
        x = np.rint(sine(f, fin, n, 8000)).astype(np.int16)
        y = run(make, x, fin, fout)
        ideal = sine(f, fout, len(y), 8000)
        s = middle(y, fout)
        snr[f"{f / 1000:g} kHz"] = snr_db(ideal[s], y[s])
    # linear sweep 50 Hz -> 5 kHz over 2 s
    dur, f0, f1 = 2.0, 50.0, 5000.0

    def chirp(rate: int, m: int) -> Floats:
        t = np.arange(m) / rate
        return 8000 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) / (2 * dur) * t**2))

    x = np.rint(chirp(fin, int(fin * dur))).astype(np.int16)
    y = run(make, x, fin, fout)
    s = middle(y, fout)
    snr["sweep"] = snr_db(chirp(fout, len(y))[s], y[s])

    passband: dict[float, float] = {}
    for f in (5000.0, 6000.0, 6500.0, 7000.0):
        x = np.rint(sine(f, fin, n, 8000)).astype(np.int16)
        y = run(make, x, fin, fout)
        passband[f] = level_db(y[middle(y, fout)], fout, f, 8000)

    amp = 30000.0
    worst = -999.0
    silent = True  # the output was all zeros (below half an LSB) for every alias tone
    at_7k: float | None = None
    if fin > fout:  # aliases: tones above the output's Nyquist fold to fout - f
        for f in np.arange(8500.0, 11501.0, 500.0) + 37.0:  # + 37 Hz: rounding harmonics elsewhere
            x = np.rint(sine(f, fin, n, amp)).astype(np.int16)
            y = run(make, x, fin, fout)
            worst = max(worst, level_db(y[middle(y, fout)], fout, fout - f, amp))
            silent = silent and not y.any()
    else:  # images: a tone f at 16 kHz appears at 16 kHz - f at 24 kHz
        for f in np.arange(500.0, 6001.0, 500.0) + 37.0:
            x = np.rint(sine(f, fin, n, amp)).astype(np.int16)
            y = run(make, x, fin, fout)
            worst = max(worst, level_db(y[middle(y, fout)], fout, fin - f, amp, f))
        x = np.rint(sine(7000.0, fin, n, amp)).astype(np.int16)
        y = run(make, x, fin, fout)
        at_7k = level_db(y[middle(y, fout)], fout, fin - 7000.0, amp, 7000.0)

    r = make(fin, fout)
    step = fin * CHUNK_MS // 1000
    rng = np.random.default_rng(1)
    noise = np.clip(rng.normal(0, 3000, 2 * fin), -32768, 32767).astype(np.int16)
    held: list[float] = []
    produced = 0
    for i in range(0, len(noise), step):
        produced += len(r.process(noise[i : i + step].tobytes())) // 2
        held.append((i + step) * fout / fin - produced)
    if fin < fout:
        silent = False
    return Quality(snr, passband, worst, at_7k, statistics.fmean(held), max(held), silent)


def cost_us(
    makers: dict[str, Callable[[int, int], Engine]], fin: int, fout: int, rounds: int
) -> dict[str, float]:
    step = fin * CHUNK_MS // 1000
    rng = np.random.default_rng(2)
    pcm = np.clip(rng.normal(0, 3000, fin), -32768, 32767).astype(np.int16).tobytes()
    chunks = [pcm[i : i + 2 * step] for i in range(0, len(pcm), 2 * step)] * 4
    per: dict[str, list[float]] = {name: [] for name in makers}
    for k in range(rounds):
        order = list(makers) if k % 2 == 0 else list(reversed(makers))
        for name in order:
            r = makers[name](fin, fout)
            p = r.process
            t0 = time.perf_counter_ns()
            for c in chunks:
                p(c)
            per[name].append((time.perf_counter_ns() - t0) / len(chunks) / 1000)
    return {name: statistics.median(v) for name, v in per.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--rounds", type=int, default=11, help="timing rounds (interleaved)")
    args = ap.parse_args()
    print(f"bench/resampler_quality.py: soxr {soxr.__version__}, numpy {np.__version__}")
    print(f"signals fed in {CHUNK_MS} ms chunks, then drained; compared with the ideal sine\n")
    for fin, fout in ((16_000, 24_000), (24_000, 16_000)):
        print(f"{fin // 1000}k -> {fout // 1000}k")
        rows = {name: measure(make, fin, fout) for name, make in ENGINES.items()}
        us = cost_us(ENGINES, fin, fout, args.rounds)
        first = next(iter(rows.values()))
        heads = [*first.snr, *(f"{f / 1000:g}k dB" for f in first.passband)]
        rej = "alias rej dB" if fin > fout else "image rej dB (7k)"
        print(
            f"  {'engine':<18}"
            + "".join(f"{h:>9}" for h in heads)
            + f"  {rej:>18}  held mean/max samples (ms)  us/frame"
        )
        for name, q in rows.items():
            cells = [*q.snr.values(), *q.passband.values()]
            r7 = "" if q.rejection_7k is None else f" ({-q.rejection_7k:.0f})"
            rej_text = "all 0 (>110)" if q.silent else f"{-q.rejection:.0f}{r7}"
            held_ms = q.held_mean / fout * 1000, q.held_max / fout * 1000
            print(
                f"  {name:<18}"
                + "".join(f"{c:9.1f}" for c in cells)
                + f"  {rej_text:>18}"
                + f"  {q.held_mean:6.1f} / {q.held_max:5.0f}"
                + f" ({held_ms[0]:4.1f} / {held_ms[1]:4.1f})"
                + f"  {us[name]:8.1f}"
            )
        print()
    print(
        "SNR columns: dB against the ideal (tones at -12 dBFS; sweep 50 Hz -> 5 kHz); kHz dB:"
        " passband gain;\nrejection: worst alias (24k->16k, tones 8.5-11.5 kHz) or image"
        " (16k->24k, tones 0.5-6 kHz; 7 kHz in brackets),\nin dB below a -0.8 dBFS tone;"
        " held: input fed (at the output rate) minus output, after each 20 ms chunk;\n"
        f"us/frame: process() per 20 ms chunk, median of {args.rounds} interleaved rounds."
    )


if __name__ == "__main__":
    main()

"""CPU cost of call recording alone: N recorders fed at real time, against the same feeding
loop without them. Figures are printed, never asserted.

Run: ``.venv/bin/python bench/recording_cost.py --calls 20 --seconds 8 --rounds 3``.

Each call gets a :class:`~vonage_bridge.recording.recorder.CallRecorder` (L16 at 16 kHz, the
Vonage case) fed what the call engine feeds it: a caller frame every 20 ms and a batch of 6
reply frames every 120 ms (the playout's default refill), on the event loop's clock; the
writer thread writes the WAVs to a temporary folder. The process's CPU time (all threads:
``time.process_time``) is measured over the run, with recorders and without (the same loop,
the hooks not called), in alternating rounds; the difference per call-second is what
recording costs. ``bench/load.py --alt-env RECORD_CALLS=true`` measures it in the whole
bridge, where the machine's noise is larger than this difference.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from vonage_bridge.audio.formats import L16_16K
from vonage_bridge.recording.recorder import CallRecorder

FRAME_S = 0.020
REFILL_FRAMES = 6


async def feed(calls: int, seconds: float, record: bool, folder: Path) -> float:
    """CPU ms per call-second of feeding ``calls`` calls for ``seconds`` (with recorders
    when ``record``)."""
    loop = asyncio.get_running_loop()
    frame = (np.sin(np.arange(320) / 5) * 8000).astype("<i2").tobytes()
    t0 = loop.time()
    recorders = [CallRecorder(folder, f"bench-{k}", L16_16K, url="", now=t0) for k in range(calls)]
    if not record:
        for rec in recorders:  # the writer is told at once that nothing will come
            await rec.close(t0)
        recorders = []
    started = time.process_time()
    n = int(seconds / FRAME_S)
    for i in range(n):
        await asyncio.sleep(max(0.0, t0 + (i + 1) * FRAME_S - loop.time()))
        now = loop.time()
        for rec in recorders:
            rec.caller(frame, now)
            if i % REFILL_FRAMES == 0:
                rec.played([frame] * REFILL_FRAMES, now + REFILL_FRAMES * FRAME_S, now)
    for rec in recorders:
        result = await rec.close()
        assert result.status == "complete", result.error
    return (time.process_time() - started) * 1000.0 / (calls * seconds)


async def main(calls: int, seconds: float, rounds: int) -> None:
    extra: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            off = await feed(calls, seconds, False, Path(tmp))
            on = await feed(calls, seconds, True, Path(tmp))
            extra.append(on - off)
            print(
                f"round {r + 1}: {calls} calls, {seconds:g} s: without {off:.3f}, with "
                f"{on:.3f} ms CPU per call-second: recording {on - off:+.3f}"
            )
    print(f"recording costs {statistics.median(extra):+.3f} ms CPU per call-second (median)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.seconds, args.rounds))

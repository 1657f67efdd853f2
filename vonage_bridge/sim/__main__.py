"""``python -m vonage_bridge.sim``: a whole call on 127.0.0.1 with no accounts.

Starts the bridge, a fake OpenAI Realtime server and a fake Vonage caller (or, with
``--front-door twilio``, a fake Twilio caller and Twilio REST API); the caller dials in, speaks
a real recording in real time, and hears the assistant's reply (the fake Realtime plays the
caller's words back). Writes what the caller heard to a WAV and prints the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from ..logs import setup_logging
from .audio import CALLER_WAV
from .call import FRONT_DOORS, simulate_call


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vonage-bridge-sim", description="Simulate one phone call through the bridge."
    )
    parser.add_argument(
        "--front-door",
        choices=FRONT_DOORS,
        default="vonage",
        help="Vonage (L16 16 kHz, resampled) or Twilio (8 kHz mu-law, passed through)",
    )
    parser.add_argument("--wav", type=Path, default=CALLER_WAV, help="caller speech, 16 kHz")
    parser.add_argument(
        "--out", type=Path, default=Path("sim-output.wav"), help="what the caller heard"
    )
    parser.add_argument(
        "--quiet", action="store_true", help="show only the call's transcript and summary lines"
    )
    args = parser.parse_args(argv)
    setup_logging("WARNING" if args.quiet else "INFO", "text")
    try:
        report = asyncio.run(simulate_call(args.wav, out_wav=args.out, front_door=args.front_door))
    except (ValueError, TimeoutError, OSError) as exc:
        print(f"simulation failed: {exc!r}", file=sys.stderr)
        return 1
    print("\n--- simulated call ---")
    for line in report.lines():
        print(line)
    print(f"what the caller heard: {args.out}")
    ok = report.bad_frames == 0 and report.reply_heard_ms > 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

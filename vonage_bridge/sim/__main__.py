"""``python -m vonage_bridge.sim``: a whole call on 127.0.0.1 with no accounts.

``vonage-bridge-sim serve`` runs the fakes alone, by hand, and ``vonage-bridge-sim call
--url ...`` places a call against a running bridge (``serve.py``).

Starts the bridge, a fake OpenAI Realtime server and a fake Vonage caller (or, with
``--front-door twilio``, a fake Twilio caller and Twilio REST API); the caller dials in, speaks
a real recording in real time, and hears the assistant's reply (the fake Realtime plays the
caller's words back). Writes what the caller heard to a WAV and prints the figures.

``--slow-realtime-ms N`` makes the fake Realtime take N ms to accept the socket and N ms more
to answer ``session.update``; the report's "first reply" line says how much of the caller's
speech was held waiting for it (none when the answer URL's warm session was ready before
the greeting ended; ``--no-prewarm`` shows the media socket opening it instead).

                assistant=args.assistant,
                env_overrides=env or None,
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from ..errors import ConfigError
from ..logs import setup_logging
from .audio import CALLER_WAV
from .call import FRONT_DOORS, simulate_call
from .console import serve_console
from .realtime import FakeRealtimeOptions
from .serve import call_main, serve_main

GREETING_MS = 3000.0
"""The default greeting ("Hello! You are connected to our assistant. Please go ahead.") takes
about this long to say."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        return serve_main(argv[1:])
    if argv[:1] == ["call"]:
        return call_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="vonage-bridge-sim",
        description="Simulate one phone call through the bridge. Also: `vonage-bridge-sim "
        "serve` (the fakes alone) and `vonage-bridge-sim call --url ...`.",
    )
    parser.add_argument(
        "--front-door",
        choices=FRONT_DOORS,
        default="vonage",
        help="Vonage (L16 16 kHz, resampled) or Twilio (8 kHz mu-law, passed through)",
    )
    parser.add_argument(
        "--vonage-rate",
        type=int,
        choices=(16_000, 24_000),
        default=16_000,
        help="VONAGE_AUDIO_RATE: L16 at 16 kHz (resampled) or 24 kHz (passed through)",
    )
    parser.add_argument("--wav", type=Path, default=CALLER_WAV, help="caller speech, 16 kHz")
    parser.add_argument(
        "--out", type=Path, default=Path("sim-output.wav"), help="what the caller heard"
    )
    parser.add_argument(
        "--slow-realtime-ms",
        type=float,
        default=0.0,
        metavar="N",
        help="the fake Realtime takes N ms to open and N ms more to answer session.update",
    )
    parser.add_argument(
        "--greeting-ms",
        type=float,
        default=GREETING_MS,
        metavar="N",
        help="the carrier plays the greeting for N ms before opening the media socket",
    )
    parser.add_argument(
        "--no-prewarm",
        action="store_true",
        help="open the Realtime session when the media socket arrives, not at the answer URL",
    )
    parser.add_argument(
        "--assistant",
        metavar="NAME",
        help="the assistant that answers (bound to the dialled number; made from the default "
        "if the bridge has none of that name)",
    )
    parser.add_argument(
        "--assistants-file",
        type=Path,
        metavar="FILE",
        help="TOML or JSON assistants loaded at start-up (ASSISTANTS_FILE)",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="show only the call's transcript and summary lines"
    )
    parser.add_argument(
        "--console",
        action="store_true",
        help="then keep the server running with its operator console (sim/console.py)",
    )
    parser.add_argument(
        "--console-port", type=int, default=8080, metavar="PORT", help="default 8080"
    )
    args = parser.parse_args(argv)
    if args.slow_realtime_ms < 0 or args.greeting_ms < 0:
        parser.error("--slow-realtime-ms and --greeting-ms must be >= 0")
    setup_logging("WARNING" if args.quiet else "INFO", "text")
    slow_s = args.slow_realtime_ms / 1000.0
    options = FakeRealtimeOptions(handshake_delay_s=slow_s, session_updated_delay_s=slow_s)
    with tempfile.TemporaryDirectory(prefix="vonage-bridge-sim-") as tmp:
        database_url = f"sqlite:///{Path(tmp) / 'calls.db'}" if args.console else None
        status = _simulate(args, options, database_url)
        if status == 0 and database_url is not None:
            try:
                asyncio.run(serve_console(database_url, args.console_port))
            except OSError as exc:
                print(f"console failed: {exc!r}", file=sys.stderr)
                return 1
        return status


def _simulate(
    args: argparse.Namespace, options: FakeRealtimeOptions, database_url: str | None
) -> int:
    """Run the simulated call and print its report; the exit status."""
    env: dict[str, str] = {}
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    if args.assistants_file:
        env["ASSISTANTS_FILE"] = str(args.assistants_file)
    try:
        report = asyncio.run(
            simulate_call(
                args.wav,
                out_wav=args.out,
                front_door=args.front_door,
                realtime_options=options,
                greeting_ms=args.greeting_ms,
                prewarm=not args.no_prewarm,
                assistant=args.assistant,
                vonage_rate_hz=args.vonage_rate,
                env_overrides=env or None,
            )
        )
    except ConfigError as exc:
        print(f"simulation failed: {exc.message}", file=sys.stderr)
        return 1
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

"""``python -m vonage_bridge``: load ``.env``, read settings, log, serve.

Exit status 2 with one message naming every bad variable when the configuration is invalid.
"""

from __future__ import annotations

import argparse
import os
import sys

from aiohttp import web
from dotenv import load_dotenv

from .config import Settings
from .errors import ConfigError
from .logs import setup_logging
from .web.app import make_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vonage-bridge", description="Vonage Voice <-> OpenAI Realtime bridge."
    )
    parser.add_argument("--env-file", default=".env", help="dotenv file to load (default .env)")
    args = parser.parse_args(argv)
    load_dotenv(args.env_file, override=False)  # the real environment wins
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"vonage-bridge: {exc.message}", file=sys.stderr)
        return 2
    setup_logging(settings.log.level, settings.log.format)
    web.run_app(
        make_app(settings),
        host=settings.server.host,
        port=settings.server.port,
        print=None,
        access_log=None,
        shutdown_timeout=10.0,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

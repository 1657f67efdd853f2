"""Point the Vonage application's answer and event URLs at SERVER_URL.

    python change_url.py local [--dry-run]    # reads ./.env
    python change_url.py prod [--dry-run]     # reads ./.env.production

Variables already in the environment win over the file. Exit status: 0 done, 1 Vonage API
or network error, 2 missing or invalid variables. Logic: vonage_bridge/applications.py.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from dotenv import load_dotenv

from vonage_bridge.errors import BridgeError, ConfigError
from vonage_bridge.vonage.applications import ApplicationApiSettings, describe, update_urls

ENV_FILES = {"local": ".env", "prod": ".env.production"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="change_url.py", description=__doc__.split("\n")[0])
    parser.add_argument("target", choices=ENV_FILES, help="local: ./.env, prod: ./.env.production")
    parser.add_argument("--dry-run", action="store_true", help="show the change, do not send it")
    args = parser.parse_args(argv)
    env_file = Path.cwd() / ENV_FILES[args.target]
    if not env_file.is_file():
        print(f"change_url.py: note: {env_file} not found; using the environment", file=sys.stderr)
    load_dotenv(env_file, override=False)  # the real environment wins
    try:
        settings = ApplicationApiSettings.from_env(os.environ)
        change = asyncio.run(update_urls(settings, dry_run=args.dry_run))
    except BridgeError as exc:  # ConfigError, ApplicationApiError, UpstreamTimeout: no traceback
        print(f"change_url.py: {exc.message}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    print(describe(change))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Point the Vonage application's answer and event URLs (or a Twilio number's Voice URL) at
SERVER_URL.

    python change_url.py local [--dry-run] [--force]          # reads ./.env
    python change_url.py prod [--dry-run] [--force]           # reads ./.env.production
    python change_url.py twilio local|prod [--dry-run] [--force]

Vonage needs VONAGE_API_KEY, VONAGE_API_SECRET, VONAGE_APPLICATION_ID and SERVER_URL
(VONAGE_API_URL optional); Twilio needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN,
TWILIO_PHONE_NUMBER and SERVER_URL (TWILIO_API_URL optional), and sets the number's Voice URL
to SERVER_URL/twilio/incoming-call (POST). A SERVER_URL whose host no carrier can reach
(loopback, private, the .env.example placeholder, reserved example names) is refused unless
--force (local fakes). When the URLs are already there nothing is sent and it prints
"unchanged". Variables already in the environment win over the file. Exit status: 0 done or
unchanged, 1 API or network error, 2 missing or invalid variables or a refused host.
Logic: vonage_bridge/vonage/applications.py, vonage_bridge/twilio/numbers.py.
Source: https://www.twilio.com/docs/phone-numbers/api/incomingphonenumber-resource
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import aiohttp
from dotenv import load_dotenv

from vonage_bridge.config import PublicUrl
from vonage_bridge.config_values import TWILIO_ACCOUNT_SID_RE, http_url
from vonage_bridge.errors import BridgeError, ConfigError
from vonage_bridge.phone import e164_digits
from vonage_bridge.public_host import host_refusal
from vonage_bridge.twilio.numbers import ANSWER_PATH, TwilioNumbers, point_voice_url
from vonage_bridge.vonage.applications import ApplicationApiSettings, describe, update_urls

ENV_FILES = {"local": ".env", "prod": ".env.production"}
TWILIO_VARIABLES = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_PHONE_NUMBER", "SERVER_URL")


def _refuse_unreachable(public: PublicUrl, carrier: str) -> None:
    """Raises ConfigError when no carrier can reach ``public`` (see the module docstring)."""
    refusal = host_refusal(public.http)
    if refusal:
        raise ConfigError(
            [
                f"SERVER_URL={public.http!r} {refusal}: {carrier} could not reach it; "
                "use your tunnel's or server's public host, or --force (local fakes only)"
            ]
        )


async def _twilio(env: Mapping[str, str], *, dry_run: bool, force: bool) -> str:
    """Set the Twilio number's Voice URL; the lines to print.

    Raises:
        ConfigError: a variable is missing or invalid, or the host is refused.
        TwilioApiError, UpstreamTimeout: Twilio refused, failed or could not be reached.
    """
    values = {name: env.get(name, "").strip() for name in TWILIO_VARIABLES}
    problems = [f"{name} is required but not set" for name, v in values.items() if not v]
    sid, number, public = values["TWILIO_ACCOUNT_SID"], values["TWILIO_PHONE_NUMBER"], None
    if sid and not TWILIO_ACCOUNT_SID_RE.fullmatch(sid):
        problems.append(f"TWILIO_ACCOUNT_SID={sid!r}: must be AC followed by 32 hex digits")
    try:
        number = e164_digits(number) if number else ""
    except ValueError as exc:
        problems.append(f"TWILIO_PHONE_NUMBER: {exc}")
    api_url = env.get("TWILIO_API_URL", "").strip() or "https://api.twilio.com"
    try:
        api_url = http_url(api_url)
    except ValueError as exc:
        problems.append(f"TWILIO_API_URL={api_url!r}: {exc}")
    if values["SERVER_URL"]:
        try:
            public = PublicUrl.parse(values["SERVER_URL"])
        except ValueError as exc:
            problems.append(f"SERVER_URL={values['SERVER_URL']!r}: {exc}")
    if problems or public is None:
        raise ConfigError(problems)
    if not force:
        _refuse_unreachable(public, "Twilio")
    async with aiohttp.ClientSession() as http:
        numbers = TwilioNumbers(
            http, api_url=api_url, account_sid=sid, auth_token=values["TWILIO_AUTH_TOKEN"]
        )
        change = await point_voice_url(numbers, number, public.http + ANSWER_PATH, dry_run=dry_run)
    return change.describe()


async def _vonage(env: Mapping[str, str], *, dry_run: bool, force: bool) -> str:
    settings = ApplicationApiSettings.from_env(env)
    if not force:
        _refuse_unreachable(settings.public_url, "Vonage")
    return describe(await update_urls(settings, dry_run=dry_run))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    carrier = "twilio" if argv[:1] == ["twilio"] else "vonage"
    parser = argparse.ArgumentParser(
        prog="change_url.py" + (" twilio" if carrier == "twilio" else ""),
        description=__doc__.split("\n\n")[0],
        epilog="python change_url.py twilio local|prod: the Twilio number's Voice URL instead.",
    )
    parser.add_argument("target", choices=ENV_FILES, help="local: ./.env, prod: ./.env.production")
    parser.add_argument("--dry-run", action="store_true", help="show the change, do not send it")
    parser.add_argument(
        "--force", action="store_true", help="accept a loopback, private or placeholder host"
    )
    args = parser.parse_args(argv[1:] if carrier == "twilio" else argv)
    env_file = Path.cwd() / ENV_FILES[args.target]
    if not env_file.is_file():
        print(f"change_url.py: note: {env_file} not found; using the environment", file=sys.stderr)
    load_dotenv(env_file, override=False)  # the real environment wins
    run = _twilio if carrier == "twilio" else _vonage
    try:
        print(asyncio.run(run(os.environ, dry_run=args.dry_run, force=args.force)))
    except BridgeError as exc:  # ConfigError, ApplicationApiError, TwilioApiError, timeouts
        print(f"change_url.py: {exc.message}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

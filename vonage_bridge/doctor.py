"""``vonage-bridge doctor``: check a set-up before the first real call, a line per check.

Reads the same variables as the service (``--env-file``, default ``.env``; the environment
wins) and checks, in order, printing each line as it is known:

1. **configuration**: ``Settings.from_env`` (every problem at once) and its warnings; a
   ``SERVER_URL`` no carrier can reach (loopback, private, reserved names) fails unless
   ``--allow-local`` (the local fakes of ``vonage-bridge-sim serve``);
2. **OpenAI**: the key and the model with one cheap authenticated request,
   ``GET {OPENAI_BASE_URL}/models/{OPENAI_MODEL}`` (401: the key; 404: the model). Azure
   (``OPENAI_API_VERSION``) is skipped: its deployments are not listed there;
3. **Vonage application** (with ``VONAGE_API_KEY``, ``VONAGE_API_SECRET``,
   ``VONAGE_APPLICATION_ID``, as ``change_url.py``): it exists, its voice answer and event URLs
   are ``SERVER_URL/incoming-call`` and ``SERVER_URL/event``, and signed callbacks are on
   when the bridge verifies them (``VONAGE_SIGNATURE_SECRET``);
4. **Twilio number** (with ``TWILIO_ACCOUNT_SID``, ``TWILIO_AUTH_TOKEN`` and
   ``TWILIO_PHONE_NUMBER``): its Voice URL is ``SERVER_URL/twilio/incoming-call``;
5. **database**: ``DATABASE_URL`` opens (tables created as at start-up);
6. **public URL**: ``GET SERVER_URL/health`` reaches this server. When nothing listens on
   ``HOST:PORT`` the doctor listens there itself for the check, answering a random token,
   so a tunnel pointing at another machine or port is caught (only a warning when what
   answers is a vonage-bridge: a deployed server checked from elsewhere); when the service
   is already running, its own ``/health`` must answer through ``SERVER_URL``.

Verdicts: ``ok``, ``warn`` (works, but check it), ``skip`` (not checkable with these
variables), ``FAIL``. Exit status: 0 when a real call would work (no failure and at least one
front door checked end to end: the Vonage application, the Twilio number, or the OpenAI SIP
connector configured), 1 otherwise, 2 when the configuration itself is invalid.

The Application API takes the account's API key and secret (HTTP Basic), not the
application JWT, so this check needs the two ``change_url.py`` variables.
Sources: https://platform.openai.com/docs/api-reference/models/retrieve,
https://developer.vonage.com/en/api/application.v2,
https://developer.vonage.com/en/voice/voice-api/guides/signed-webhooks,
https://www.twilio.com/docs/phone-numbers/api/incomingphonenumber-resource
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from dotenv import load_dotenv

from .config import Settings
from .errors import ApplicationApiError, ConfigError, TwilioApiError, UpstreamTimeout
from .public_host import host_refusal
from .store import SqlCallStore
from .twilio.numbers import ANSWER_PATH as TWILIO_ANSWER_PATH
from .twilio.numbers import TwilioNumbers
from .vonage.applications import ApplicationApiSettings, get_application, voice_urls

OK, WARN, SKIP, FAIL = "ok", "warn", "skip", "FAIL"
EXIT_READY, EXIT_NOT_READY, EXIT_CONFIG = 0, 1, 2
DEFAULT_TIMEOUT_S = 10.0
VONAGE_ANSWER_PATHS = ("/incoming-call", "/answer")
"""Both answer routes of ``vonage/routes.py``; ``change_url.py`` sets the first."""


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the report: ``verdict`` (``ok``, ``warn``, ``skip``, ``FAIL``), what was
    checked, and what was found (never a secret)."""

    verdict: str
    name: str
    detail: str

    def line(self) -> str:
        """The check as one report line: verdict, name, detail."""
        return f"{self.verdict:<4}  {self.name}: {self.detail}"


@dataclass(slots=True)
class Report:
    """Every check, and the front doors checked end to end."""

    checks: list[Check] = field(default_factory=list)
    doors: list[str] = field(default_factory=list)
    config_valid: bool = True
    emit: Callable[[Check], None] = field(default=lambda _: None, repr=False)

    def add(self, verdict: str, name: str, detail: str) -> None:
        """Record one check and hand it to :attr:`emit` (printed as it comes)."""
        check = Check(verdict, name, detail)
        self.checks.append(check)
        self.emit(check)

    @property
    def failures(self) -> list[Check]:
        """The checks whose verdict is ``FAIL``."""
        return [c for c in self.checks if c.verdict == FAIL]

    @property
    def ready(self) -> bool:
        """Whether a real call would work: valid, no failure, a front door checked."""
        return self.config_valid and not self.failures and bool(self.doors)

    def verdict(self) -> str:
        """The last line."""
        if self.ready:
            return f"verdict: ready for a real call ({', '.join(self.doors)})"
        if not self.config_valid:
            return "verdict: NOT ready: fix the configuration first (the lines above)"
        reasons = [c.name for c in self.failures]
        if not self.doors:
            reasons.append(
                "no front door checked end to end (set VONAGE_API_KEY and VONAGE_API_SECRET, "
                "or TWILIO_PHONE_NUMBER)"
            )
        return "verdict: NOT ready: " + "; ".join(reasons)


async def diagnose(
    env: Mapping[str, str],
    *,
    allow_local: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    emit: Callable[[Check], None] = lambda _: None,
) -> Report:
    """Run every check against ``env`` (see the module docstring); ``emit`` gets each line
    as soon as it is known. Never raises for what it checks: a failure is a ``FAIL`` line."""
    report = Report(emit=emit)
    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        report.config_valid = False
        for problem in exc.problems:
            report.add(FAIL, "configuration", problem)
        return report
    report.add(OK, "configuration", "every variable is valid")
    for warning in settings.warnings:
        report.add(WARN, "configuration", warning)
    public = settings.server.public_url.http
    refusal = host_refusal(public)
    if refusal:
        verdict = WARN if allow_local else FAIL
        hint = " (--allow-local: local fakes only)" if allow_local else "; use your tunnel's host"
        report.add(verdict, "SERVER_URL", f"{public} {refusal}{hint}")
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        await _openai(report, settings, http)
        await _vonage(report, settings, env, http)
        await _twilio(report, settings, http, timeout_s)
        await _database(report, settings)
        await _public_url(report, settings, http)
    if settings.sip.webhook_secret is not None:
        report.add(
            OK,
            "OpenAI SIP",
            f"front door on; the project's webhook must be {public}/openai/webhook "
            "(not readable through the API, not checked)",
        )
        report.doors.append("OpenAI SIP")
    return report


async def _openai(report: Report, settings: Settings, http: aiohttp.ClientSession) -> None:
    oai = settings.openai
    name = "OpenAI key and model"
    if oai.api_version:
        report.add(SKIP, name, "Azure OpenAI (OPENAI_API_VERSION): deployments not checked")
        return
    url = f"{oai.base_url}/models/{oai.model}"
    headers = {"Authorization": f"Bearer {oai.api_key.get_secret_value()}"}
    try:
        async with http.get(url, headers=headers) as resp:
            status, body = resp.status, await _json_or_none(resp)
    except (aiohttp.ClientError, TimeoutError) as exc:
        report.add(FAIL, name, f"OPENAI_BASE_URL={oai.base_url} unreachable ({_reason(exc)})")
        return
    if status == 200:
        report.add(OK, name, f"OPENAI_API_KEY accepted; OPENAI_MODEL={oai.model} available")
    elif status == 401:
        report.add(FAIL, name, f"OPENAI_API_KEY was refused (HTTP 401{_openai_reason(body)})")
    elif status == 404:
        report.add(
            FAIL,
            name,
            f"OPENAI_MODEL={oai.model!r} not found for this key (HTTP 404{_openai_reason(body)})",
        )
    else:
        report.add(FAIL, name, f"GET {url} answered HTTP {status}{_openai_reason(body)}")


async def _vonage(
    report: Report, settings: Settings, env: Mapping[str, str], http: aiohttp.ClientSession
) -> None:
    name = "Vonage application"
    needed = ("VONAGE_API_KEY", "VONAGE_API_SECRET", "VONAGE_APPLICATION_ID")
    missing = [n for n in needed if not env.get(n, "").strip()]
    if missing:
        report.add(SKIP, name, f"not checked: {', '.join(missing)} not set")
        return
    try:
        app_settings = ApplicationApiSettings.from_env(env)
        doc = await get_application(http, app_settings)
    except ConfigError as exc:
        report.add(FAIL, name, "; ".join(exc.problems))
        return
    except (ApplicationApiError, UpstreamTimeout) as exc:
        report.add(FAIL, name, exc.message)
        return
    report.add(OK, name, f"{app_settings.application_id} ({doc.get('name')}) exists")
    base = settings.server.public_url.http
    answer, event = voice_urls(doc)
    fix = "; run change_url.py local (or prod)"
    door_ok = True
    wanted = [base + path for path in VONAGE_ANSWER_PATHS]
    if answer.address in wanted:
        report.add(OK, "Vonage answer URL", f"{answer}")
    else:
        door_ok = False
        report.add(FAIL, "Vonage answer URL", f"is {answer}, should be {wanted[0]}{fix}")
    if event.address == base + "/event":
        report.add(OK, "Vonage event URL", f"{event}")
    else:
        door_ok = False
        report.add(FAIL, "Vonage event URL", f"is {event}, should be {base}/event{fix}")
    voice = doc.get("capabilities", {}).get("voice", {}) if isinstance(doc, dict) else {}
    signed = isinstance(voice, dict) and voice.get("signed_callbacks") is True
    verifies = settings.vonage.signature_secret is not None
    if signed and verifies:
        report.add(OK, "Vonage signed callbacks", "on, verified with VONAGE_SIGNATURE_SECRET")
    elif signed:
        report.add(WARN, "Vonage signed callbacks", "on, but VONAGE_SIGNATURE_SECRET is unset")
    elif verifies:
        door_ok = False
        report.add(
            FAIL,
            "Vonage signed callbacks",
            "off: Vonage will not sign its webhooks and the bridge refuses unsigned ones "
            "(turn them on in the application's voice settings)",
        )
    else:
        report.add(WARN, "Vonage signed callbacks", "off (ALLOW_UNSIGNED_WEBHOOKS=true)")
    if door_ok:
        report.doors.append("Vonage")


async def _twilio(
    report: Report, settings: Settings, http: aiohttp.ClientSession, timeout_s: float
) -> None:
    tw, name = settings.twilio, "Twilio number"
    if not tw.enabled:
        return
    number = settings.setup.twilio_phone_number
    if tw.auth_token is None or tw.account_sid is None or number is None:
        missing = "TWILIO_AUTH_TOKEN" if tw.auth_token is None else "TWILIO_PHONE_NUMBER"
        report.add(SKIP, name, f"not checked: {missing} not set")
        return
    numbers = TwilioNumbers(
        http,
        api_url=tw.api_url,
        account_sid=tw.account_sid,
        auth_token=tw.auth_token.get_secret_value(),
        timeout_s=timeout_s,
    )
    try:
        found = await numbers.find(number)
    except (TwilioApiError, UpstreamTimeout) as exc:
        report.add(FAIL, name, exc.message)
        return
    wanted = settings.server.public_url.http + TWILIO_ANSWER_PATH
    if found.voice_url == wanted and (found.voice_method or "POST").upper() == "POST":
        report.add(OK, name, f"{found.sid}: Voice URL is POST {wanted}")
        report.doors.append("Twilio")
    else:
        report.add(
            FAIL,
            name,
            f"{found.sid}: Voice URL is {found.voice_method or '?'} "
            f"{found.voice_url or '(not set)'}, should be POST {wanted}; "
            "run change_url.py twilio local (or prod)",
        )


async def _database(report: Report, settings: Settings) -> None:
    from .web.app import describe_database

    url = settings.store.database_url
    where = describe_database(url)
    try:
        store = await SqlCallStore.open(url)
    except Exception as exc:
        verdict = WARN if settings.store.is_postgresql else FAIL
        effect = "calls work, but are not recorded" if verdict == WARN else "start-up fails"
        report.add(
            verdict, "database", f"DATABASE_URL: cannot open the {where}: {_reason(exc)} ({effect})"
        )
        return
    await store.close()
    report.add(OK, "database", where)


async def _public_url(report: Report, settings: Settings, http: aiohttp.ClientSession) -> None:
    name = "public URL"
    server = settings.server
    health = server.public_url.http + "/health"
    token = secrets.token_hex(16)
    probe = web.Application()

    async def answer(_: web.Request) -> web.Response:
        """The probe's ``GET /health``: ``{"status": "ok", "doctor": token}``."""
        return web.json_response({"status": "ok", "doctor": token})

    probe.router.add_get("/health", answer)
    runner = web.AppRunner(probe, access_log=None)
    await runner.setup()
    own = True
    try:
        await web.TCPSite(runner, server.host, server.port).start()
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            await runner.cleanup()
            report.add(
                FAIL,
                name,
                f"cannot listen on HOST={server.host} PORT={server.port}"
                f" to check it ({_reason(exc)})",
            )
            return
        own = False  # the service (or something else) is running there: ask it
    try:
        async with http.get(health) as resp:
            status, body = resp.status, await _json_or_none(resp)
    except (aiohttp.ClientError, TimeoutError) as exc:
        report.add(
            FAIL,
            name,
            f"SERVER_URL does not reach this server: GET {health} failed ({_reason(exc)}); "
            f"is the tunnel running and pointing at port {server.port}?",
        )
        return
    finally:
        await runner.cleanup()
    if own and isinstance(body, dict) and body.get("doctor") == token:
        report.add(OK, name, f"GET {health} reaches this machine's PORT {server.port}")
    elif not own and _is_bridge_health(status, body):
        report.add(OK, name, f"GET {health} reaches the running service (PORT {server.port})")
    elif _is_bridge_health(status, body):
        report.add(
            WARN,
            name,
            f"GET {health} reaches a vonage-bridge, but not one on this machine's PORT "
            f"{server.port} (fine when checking a deployed server from elsewhere)",
        )
    else:
        report.add(
            FAIL,
            name,
            f"GET {health} answered HTTP {status} but not from this server (PORT "
            f"{server.port}); does SERVER_URL or the tunnel point at another machine or port?",
        )


def _is_bridge_health(status: int, body: Any) -> bool:
    """Whether an answer is a vonage-bridge's ``GET /health``."""
    keys = ("status", "version", "calls")
    return status == 200 and isinstance(body, dict) and all(k in body for k in keys)


async def _json_or_none(resp: aiohttp.ClientResponse) -> Any:
    try:
        return await resp.json(content_type=None)
    except ValueError:
        return None


def _openai_reason(body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return f" {error['code']}"
    return ""


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())[:200]
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def main(argv: list[str] | None = None) -> int:
    """``vonage-bridge doctor [--env-file .env] [--allow-local] [--timeout S]``; the exit
    status (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="vonage-bridge doctor",
        description="Check the set-up, a line per check; exit 0 when a real call would work.",
    )
    parser.add_argument("--env-file", default=".env", help="dotenv file to load (default .env)")
    parser.add_argument(
        "--allow-local",
        action="store_true",
        help="accept a loopback or private SERVER_URL (the local fakes of vonage-bridge-sim)",
    )
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="per request, s (default 10)"
    )
    args = parser.parse_args(argv)
    load_dotenv(args.env_file, override=False)  # the real environment wins

    def emit(check: Check) -> None:
        """Print one check line as soon as it is known."""
        print(check.line(), flush=True)

    report = asyncio.run(
        diagnose(os.environ, allow_local=args.allow_local, timeout_s=args.timeout, emit=emit)
    )
    print(report.verdict())
    if not report.config_valid:
        return EXIT_CONFIG
    return EXIT_READY if report.ready else EXIT_NOT_READY


if __name__ == "__main__":
    sys.exit(main())

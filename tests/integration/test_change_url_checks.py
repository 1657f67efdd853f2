"""change_url.py refuses hosts no carrier can reach, says "unchanged", and sets a Twilio
number's Voice URL (``twilio``), against the fakes on 127.0.0.1."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import test_change_url
from support import SECOND
from test_change_url import SCRIPT, good_env, run_main, set_env, write_env_file

from vonage_bridge.sim.twilio_api import FakeTwilioApi, new_account_sid
from vonage_bridge.sim.vonage_app_api import FakeVonageApplicationApi
from vonage_bridge.vonage.applications import voice_urls

clean_env = test_change_url.clean_env  # the fixtures, shared
api = test_change_url.api

TOKEN = "twilio-auth-token-0123456789"
NUMBER = "+14155550123"


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilioApi]:
    async with FakeTwilioApi(account_sid=new_account_sid(), auth_token=TOKEN) as fake:
        yield fake


def twilio_env(fake: FakeTwilioApi, **overrides: str) -> dict[str, str]:
    env = {
        "TWILIO_ACCOUNT_SID": fake.account_sid,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_PHONE_NUMBER": NUMBER,
        "TWILIO_API_URL": fake.base_url,
        "SERVER_URL": "bridge.example.app",
    }
    return {**env, **overrides}


@pytest.mark.parametrize(
    ("server_url", "reason"),
    [
        ("http://127.0.0.1:3000", "loopback"),
        ("http://localhost:3000", "loopback"),
        ("https://192.168.1.20", "private"),
        ("abc123.ngrok.app", "placeholder"),
        ("https://bridge.example.com", "reserved"),
    ],
)
async def test_unreachable_hosts_are_refused_without_force(
    clean_env: Path,
    api: FakeVonageApplicationApi,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    server_url: str,
    reason: str,
) -> None:
    set_env(monkeypatch, good_env(api, SERVER_URL=server_url))
    assert await run_main("local") == 2
    err = capsys.readouterr().err
    assert "SERVER_URL=" in err and reason in err and "--force" in err
    assert api.requests == []  # nothing asked, nothing changed
    assert await run_main("local", "--force") == 0
    assert len(api.puts) == 1


async def test_a_second_run_says_unchanged_and_sends_no_put(
    clean_env: Path,
    api: FakeVonageApplicationApi,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    set_env(monkeypatch, good_env(api))
    assert await run_main("local") == 0
    assert "updated" in capsys.readouterr().out
    assert await run_main("local") == 0
    out = capsys.readouterr().out
    assert "unchanged" in out and "updated" not in out
    assert [r.method for r in api.requests] == ["GET", "PUT", "GET"]
    assert voice_urls(api.application)[1].address == "https://bridge.example.app/event"


async def test_twilio_sets_the_numbers_voice_url(
    clean_env: Path,
    twilio: FakeTwilioApi,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sid = twilio.add_number(NUMBER, "https://old.example.app/voice")
    other = twilio.add_number("+14155550999", "https://someone-else.example.app/voice")
    set_env(monkeypatch, twilio_env(twilio))

    assert await run_main("twilio", "local", "--dry-run") == 0
    assert "dry run" in capsys.readouterr().out
    assert twilio.numbers[sid]["voice_url"] == "https://old.example.app/voice"

    assert await run_main("twilio", "local") == 0
    out = capsys.readouterr().out
    assert "updated" in out and "POST https://bridge.example.app/twilio/incoming-call" in out
    assert NUMBER not in out  # the number is shown without its last digits
    assert twilio.numbers[sid]["voice_url"] == "https://bridge.example.app/twilio/incoming-call"
    assert twilio.numbers[sid]["voice_method"] == "POST"
    assert twilio.numbers[other]["voice_url"] == "https://someone-else.example.app/voice"

    assert await run_main("twilio", "local") == 0
    assert "unchanged" in capsys.readouterr().out


async def test_twilio_refusals_name_the_variable(
    clean_env: Path,
    twilio: FakeTwilioApi,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    twilio.add_number(NUMBER)
    set_env(monkeypatch, twilio_env(twilio, SERVER_URL="http://127.0.0.1:3000"))
    assert await run_main("twilio", "local") == 2
    assert "loopback" in capsys.readouterr().err
    set_env(monkeypatch, twilio_env(twilio, TWILIO_AUTH_TOKEN="wrong-token"))
    assert await run_main("twilio", "local") == 1
    err = capsys.readouterr().err
    assert "HTTP 401" in err and "wrong-token" not in err
    set_env(monkeypatch, twilio_env(twilio, TWILIO_PHONE_NUMBER="+14155550100"))
    assert await run_main("twilio", "local") == 1
    assert "TWILIO_PHONE_NUMBER" in capsys.readouterr().err
    monkeypatch.delenv("TWILIO_ACCOUNT_SID")
    assert await run_main("twilio", "local") == 2
    assert "TWILIO_ACCOUNT_SID is required" in capsys.readouterr().err


async def test_twilio_script_runs_as_a_deployer_runs_it(
    clean_env: Path, twilio: FakeTwilioApi
) -> None:
    sid = twilio.add_number(NUMBER)
    write_env_file(clean_env / ".env.production", twilio_env(twilio, SERVER_URL="prod.example.app"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        "twilio",
        "prod",
        cwd=clean_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30 * SECOND):
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert b"updated" in out
    assert twilio.numbers[sid]["voice_url"] == "https://prod.example.app/twilio/incoming-call"

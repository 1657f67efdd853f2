"""``vonage-bridge doctor`` against the fakes: a line per check, each failure named, and an
exit status that says whether a real call would work."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from support import SECOND

from vonage_bridge.doctor import FAIL, OK, WARN, Report, diagnose
from vonage_bridge.sim.realtime import FakeRealtimeServer
from vonage_bridge.sim.twilio_api import FakeTwilioApi, new_account_sid
from vonage_bridge.sim.vonage_app_api import FakeVonageApplicationApi

TOKEN = "twilio-auth-token-0123456789"
NUMBER = "+14155550123"


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Fakes:
    realtime: FakeRealtimeServer
    vonage: FakeVonageApplicationApi
    twilio: FakeTwilioApi
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def point_vonage_at(self, base: str) -> None:
        hooks = self.vonage.application["capabilities"]["voice"]["webhooks"]
        hooks["answer_url"].update(address=f"{base}/incoming-call", http_method="POST")
        hooks["event_url"].update(address=f"{base}/event", http_method="POST")

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            "SERVER_URL": self.base,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "OPENAI_API_KEY": "sk-sim",
            "OPENAI_BASE_URL": self.realtime.base_url,
            "ALLOW_UNSIGNED_WEBHOOKS": "true",
            "DATABASE_URL": "sqlite:///:memory:",
            "SYSTEM_MESSAGE_PATH": "system-message.txt",
            "VONAGE_API_KEY": self.vonage.api_key,
            "VONAGE_API_SECRET": self.vonage.api_secret,
            "VONAGE_APPLICATION_ID": self.vonage.application_id,
            "VONAGE_API_URL": self.vonage.base_url,
        }
        return {**env, **overrides}


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    async with (
        FakeRealtimeServer() as realtime,
        FakeVonageApplicationApi() as vonage,
        FakeTwilioApi(account_sid=new_account_sid(), auth_token=TOKEN) as twilio,
    ):
        found = Fakes(realtime, vonage, twilio, unused_port())
        found.point_vonage_at(found.base)
        yield found


def failed(report: Report) -> dict[str, str]:
    return {c.name: c.detail for c in report.checks if c.verdict == FAIL}


async def test_a_good_setup_is_ready(fakes: Fakes) -> None:
    lines: list[str] = []
    report = await diagnose(fakes.env(), allow_local=True, emit=lambda c: lines.append(c.line()))
    assert failed(report) == {}
    assert report.ready and report.doors == ["Vonage"]
    names = {c.name for c in report.checks if c.verdict == OK}
    assert {"configuration", "OpenAI key and model", "Vonage application"} <= names
    assert {"Vonage answer URL", "Vonage event URL", "database", "public URL"} <= names
    assert len(lines) == len(report.checks) and "sk-sim" not in "\n".join(lines)
    assert "ready for a real call" in report.verdict()
    assert fakes.realtime.handshakes[-1]["path"] == "/v1/models/gpt-realtime"


async def test_a_wrong_openai_key_is_named(fakes: Fakes) -> None:
    report = await diagnose(fakes.env(OPENAI_API_KEY="sk-wrong-key"), allow_local=True)
    assert not report.ready
    detail = failed(report)["OpenAI key and model"]
    assert "OPENAI_API_KEY was refused (HTTP 401" in detail and "sk-wrong-key" not in detail
    assert "OpenAI key and model" in report.verdict()


async def test_a_model_the_api_does_not_have_is_named(fakes: Fakes) -> None:
    env = fakes.env(OPENAI_MODEL="gpt-6-voice", OPENAI_MODEL_CHECK="off")
    report = await diagnose(env, allow_local=True)
    assert "OPENAI_MODEL='gpt-6-voice' not found" in failed(report)["OpenAI key and model"]


async def test_a_wrong_answer_url_is_named(fakes: Fakes) -> None:
    fakes.point_vonage_at("https://old-tunnel.example.app")
    report = await diagnose(fakes.env(), allow_local=True)
    assert not report.ready and report.doors == []
    found = failed(report)
    assert "https://old-tunnel.example.app/incoming-call" in found["Vonage answer URL"]
    assert f"should be {fakes.base}/incoming-call" in found["Vonage answer URL"]
    assert "change_url.py" in found["Vonage answer URL"]


async def test_signed_callbacks_off_while_the_bridge_verifies_is_named(fakes: Fakes) -> None:
    fakes.vonage.application["capabilities"]["voice"]["signed_callbacks"] = False
    env = fakes.env(VONAGE_SIGNATURE_SECRET="signature-secret-0123456789abcdef")
    report = await diagnose(env, allow_local=True)
    assert "off" in failed(report)["Vonage signed callbacks"]


async def test_an_unreachable_public_url_is_named(fakes: Fakes) -> None:
    closed = f"http://127.0.0.1:{unused_port()}"
    fakes.point_vonage_at(closed)
    report = await diagnose(fakes.env(SERVER_URL=closed), allow_local=True)
    assert not report.ready
    assert list(failed(report)) == ["public URL"]
    assert "SERVER_URL does not reach this server" in failed(report)["public URL"]


async def test_a_public_url_answered_by_another_server_is_named(fakes: Fakes) -> None:
    other = fakes.realtime.origin  # answers, but is not this server
    fakes.point_vonage_at(other)
    report = await diagnose(fakes.env(SERVER_URL=other), allow_local=True)
    assert "not from this server" in failed(report)["public URL"]


async def test_another_bridge_answering_is_only_a_warning(fakes: Fakes) -> None:
    """A deployed server checked from a laptop: what answers is a vonage-bridge, elsewhere."""
    app = web.Application()

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "version": "0.1.0", "calls": 0})

    app.router.add_get("/health", health)
    runner = web.AppRunner(app)
    await runner.setup()
    other_port = unused_port()
    await web.TCPSite(runner, "127.0.0.1", other_port).start()
    try:
        other = f"http://127.0.0.1:{other_port}"
        fakes.point_vonage_at(other)
        report = await diagnose(fakes.env(SERVER_URL=other), allow_local=True)
    finally:
        await runner.cleanup()
    assert failed(report) == {} and report.ready
    public = [c for c in report.checks if c.name == "public URL"]
    assert [c.verdict for c in public] == [WARN]
    assert "not one on this machine's PORT" in public[0].detail


async def test_a_loopback_server_url_fails_without_allow_local(fakes: Fakes) -> None:
    report = await diagnose(fakes.env())
    assert "loopback" in failed(report)["SERVER_URL"]
    assert not report.ready


async def test_the_twilio_numbers_voice_url_is_checked(fakes: Fakes) -> None:
    sid = fakes.twilio.add_number(NUMBER, "https://old.example.app/voice")
    twilio = {
        "TWILIO_ACCOUNT_SID": fakes.twilio.account_sid,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_API_URL": fakes.twilio.base_url,
        "TWILIO_PHONE_NUMBER": NUMBER,
    }
    report = await diagnose(fakes.env(**twilio), allow_local=True)
    assert "should be POST" in failed(report)["Twilio number"]
    fakes.twilio.numbers[sid]["voice_url"] = f"{fakes.base}/twilio/incoming-call"
    report = await diagnose(fakes.env(**twilio), allow_local=True)
    assert report.ready and report.doors == ["Vonage", "Twilio"]


async def test_without_any_front_door_checked_it_is_not_ready(fakes: Fakes) -> None:
    env = fakes.env()
    del env["VONAGE_API_KEY"], env["VONAGE_API_SECRET"]
    report = await diagnose(env, allow_local=True)
    assert failed(report) == {} and not report.ready
    assert "no front door checked" in report.verdict()


async def run_doctor(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vonage_bridge",
        "doctor",
        "--env-file",
        "/nonexistent/.env",
        *args,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path.cwd()), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(60 * SECOND):
        out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_the_command_exits_0_only_when_ready(fakes: Fakes) -> None:
    code, out = await run_doctor(fakes.env(), "--allow-local")
    assert code == 0, out
    assert out.splitlines()[-1].startswith("verdict: ready")
    code, out = await run_doctor(fakes.env(OPENAI_API_KEY="sk-wrong-key"), "--allow-local")
    assert code == 1 and "OPENAI_API_KEY was refused" in out


async def test_the_command_exits_2_on_a_bad_configuration(fakes: Fakes) -> None:
    code, out = await run_doctor(fakes.env(SERVER_URL="abc123.ngrok.app"))
    assert code == 2
    assert "FAIL  configuration: SERVER_URL='abc123.ngrok.app': is the placeholder" in out

"""change_url.py against the fake Vonage Application API on 127.0.0.1.

``main(argv)`` runs in a worker thread (it calls ``asyncio.run``) while the fake serves on
the test's loop; one test runs the script as a subprocess to prove a 401 prints no traceback.
"""

from __future__ import annotations

import asyncio
import copy
import importlib.util
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from support import SECOND

from vonage_bridge.sim.vonage_app_api import (
    SIM_APPLICATION_ID,
    FakeApplicationApiOptions,
    FakeVonageApplicationApi,
    sample_application,
)
from vonage_bridge.vonage.applications import put_body, voice_urls, with_voice_urls

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "change_url.py"
VARIABLES = (
    "VONAGE_API_KEY",
    "VONAGE_API_SECRET",
    "VONAGE_APPLICATION_ID",
    "VONAGE_API_URL",
    "SERVER_URL",
)


def _load_change_url() -> ModuleType:
    spec = importlib.util.spec_from_file_location("change_url", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


change_url = _load_change_url()

Run = Callable[..., Any]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No change_url variable in the environment, cwd an empty tmp dir; both restored after.

    Each variable is set then deleted so monkeypatch restores "absent" even when
    load_dotenv() writes it during the test.
    """
    for name in VARIABLES:
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
async def api() -> AsyncIterator[FakeVonageApplicationApi]:
    async with FakeVonageApplicationApi() as fake:
        yield fake


def good_env(api: FakeVonageApplicationApi, **overrides: str) -> dict[str, str]:
    env = {
        "VONAGE_API_KEY": api.api_key,
        "VONAGE_API_SECRET": api.api_secret,
        "VONAGE_APPLICATION_ID": api.application_id,
        "VONAGE_API_URL": api.base_url,
        "SERVER_URL": "bridge.example.app",
    }
    env.update(overrides)
    return env


def set_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def write_env_file(path: Path, env: dict[str, str]) -> None:
    path.write_text("".join(f"{k}={v}\n" for k, v in env.items()), encoding="utf-8")


async def run_main(*argv: str) -> int:
    """``change_url.main(argv)`` in a thread, so the fake keeps serving on this loop."""
    async with asyncio.timeout(10 * SECOND):
        code: int = await asyncio.to_thread(change_url.main, list(argv))
    return code


def expected_put(answer: str, event: str) -> dict[str, Any]:
    """The fake's document with only the two URLs changed, written out by hand."""
    doc = sample_application()
    del doc["id"], doc["_links"]
    hooks = doc["capabilities"]["voice"]["webhooks"]
    hooks["answer_url"].update(address=answer, http_method="POST")
    hooks["event_url"].update(address=event, http_method="POST")
    return doc


# --- the happy path -----------------------------------------------------------------------------


async def test_change_url_puts_both_urls_and_keeps_every_other_field(
    clean_env: Path,
    api: FakeVonageApplicationApi,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    set_env(monkeypatch, good_env(api))

    assert await run_main("local") == 0

    assert [(r.method, r.status) for r in api.requests] == [("GET", 200), ("PUT", 200)]
    assert api.puts == [
        expected_put("https://bridge.example.app/incoming-call", "https://bridge.example.app/event")
    ]
    out = capsys.readouterr().out
    assert "GET https://old-tunnel.example.app/answer" in out
    assert "POST https://bridge.example.app/incoming-call" in out
    assert "POST https://old-tunnel.example.app/events" in out
    assert "POST https://bridge.example.app/event" in out
    # The fake now holds the new document, id and links included.
    assert voice_urls(api.application)[0].address == "https://bridge.example.app/incoming-call"
    assert api.application["id"] == SIM_APPLICATION_ID


async def test_change_url_dry_run_sends_no_put(
    clean_env: Path,
    api: FakeVonageApplicationApi,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    set_env(monkeypatch, good_env(api, SERVER_URL="http://127.0.0.1:3000/"))

    assert await run_main("local", "--dry-run", "--force") == 0  # --force: a loopback host

    assert [r.method for r in api.requests] == ["GET"]
    assert api.puts == []
    assert api.application == sample_application()
    out = capsys.readouterr().out
    assert "dry run" in out
    assert "POST http://127.0.0.1:3000/incoming-call" in out


# --- failures: a message naming the cause, no traceback -----------------------------------------


async def test_change_url_401_exits_nonzero_with_readable_message(
    clean_env: Path,
    api: FakeVonageApplicationApi,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    set_env(monkeypatch, good_env(api, VONAGE_API_SECRET="wrong"))

    assert await run_main("prod") == 1

    err = capsys.readouterr().err
    assert "HTTP 401" in err and "VONAGE_API_SECRET" in err
    assert "Traceback" not in err and "wrong" not in err
    assert api.puts == []


async def test_change_url_404_names_the_application_id(
    clean_env: Path,
    api: FakeVonageApplicationApi,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    set_env(monkeypatch, good_env(api, VONAGE_APPLICATION_ID="no-such-app"))

    assert await run_main("local") == 1

    err = capsys.readouterr().err
    assert "HTTP 404" in err and "'no-such-app'" in err and "VONAGE_APPLICATION_ID" in err
    assert "Traceback" not in err
    assert api.puts == []


async def test_change_url_network_error_exits_nonzero_with_readable_message(
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as s:  # a port nobody listens on any more
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    set_env(
        monkeypatch,
        {
            "VONAGE_API_KEY": "k",
            "VONAGE_API_SECRET": "s",
            "VONAGE_APPLICATION_ID": SIM_APPLICATION_ID,
            "VONAGE_API_URL": f"http://127.0.0.1:{port}",
            "SERVER_URL": "bridge.example.app",
        },
    )

    assert await run_main("local") == 1

    err = capsys.readouterr().err
    assert "the Vonage API unreachable; check VONAGE_API_URL" in err
    assert "Traceback" not in err


async def test_change_url_put_failure_reports_status(
    clean_env: Path,
    api: FakeVonageApplicationApi,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    api.options = FakeApplicationApiOptions(put_status=503)
    set_env(monkeypatch, good_env(api))

    assert await run_main("local") == 1

    err = capsys.readouterr().err
    assert "HTTP 503" in err and "Traceback" not in err
    assert api.application == sample_application()


async def test_change_url_missing_and_invalid_variables_are_all_named(
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert await run_main("local") == 2
    err = capsys.readouterr().err
    for name in ("VONAGE_API_KEY", "VONAGE_API_SECRET", "VONAGE_APPLICATION_ID", "SERVER_URL"):
        assert f"{name} is required but not set" in err
    assert "OPENAI_API_KEY" not in err
    assert "Traceback" not in err

    set_env(
        monkeypatch,
        {
            "VONAGE_API_KEY": "key:with-colon",
            "VONAGE_API_SECRET": "s",
            "VONAGE_APPLICATION_ID": SIM_APPLICATION_ID,
            "VONAGE_API_URL": "ftp://api.example",
            "SERVER_URL": "gopher://x",
        },
    )
    assert await run_main("local") == 2
    err = capsys.readouterr().err
    assert "VONAGE_API_URL='ftp://api.example'" in err
    assert "SERVER_URL='gopher://x'" in err
    assert "VONAGE_API_KEY=<hidden>: must not contain ':'" in err
    assert "key:with-colon" not in err


# --- which file is read -------------------------------------------------------------------------


async def test_change_url_local_reads_dotenv_from_cwd_and_environment_wins(
    clean_env: Path,
    api: FakeVonageApplicationApi,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_env_file(clean_env / ".env", good_env(api, SERVER_URL="from-file.example.app"))
    monkeypatch.setenv("SERVER_URL", "from-env.example.app")

    assert await run_main("local") == 0

    assert api.puts == [
        expected_put(
            "https://from-env.example.app/incoming-call", "https://from-env.example.app/event"
        )
    ]


async def test_change_url_prod_reads_dotenv_production(
    clean_env: Path,
    api: FakeVonageApplicationApi,
) -> None:
    write_env_file(clean_env / ".env", good_env(api, VONAGE_API_SECRET="local-only"))
    write_env_file(clean_env / ".env.production", good_env(api, SERVER_URL="prod.example.app"))

    assert await run_main("prod") == 0

    answer, event = voice_urls(api.puts[0])
    assert (answer.address, event.address) == (
        "https://prod.example.app/incoming-call",
        "https://prod.example.app/event",
    )


async def test_change_url_script_401_prints_no_traceback(
    clean_env: Path, api: FakeVonageApplicationApi
) -> None:
    """The real entry point, as a deployer runs it."""
    write_env_file(clean_env / ".env", good_env(api, VONAGE_API_SECRET="wrong"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        "local",
        cwd=clean_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30 * SECOND):
        out, err = await proc.communicate()

    assert proc.returncode == 1
    text = err.decode()
    assert "HTTP 401" in text and "Traceback" not in text
    assert out == b""


# --- the pure document change -------------------------------------------------------------------


def test_with_voice_urls_changes_only_the_two_urls_and_leaves_input_alone() -> None:
    original = sample_application()
    before = copy.deepcopy(original)

    changed = with_voice_urls(original, "https://h/incoming-call", "https://h/event")

    assert original == before
    expected = copy.deepcopy(before)
    hooks = expected["capabilities"]["voice"]["webhooks"]
    hooks["answer_url"].update(address="https://h/incoming-call", http_method="POST")
    hooks["event_url"].update(address="https://h/event", http_method="POST")
    assert changed == expected
    assert put_body(changed) == {k: v for k, v in expected.items() if k not in ("id", "_links")}


def test_with_voice_urls_adds_voice_capability_when_missing() -> None:
    doc = {"id": "x", "name": "n", "capabilities": {"rtc": {"webhooks": {}}}}

    changed = with_voice_urls(doc, "https://h/incoming-call", "https://h/event")

    assert changed["capabilities"] == {
        "rtc": {"webhooks": {}},
        "voice": {
            "webhooks": {
                "answer_url": {"address": "https://h/incoming-call", "http_method": "POST"},
                "event_url": {"address": "https://h/event", "http_method": "POST"},
            }
        },
    }

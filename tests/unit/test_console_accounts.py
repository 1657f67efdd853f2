"""Operator accounts and sessions (``console.accounts``), the login limit (``console.auth``)
and the ``vonage-bridge operator`` commands (``console.cli``)."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from vonage_bridge.config import Settings
from vonage_bridge.console import cli
from vonage_bridge.console.accounts import (
    Accounts,
    check_name,
    hash_password,
    token_hash,
    verify_password,
)
from vonage_bridge.console.auth import FailureLimit, safe_next, secure_cookies
from vonage_bridge.errors import ConfigError
from vonage_bridge.store import SqlCallStore
from vonage_bridge.web.keys import SETTINGS


def test_a_password_hash_is_salted_scrypt_and_verifies_only_its_password() -> None:
    one, two = hash_password("hunter2hunter2"), hash_password("hunter2hunter2")
    assert one.startswith("scrypt$16384$8$1$") and one != two  # a fresh salt each time
    assert "hunter2" not in one
    assert verify_password("hunter2hunter2", one)
    assert not verify_password("hunter2hunter3", one)
    assert not verify_password("hunter2hunter2", "scrypt$broken")
    assert not verify_password("hunter2hunter2", "md5$1$1$1$AAAA$AAAA")


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "bob/../x", "é"])
def test_bad_operator_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="operator name"):
        check_name(name)


def test_failure_limit_blocks_after_five_in_a_minute_then_forgets() -> None:
    limit = FailureLimit(5, 60.0)
    for t in range(5):
        assert not limit.blocked("alice", 100.0 + t)
        limit.failed("alice", 100.0 + t)
    assert limit.blocked("alice", 104.5)
    assert not limit.blocked("bob", 104.5)  # per key
    assert limit.blocked("alice", 159.9)
    assert not limit.blocked("alice", 160.1)  # the first failure is a minute old


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/console/history?words=x", "/console/history?words=x"),
        ("https://evil.example/console/live", "/console/live"),
        ("//evil.example/console/", "/console/live"),
        ("/console//evil.example", "/console/live"),
        ("/console/login", "/console/live"),
        (None, "/console/live"),
    ],
)
def test_after_login_only_a_console_path_of_ours(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlCallStore]:
    s = await SqlCallStore.open(f"sqlite:///{tmp_path / 'calls.db'}")
    yield s
    await s.close()


async def test_operators_and_sessions(store: SqlCallStore) -> None:
    acc = Accounts(store)
    assert await acc.count() == 0
    assert await acc.add("alice", "password-one")
    assert not await acc.add("alice", "password-two")  # exists
    with pytest.raises(ValueError, match="at least 8"):
        await acc.add("bob", "short")
    assert await acc.authenticate("alice", "password-one")
    assert not await acc.authenticate("alice", "password-two")
    assert not await acc.authenticate("nobody", "password-one")

    token, session = await acc.open_session("alice", 12)
    got = await acc.session(token)
    assert got is not None and got.operator == "alice" and got.csrf == session.csrf
    assert await acc.session(token + "x") is None
    async with store.engine.connect() as conn:  # the token itself is never stored
        stored = (await conn.exec_driver_sql("SELECT token_hash FROM console_sessions")).all()
    assert stored == [(token_hash(token),)]

    expired, _ = await acc.open_session("alice", -1)
    assert await acc.session(expired) is None

    assert await acc.set_password("alice", "password-three")  # also ends its sessions
    assert await acc.session(token) is None
    assert await acc.authenticate("alice", "password-three")
    token, _ = await acc.open_session("alice", 12)
    assert await acc.remove("alice")
    assert await acc.session(token) is None
    assert not await acc.remove("alice")
    assert await acc.count() == 0


def _cli(tmp_path: Path, *argv: str, stdin: str = "") -> tuple[int, str]:
    out = io.StringIO()
    db = f"sqlite:///{tmp_path / 'calls.db'}"
    args = ["--env-file", str(tmp_path / "none.env"), *argv]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABASE_URL", db)
        status = cli.main(args, stdin=io.StringIO(stdin), out=out)
    return status, out.getvalue()


def test_operator_commands(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    assert _cli(tmp_path, "add", "alice", "--password-stdin", stdin="s3cret-pass\n") == (
        0,
        "operator alice added\n",
    )
    assert _cli(tmp_path, "add", "alice", "--password-stdin", stdin="s3cret-pass\n")[0] == 1
    assert _cli(tmp_path, "add", "bob", "--password-stdin", stdin="short\n")[0] == 2
    assert _cli(tmp_path, "add", "bad name", "--password-stdin", stdin="s3cret-pass\n")[0] == 2
    assert _cli(tmp_path, "add", "carol", "--password-stdin", stdin="")[0] == 2
    status, listing = _cli(tmp_path, "list")
    assert status == 0 and listing.startswith("alice\tcreated ")
    assert _cli(tmp_path, "passwd", "alice", "--password-stdin", stdin="new-s3cret\n")[0] == 0
    assert _cli(tmp_path, "passwd", "nobody", "--password-stdin", stdin="new-s3cret\n")[0] == 1
    assert _cli(tmp_path, "remove", "alice") == (0, "operator alice removed\n")
    assert _cli(tmp_path, "remove", "alice")[0] == 1
    assert _cli(tmp_path, "list") == (0, "")
    assert _cli(tmp_path, "frobnicate")[0] == 2
    assert "s3cret" not in caplog.text  # never logged


# ------------------------------------------------------------------ settings and cookies

BASE_ENV = {
    "OPENAI_API_KEY": "sk-test",
    "ALLOW_UNSIGNED_WEBHOOKS": "true",
    "SYSTEM_MESSAGE_PATH": "system-message.txt",
}


def test_console_session_hours_defaults_to_12_and_bad_values_name_the_variable() -> None:
    settings = Settings.from_env({**BASE_ENV, "SERVER_URL": "abc.ngrok.app"})
    assert settings.console.session_hours == 12.0
    env = {**BASE_ENV, "SERVER_URL": "abc.ngrok.app", "CONSOLE_SESSION_HOURS": "1.5"}
    assert Settings.from_env(env).console.session_hours == 1.5
    for bad in ("soon", "0", "1000"):
        with pytest.raises(ConfigError) as info:
            Settings.from_env({**env, "CONSOLE_SESSION_HOURS": bad})
        assert [p.split("=")[0] for p in info.value.problems] == ["CONSOLE_SESSION_HOURS"]


@pytest.mark.parametrize(
    ("server_url", "secure"),
    [("abc.ngrok.app", True), ("https://x.example", True), ("http://127.0.0.1:3000", False)],
)
def test_session_cookies_are_secure_when_server_url_is_https(server_url: str, secure: bool) -> None:
    app = web.Application()
    app[SETTINGS] = Settings.from_env({**BASE_ENV, "SERVER_URL": server_url})
    assert secure_cookies(make_mocked_request("GET", "/console/login", app=app)) is secure

"""The client's address behind a reverse proxy (``CLIENT_IP_HEADER``): the console's failed-login
limit is per client, not one limit for everyone behind the proxy's address."""

from __future__ import annotations

import re

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request
from support import Call, StartCall

from vonage_bridge.config import Settings
from vonage_bridge.console.accounts import Accounts
from vonage_bridge.console.auth import MAX_FAILURES
from vonage_bridge.store import SqlCallStore
from vonage_bridge.web.client_ip import client_address
from vonage_bridge.web.keys import SETTINGS, STORE

OPERATOR = "alice"
PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def request_with(header: str | None, headers: dict[str, str]) -> aiohttp.web.Request:
    env = {
        "OPENAI_API_KEY": "sk-test",
        "SERVER_URL": "http://127.0.0.1:1",
        "ALLOW_UNSIGNED_WEBHOOKS": "true",
    }
    if header is not None:
        env["CLIENT_IP_HEADER"] = header
    app = aiohttp.web.Application()
    app[SETTINGS] = Settings.from_env(env)
    return make_mocked_request("GET", "/", headers=headers, app=app)


@pytest.mark.parametrize(
    ("header", "headers", "expected"),
    [
        (None, {"Fly-Client-IP": "203.0.113.5"}, "peer"),  # not configured: never read
        ("Fly-Client-IP", {"Fly-Client-IP": "203.0.113.5"}, "203.0.113.5"),
        ("fly-client-ip", {"Fly-Client-IP": " 2001:DB8::1 "}, "2001:db8::1"),
        ("X-Forwarded-For", {"X-Forwarded-For": "198.51.100.1, 203.0.113.5"}, "203.0.113.5"),
        ("X-Forwarded-For", {"X-Forwarded-For": "203.0.113.5"}, "203.0.113.5"),
        ("Fly-Client-IP", {}, "peer"),  # missing
        ("Fly-Client-IP", {"Fly-Client-IP": "not an address"}, "peer"),
        ("X-Forwarded-For", {"X-Forwarded-For": "203.0.113.5, junk"}, "peer"),
    ],
)
def test_client_address(header: str | None, headers: dict[str, str], expected: str) -> None:
    request = request_with(header, headers)
    peer = request.remote or "-"
    assert client_address(request) == (peer if expected == "peer" else expected)


async def log_in(call: Call, name: str, password: str, client: str) -> int:
    """One login through the form as a browser sends it (CSRF cookie and field); the status."""
    url = f"{call.bridge.url}/console/login"
    jar = aiohttp.CookieJar(unsafe=True)  # its own cookies, and for an IP address
    async with aiohttp.ClientSession(cookie_jar=jar) as browser:
        async with browser.get(url) as page:
            match = CSRF.search(await page.text())
            assert match is not None
        form = {"name": name, "password": password, "csrf": match[1], "next": "/console"}
        headers = {"Fly-Client-IP": client}
        async with browser.post(url, data=form, headers=headers, allow_redirects=False) as r:
            return r.status


async def failures_then_others(call: Call) -> tuple[int, int]:
    """MAX_FAILURES wrong logins from one client (under other names, so only the per-address
    limit counts), then the right login from that client and from another."""
    store = call.bridge.app[STORE]
    assert isinstance(store, SqlCallStore)
    assert await Accounts(store).add(OPERATOR, PASSWORD)
    for i in range(MAX_FAILURES):
        assert await log_in(call, f"mallory{i}", "guess", "203.0.113.5") == 401
    same = await log_in(call, OPERATOR, PASSWORD, "203.0.113.5")
    other = await log_in(call, OPERATOR, PASSWORD, "198.51.100.7")
    return same, other


async def test_behind_a_proxy_one_clients_failures_do_not_lock_out_another(
    start_call: StartCall,
) -> None:
    call = await start_call(CLIENT_IP_HEADER="Fly-Client-IP")
    assert await failures_then_others(call) == (429, 303)


async def test_without_the_setting_the_header_is_ignored(start_call: StartCall) -> None:
    """Reached directly, the header proves nothing: the limit stays on the TCP peer."""
    call = await start_call()
    assert await failures_then_others(call) == (429, 429)

"""The shared REST request (``vonage_bridge.rest.request_json``) against a loopback server:
bodies and headers sent, answers parsed, and every failure mapped onto the error tree."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from vonage_bridge.errors import (
    BridgeError,
    TwilioApiError,
    UpstreamError,
    UpstreamTimeout,
    VonageApiError,
)
from vonage_bridge.rest import JsonReply, RestApi, request_json


@dataclass
class Seen:
    """What the loopback server received, and the event that releases its slow route."""

    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)


SEEN = web.AppKey("seen", Seen)


async def _echo(request: web.Request) -> web.Response:
    seen = request.app[SEEN]
    body = await request.read()
    seen.requests.append((request.method, request.path, dict(request.headers), body))
    kind = request.match_info["kind"]
    if kind == "json":
        return web.json_response({"ok": True, "n": 1}, status=201)
    if kind == "empty":
        return web.Response(status=204)
    if kind == "text":
        return web.Response(text="<html>not json</html>", status=200)
    if kind == "error":
        return web.json_response({"title": "Bad Request", "detail": "nope"}, status=400)
    if kind == "multiple":
        return web.Response(status=300, text="choose")
    if kind == "slow":
        await seen.release.wait()  # released when the test ends, never by a clock
        return web.Response(status=204)
    raise web.HTTPNotFound()


@pytest.fixture
async def server(aiohttp_server: AiohttpServer) -> AsyncIterator[tuple[str, Seen]]:
    app = web.Application()
    app[SEEN] = seen = Seen()
    app.router.add_route("*", "/{kind}", _echo)
    test_server = await aiohttp_server(app)
    yield str(test_server.make_url("")).rstrip("/"), seen
    seen.release.set()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Refused(BridgeError):
    def __init__(self, reply: JsonReply) -> None:
        super().__init__(f"refused with HTTP {reply.status}")
        self.reply = reply


async def call(http: aiohttp.ClientSession, url: str, **kwargs: object) -> JsonReply:
    options: dict[str, object] = {
        "what": "Test fetch",
        "service": "the test API",
        "timeout_s": 5.0,
        "headers": {"Authorization": "Bearer t0k", "Accept": "application/json"},
        "refused": Refused,
    }
    options.update(kwargs)
    return await request_json(http, "POST", url, **options)  # type: ignore[arg-type]


async def test_json_body_and_headers_are_sent_and_the_answer_parsed(
    server: tuple[str, Seen], http: aiohttp.ClientSession
) -> None:
    base, seen = server
    reply = await call(http, f"{base}/json", json={"action": "hangup"})
    assert (reply.status, reply.data, reply.ok) == (201, {"ok": True, "n": 1}, True)
    method, path, headers, body = seen.requests[0]
    assert (method, path, body) == ("POST", "/json", b'{"action": "hangup"}')
    assert headers["Authorization"] == "Bearer t0k"
    assert headers["Content-Type"] == "application/json"


async def test_form_body_is_url_encoded(
    server: tuple[str, Seen], http: aiohttp.ClientSession
) -> None:
    base, seen = server
    await call(http, f"{base}/json", form={"Twiml": "<Response/>", "Status": "completed"})
    _, _, headers, body = seen.requests[0]
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert body == b"Twiml=%3CResponse%2F%3E&Status=completed"


async def test_no_body_is_sent_without_json_or_form(
    server: tuple[str, Seen], http: aiohttp.ClientSession
) -> None:
    base, seen = server
    reply = await call(http, f"{base}/empty")
    assert (reply.status, reply.data, reply.text) == (204, None, "")
    assert seen.requests[0][3] == b""


async def test_a_body_that_is_not_json_gives_data_none_and_keeps_the_text(
    server: tuple[str, Seen], http: aiohttp.ClientSession
) -> None:
    base, _ = server
    reply = await call(http, f"{base}/text")
    assert reply.data is None
    assert reply.text == "<html>not json</html>"


@pytest.mark.parametrize(("kind", "status"), [("error", 400), ("multiple", 300)])
async def test_a_status_outside_2xx_raises_the_callers_error_with_the_reply(
    server: tuple[str, Seen], http: aiohttp.ClientSession, kind: str, status: int
) -> None:
    base, _ = server
    with pytest.raises(Refused) as info:
        await call(http, f"{base}/{kind}")
    assert info.value.reply.status == status
    if kind == "error":
        assert info.value.reply.data == {"title": "Bad Request", "detail": "nope"}


async def test_no_answer_in_time_is_upstream_timeout_naming_the_action(
    server: tuple[str, Seen], http: aiohttp.ClientSession
) -> None:
    base, _ = server
    with pytest.raises(UpstreamTimeout) as info:
        await call(http, f"{base}/slow", timeout_s=0.2, error=TwilioApiError, hint="; check X")
    assert info.value.message == "Test fetch: no answer from the test API within 0.2 s; check X"
    assert info.value.http_status == 504


async def test_unreachable_server_raises_the_callers_upstream_error(
    http: aiohttp.ClientSession,
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(VonageApiError) as info:
        await call(http, f"http://127.0.0.1:{port}/v1/calls", error=VonageApiError, hint="; hm")
    # The message may reach an API caller: what failed and the hint, no host, no exception;
    # the aiohttp error is kept as the cause, for the log.
    assert info.value.message == "Test fetch: the test API unreachable; hm"
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectionError)
    assert str(port) in str(info.value.__cause__)
    assert info.value.status is None


async def test_unreachable_server_defaults_to_upstream_error(http: aiohttp.ClientSession) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UpstreamError) as info:
        await call(http, f"http://127.0.0.1:{port}/x")
    assert type(info.value) is UpstreamError


async def test_json_and_form_together_are_refused_before_sending(
    server: tuple[str, Seen], http: aiohttp.ClientSession
) -> None:
    base, seen = server
    with pytest.raises(ValueError, match="not both"):
        await call(http, f"{base}/json", json={"a": 1}, form={"a": "1"})
    assert seen.requests == []


def _problem_body(data: Any) -> tuple[str, dict[str, Any]]:
    title = data.get("title") if isinstance(data, dict) else None
    return title or "no error detail", {"title": title, "detail": None}


async def test_rest_api_sends_through_request_json_and_reads_refusals_alike(
    server: tuple[str, Seen], http: aiohttp.ClientSession
) -> None:
    base, seen = server
    api = RestApi(http, "Acme", "the Acme API", 5.0, VonageApiError, _problem_body)
    reply = await api.request("PUT", f"{base}/json", "hang up", headers={}, json={"a": 1})
    assert reply.status == 201 and seen.requests[0][:2] == ("PUT", "/json")
    with pytest.raises(VonageApiError) as info:
        await api.request("POST", f"{base}/error", "transfer", headers={})
    exc = info.value
    assert exc.message == "Acme transfer failed (HTTP 400): Bad Request"
    assert (exc.status, exc.title, exc.detail) == (400, "Bad Request", None)

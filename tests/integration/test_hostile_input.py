"""Hostile input against the real app on loopback (security hardening).

Every test here reproduces a hole a hostile probe found. What must hold for every refusal: a
4xx JSON body naming the problem (on a media socket: the message dropped and counted, the call
going on; a first message closes the socket with a code and a reason), one log line at INFO
without a traceback, nothing secret or personal in the log, never a 5xx.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import WSCloseCode, web
from aiohttp.test_utils import TestClient, TestServer
from support import SECOND, StartCall
from test_outbound import API_KEY, APP_ID, pkcs8_pem
from test_twilio_call import ACCOUNT_SID, AUTH_TOKEN, TwilioCall, no_live_calls
from test_twilio_call import speech as mulaw_speech
from test_vonage_call import connected, speech
from test_webhooks import websocket_endpoint

from vonage_bridge.logs import LIBRARY_LOGGERS, LibraryLogFilter, redact_library_logs
from vonage_bridge.sim.openai_sip import TEST_WEBHOOK_SECRET, signed_headers
from vonage_bridge.sim.realtime import FakeRealtimeOptions
from vonage_bridge.sim.twilio_api import FakeTwilioApi
from vonage_bridge.store import SqlCallStore
from vonage_bridge.web.keys import STORE, WARM_SESSIONS
from vonage_bridge.web.middleware import json_errors

VONAGE_SECRET = "vonage-signature-secret-for-tests-0123456789"
DEEP = "[" * 3000 + "]" * 3000
"""3,000 nested arrays: deeper than ``json.loads`` can recurse (``RecursionError``)."""
NOT_DEFLATE = b"this body is not deflate data"


class LogEvent(logging.Handler):
    """Sets ``event`` once a record whose message contains ``text`` is logged."""

    def __init__(self, text: str, event: asyncio.Event) -> None:
        super().__init__()
        self.text = text
        self.event = event

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


def all_doors(**extra: str) -> dict[str, str]:
    """Settings with every front door and ``POST /connect`` on (their upstreams unreachable:
    nothing here may get that far)."""
    return {
        "OPENAI_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_URL": "http://127.0.0.1:9",
        "CONNECT_API_KEY": API_KEY,
        "VONAGE_APPLICATION_ID": APP_ID,
        "VONAGE_PRIVATE_KEY": pkcs8_pem(),
        "VONAGE_API_URL": "http://127.0.0.1:9",
        **extra,
    }


@pytest.fixture
def redacted() -> Iterator[None]:
    """aiohttp's loggers filtered as ``setup_logging`` filters them; undone afterwards."""
    redact_library_logs()
    yield
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        for f in [f for f in logger.filters if isinstance(f, LibraryLogFilter)]:
            logger.removeFilter(f)


@pytest.fixture
async def twilio(start_call: StartCall) -> AsyncIterator[TwilioCall]:
    async with FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN) as api:
        env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN}
        yield TwilioCall(await start_call(TWILIO_API_URL=api.base_url, **env), api)


def problems(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Records a client's mistake must never cause: WARNING or worse, or a traceback."""
    return [
        f"{r.levelname} {r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.WARNING or r.exc_info or r.exc_text
    ]


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What was logged at INFO or above."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]


def summary(caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    found = [r for r in caplog.records if r.getMessage().startswith("call summary")]
    assert len(found) == 1
    values: dict[str, Any] = found[0].summary  # type: ignore[attr-defined]
    return values


async def raw_exchange(port: int, request: bytes) -> tuple[int, bytes]:
    """Send ``request`` as is on a new connection; read the answer to EOF (the request asks to
    close, so at EOF the server has finished with it, its logging included)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(5 * SECOND):
            answer = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def raw_post(path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{head}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1") + body


# --- 1. malformed bodies: a 4xx, never a 5xx ------------------------------------------------

BODY_ROUTES = {
    "/incoming-call": "application/json",
    "/answer": "application/json",
    "/event": "application/json",
    "/openai/webhook": "application/json",
    "/twilio/incoming-call": "application/x-www-form-urlencoded",
    "/connect": "application/json",
}


@pytest.mark.parametrize("vonage_signed", [False, True], ids=["unsigned", "signed"])
async def test_undecodable_content_encoding_is_a_400_on_every_route_with_a_body(
    start_call: StartCall,
    caplog: pytest.LogCaptureFixture,
    redacted: None,
    vonage_signed: bool,
) -> None:
    """Garbage under ``Content-Encoding: deflate`` was a 500 and an ERROR traceback (twice:
    the handler's, then aiohttp's own when it drained the body)."""
    extra = {"VONAGE_SIGNATURE_SECRET": VONAGE_SECRET} if vonage_signed else {}
    call = await start_call(**all_doors(**extra))
    for path, content_type in BODY_ROUTES.items():
        caplog.clear()
        headers = {
            "Content-Type": content_type,
            "Content-Encoding": "deflate",
            "X-API-Key": API_KEY,  # POST /connect reads its body after the key check
        }
        with caplog.at_level(logging.INFO):
            status, body = await raw_exchange(
                call.bridge.port, raw_post(path, NOT_DEFLATE, headers)
            )
        assert status == 400, (path, body)
        error = json.loads(body)["error"]
        assert error["code"] == "unreadable_body", path
        assert "deflate" in error["message"]
        assert problems(caplog) == [], path
        logged = lines(caplog)
        assert len(logged) == 1 and path in logged[0] and "400" in logged[0], (path, logged)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"CallSid=CA1&From=%2B1415\xff"),
        ("application/x-www-form-urlencoded; charset=no-such-codec", b"CallSid=CA1"),
        ("multipart/form-data; boundary=x", b"--x\r\nbroken"),
        ("multipart/form-data; boundary=x", b"--y\r\n\r\nvalue\r\n--y--\r\n"),
    ],
    ids=["not-utf8", "unknown-charset", "broken-part", "wrong-boundary"],
)
async def test_twilio_webhook_form_that_cannot_be_parsed_is_a_400(
    start_call: StartCall,
    caplog: pytest.LogCaptureFixture,
    redacted: None,
    content_type: str,
    body: bytes,
) -> None:
    """``request.post()`` raised UnicodeDecodeError, LookupError, ValueError or aiohttp's
    InvalidHeader before the signature was checked: a 500 with a traceback."""
    call = await start_call(**all_doors())
    caplog.clear()
    with caplog.at_level(logging.INFO):
        async with call.http.post(
            call.bridge.url + "/twilio/incoming-call",
            data=body,
            headers={"Content-Type": content_type},
        ) as resp:
            status, answer = resp.status, await resp.json()
    assert status == 400
    assert answer["error"]["code"] == "invalid_form"
    assert problems(caplog) == []
    logged = lines(caplog)
    assert len(logged) == 1 and "invalid_form" in logged[0]


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/incoming-call", "invalid_json"),
        ("/event", "invalid_json"),
        ("/openai/webhook", "invalid_event"),
        ("/connect", "invalid_json"),
    ],
)
async def test_json_nested_thousands_deep_is_a_400(
    start_call: StartCall,
    caplog: pytest.LogCaptureFixture,
    path: str,
    code: str,
) -> None:
    """``json.loads`` raised RecursionError (not a ValueError): a 500 with a traceback."""
    call = await start_call(**all_doors())
    body = DEEP.encode()
    headers = {"Content-Type": "application/json"}
    if path == "/openai/webhook":
        headers = signed_headers(TEST_WEBHOOK_SECRET, body)  # parsed only once verified
    if path == "/connect":
        body = b"[" * 2000 + b"]" * 2000  # within its 4 KiB body limit
        headers["X-API-Key"] = API_KEY
    caplog.clear()
    with caplog.at_level(logging.INFO):
        async with call.http.post(call.bridge.url + path, data=body, headers=headers) as resp:
            status, answer = resp.status, await resp.json()
    assert status == 400
    assert answer["error"]["code"] == code
    assert problems(caplog) == []
    assert len(lines(caplog)) == 1


async def test_vonage_media_message_nested_deep_is_dropped_and_the_call_goes_on(
    start_call: StartCall, caplog: pytest.LogCaptureFixture
) -> None:
    """Mid-call, the RecursionError ended the call with 1011."""
    call = await start_call()
    caller, rt = await connected(call)
    ws = caller._ws  # the raw socket, to send what a broken peer would
    assert ws is not None
    caplog.clear()
    with caplog.at_level(logging.INFO):
        await ws.send_str(DEEP)
        await caller.stream_audio(speech(800), realtime=True)
        await caller.stream_silence(900)
        await rt.wait_responses_done(1, timeout=10 * SECOND)
        await caller.hang_up()
        await no_live_calls(call)
    result = summary(caplog)
    assert result["end_reason"].startswith("caller hung up")
    assert result["bad_frames"] == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == ["dropping bad caller message: JSON nested deeper than 32 levels"]


async def test_twilio_media_message_nested_deep_is_dropped_and_the_call_goes_on(
    twilio: TwilioCall, caplog: pytest.LogCaptureFixture
) -> None:
    caller, rt = await twilio.connected()
    ws = caller._ws
    assert ws is not None
    caplog.clear()
    with caplog.at_level(logging.INFO):
        await ws.send_str(DEEP)
        await caller.stream_audio(mulaw_speech(800), realtime=True)
        await caller.stream_silence(900)
        await rt.wait_responses_done(1, timeout=10 * SECOND)
        await caller.hang_up()
        await no_live_calls(twilio.call)
    result = summary(caplog)
    assert "stream stopped" in result["end_reason"]
    assert result["bad_frames"] == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == ["dropping bad caller message: JSON nested deeper than 32 levels"]


async def test_vonage_first_message_nested_deep_closes_the_socket_with_a_reason(
    start_call: StartCall, caplog: pytest.LogCaptureFixture
) -> None:
    call = await start_call()
    caller = call.caller()
    uri = str(websocket_endpoint(await caller.answer())["uri"])
    with caplog.at_level(logging.INFO):
        async with call.http.ws_connect(uri) as ws:
            await ws.send_str(DEEP)
            msg = await ws.receive(timeout=5 * SECOND)
        await no_live_calls(call)
    assert msg.type is aiohttp.WSMsgType.CLOSE
    assert msg.data == WSCloseCode.UNSUPPORTED_DATA
    assert msg.extra == "JSON nested deeper than 32 levels"
    # The answer URL's warm session is the only one: not adopted by the refused socket
    # (it expires unused), no audio on it, and the socket opened none of its own.
    warm = await call.fake.wait_for_session(timeout=5 * SECOND)
    assert call.fake.sessions == [warm]
    assert warm.append_count == 0
    assert caller.call_uuid in call.bridge.app[WARM_SESSIONS]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
    assert urlsplit(uri).path == "/vonage/ws"


async def test_middleware_keeps_http_errors_and_hides_unexpected_ones() -> None:
    """aiohttp's own HTTP errors keep their status and headers (as JSON); anything else is a
    500 JSON body that says nothing about the exception."""

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret detail in an exception message")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/elsewhere")

    async def refuse(request: web.Request) -> web.Response:
        raise web.HTTPTooManyRequests(headers={"Retry-After": "7"})

    app = web.Application(middlewares=[json_errors])
    app.router.add_get("/boom", boom)
    app.router.add_get("/moved", moved)
    app.router.add_post("/refuse", refuse)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/boom")
        assert resp.status == 500
        text = await resp.text()
        assert json.loads(text) == {
            "error": {"code": "internal_error", "message": "internal error (see server log)"}
        }
        assert "secret" not in text and "Traceback" not in text
        resp = await client.get("/moved", allow_redirects=False)
        assert (resp.status, resp.headers["Location"]) == (302, "/elsewhere")
        resp = await client.post("/refuse")
        assert (resp.status, resp.headers["Retry-After"]) == (429, "7")
        assert (await resp.json())["error"]["code"] == "too_many_requests"
        resp = await client.get("/refuse")
        assert resp.status == 405 and resp.headers["Allow"] == "POST"


# --- 2. credentials and numbers never reach the log -----------------------------------------

SECRET_HEAD = "Sk7-head-0123456789"
SECRET_TAIL = "Sk7-tail-9876543210"


@pytest.mark.parametrize(
    "request_bytes",
    [
        f"X-API-Key: {SECRET_HEAD}\x00{SECRET_TAIL}",
        f"Authorization: Bearer {SECRET_HEAD}\x00{SECRET_TAIL}",
        f"Authorization: Bearer {SECRET_HEAD}\r{SECRET_TAIL}",
        f"X-API-Key: {SECRET_HEAD}{'x' * 9000}{SECRET_TAIL}",
        "?token=" + SECRET_HEAD + "\x00" + SECRET_TAIL,
    ],
    ids=["nul-api-key", "nul-authorization", "bare-cr", "too-long", "query-token"],
)
async def test_a_request_line_aiohttp_rejects_never_puts_its_secret_in_the_log(
    start_call: StartCall,
    caplog: pytest.LogCaptureFixture,
    redacted: None,
    request_bytes: str,
) -> None:
    """aiohttp's parser logged the rejected line whole, at ERROR with a traceback."""
    call = await start_call()
    if request_bytes.startswith("?"):
        request = f"GET /health{request_bytes} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    else:
        request = f"GET /health HTTP/1.1\r\nHost: x\r\n{request_bytes}\r\nConnection: close\r\n\r\n"
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        status, _ = await raw_exchange(call.bridge.port, request.encode("latin-1"))
    assert status == 400
    assert SECRET_HEAD not in caplog.text and SECRET_TAIL not in caplog.text
    assert problems(caplog) == []
    logged = lines(caplog)
    assert len(logged) == 1 and "bad HTTP request" in logged[0], logged


async def test_a_failed_record_write_logs_the_call_id_and_error_class_only(
    start_call: StartCall, caplog: pytest.LogCaptureFixture
) -> None:
    """The SQL error's text (statement and parameters: the caller's number) was logged."""
    call = await start_call(FakeRealtimeOptions(reject_status=401))
    store = call.bridge.app[STORE]
    assert isinstance(store, SqlCallStore)
    async with store.engine.begin() as conn:  # every insert into calls fails
        await conn.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON calls BEGIN SELECT RAISE(ABORT, 'no'); END"
        )
    caller = call.caller()
    await caller.answer()  # logs the numbers on purpose (not a refusal): not under test
    caplog.clear()
    with caplog.at_level(logging.INFO):
        await caller.connect()
        await caller.wait_closed(timeout=10 * SECOND)
        await no_live_calls(call)
    failed = [r for r in caplog.records if "not written" in r.getMessage()]
    assert len(failed) == 1
    assert failed[0].getMessage() == (
        f"call record of {caller.call_uuid} not written: IntegrityError"
    )
    assert failed[0].exc_info is None
    assert caller.from_number not in caplog.text and caller.to_number not in caplog.text


# --- 3. no log amplification ----------------------------------------------------------------


async def test_thousands_of_unknown_caller_events_make_one_warning_and_a_count(
    start_call: StartCall, caplog: pytest.LogCaptureFixture
) -> None:
    """Each distinct unknown event name was warned about once: 2,000 names, 2,000 lines."""
    call = await start_call()
    caller, rt = await connected(call)
    ws = caller._ws
    assert ws is not None
    # The speech below must reach the bridge at real time: wait until it has read the probes
    # (the last one is logged), or a backlog read in a burst would be policed as too fast.
    read_all = asyncio.Event()
    seen = LogEvent("text message is not JSON", read_all)
    caplog.clear()
    logging.getLogger().addHandler(seen)
    try:
        with caplog.at_level(logging.INFO):
            for i in range(2000):
                await ws.send_str(json.dumps({"event": f"websocket:probe-{i}"}))
            await ws.send_str("not json")
            async with asyncio.timeout(5 * SECOND):
                await read_all.wait()
            await caller.stream_audio(speech(800), realtime=True)
            await caller.stream_silence(900)
            await rt.wait_responses_done(1, timeout=10 * SECOND)
            await caller.hang_up()
            await no_live_calls(call)
    finally:
        logging.getLogger().removeHandler(seen)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        "ignoring caller event 'websocket:probe-0' (and any other unknown event: counted)",
        "dropping bad caller message: text message is not JSON",
    ]
    result = summary(caplog)
    assert result["bad_caller_messages"] == 2001
    assert result["bad_frames"] == 1


async def test_refused_requests_are_one_info_line_each(
    start_call: StartCall, caplog: pytest.LogCaptureFixture, redacted: None
) -> None:
    """A burst of client mistakes: no WARNING, no ERROR, no traceback; one line each."""
    call = await start_call(**all_doors())
    url = call.bridge.url
    sent = 0
    caplog.clear()
    with caplog.at_level(logging.INFO):
        for _ in range(20):
            for path, data in (
                ("/incoming-call", b"{not json"),
                ("/event", b"[1, 2]"),
                ("/connect", b"{}"),  # no API key
                ("/openai/webhook", b"{}"),  # not signed
                ("/no-such-path", b""),
            ):
                async with call.http.post(url + path, data=data) as resp:
                    assert 400 <= resp.status < 500, (path, resp.status)
                    assert "error" in await resp.json()
                sent += 1
    assert problems(caplog) == []
    assert len(lines(caplog)) == sent

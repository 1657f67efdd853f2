"""Twilio REST client (``twilio_api``) against the fake Twilio REST server
(``sim/twilio_api``) on 127.0.0.1: hang-up, already-ended calls, bad credentials, transfer
TwiML, timeouts, and the at-most-once hang-up."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest

from vonage_bridge.config import TwilioSettings
from vonage_bridge.errors import InvalidRequest, TwilioApiError, UpstreamError, UpstreamTimeout
from vonage_bridge.sim.twilio_api import (
    FakeTwilioApi,
    FakeTwilioApiOptions,
    new_account_sid,
    new_call_sid,
)
from vonage_bridge.twilio.rest import TwilioApi, TwilioHangUp, check_call_sid

TOKEN = "twilio-auth-token-0123456789abcdef"
ACCOUNT = new_account_sid()
TIMEOUT_S = 5.0
TRANSFER_TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Dial>+14155550123</Dial></Response>'
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilioApi]:
    async with FakeTwilioApi(account_sid=ACCOUNT, auth_token=TOKEN) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def settings_for(
    fake: FakeTwilioApi, *, token: str = TOKEN, timeout_s: float = TIMEOUT_S
) -> TwilioSettings:
    return TwilioSettings(
        account_sid=ACCOUNT, auth_token=token, api_url=fake.base_url, api_timeout_s=timeout_s
    )


async def test_hang_up_posts_status_completed_with_basic_auth(
    fake: FakeTwilioApi, http: aiohttp.ClientSession
) -> None:
    call_sid = fake.add_call()
    api = TwilioApi(http, settings_for(fake))
    assert await api.hang_up(call_sid) is True
    request = await fake.wait_hangup(call_sid, TIMEOUT_S)
    assert request.fields == {"Status": "completed"}
    assert fake.calls[call_sid] == "completed"
    assert fake.refused == []


async def test_hang_up_of_an_unknown_call_is_already_ended_not_an_error(
    fake: FakeTwilioApi, http: aiohttp.ClientSession
) -> None:
    call_sid = new_call_sid()  # never registered: the fake answers 404 / 20404
    api = TwilioApi(http, settings_for(fake))
    assert await api.hang_up(call_sid) is False
    assert [r.call_sid for r in fake.requests] == [call_sid]


async def test_hang_up_with_wrong_auth_token_raises_naming_twilio_and_401(
    fake: FakeTwilioApi, http: aiohttp.ClientSession
) -> None:
    call_sid = fake.add_call()
    api = TwilioApi(http, settings_for(fake, token="wrong-token-0123456789abcdef0123"))
    with pytest.raises(TwilioApiError) as info:
        await api.hang_up(call_sid)
    assert info.value.status == 401
    assert info.value.twilio_code == 20003
    assert "Twilio hang up failed (HTTP 401)" in info.value.message
    assert isinstance(info.value, UpstreamError) and info.value.http_status == 502
    assert fake.refused and fake.requests == []
    assert fake.calls[call_sid] == "in-progress"


async def test_hang_up_server_error_raises(
    fake: FakeTwilioApi, http: aiohttp.ClientSession
) -> None:
    fake.options = FakeTwilioApiOptions(update_status=500)
    call_sid = fake.add_call()
    with pytest.raises(TwilioApiError) as info:
        await TwilioApi(http, settings_for(fake)).hang_up(call_sid)
    assert info.value.status == 500
    assert not info.value.call_gone


async def test_update_twiml_sends_the_transfer_twiml_as_a_form_field(
    fake: FakeTwilioApi, http: aiohttp.ClientSession
) -> None:
    call_sid = fake.add_call()
    await TwilioApi(http, settings_for(fake)).update_twiml(call_sid, TRANSFER_TWIML)
    request = await fake.wait_request(call_sid, TIMEOUT_S)
    assert request.fields == {"Twiml": TRANSFER_TWIML}
    assert fake.calls[call_sid] == "in-progress"


async def test_update_twiml_of_an_ended_call_raises_call_gone(
    fake: FakeTwilioApi, http: aiohttp.ClientSession
) -> None:
    call_sid = fake.add_call()
    api = TwilioApi(http, settings_for(fake))
    assert await api.hang_up(call_sid) is True
    with pytest.raises(TwilioApiError) as info:
        await api.update_twiml(call_sid, TRANSFER_TWIML)
    assert info.value.status == 400
    assert info.value.twilio_code == 21220
    assert info.value.call_gone


@pytest.mark.parametrize(
    "call_sid",
    [
        "",
        "CA123",
        "AC" + "0" * 32,
        "CA" + "g" * 32,
        "CA" + "0" * 32 + "/../../Accounts",
        "../CA" + "0" * 32,
        "CA" + "0" * 31 + "\n",
    ],
)
async def test_bad_call_sid_is_refused_before_any_request(
    fake: FakeTwilioApi, http: aiohttp.ClientSession, call_sid: str
) -> None:
    api = TwilioApi(http, settings_for(fake))
    with pytest.raises(InvalidRequest) as info:
        await api.hang_up(call_sid)
    assert info.value.code == "bad_call_sid"
    with pytest.raises(InvalidRequest):
        await api.update_twiml(call_sid, TRANSFER_TWIML)
    assert fake.requests == [] and fake.refused == []


def test_check_call_sid_accepts_a_real_shape() -> None:
    sid = "CA" + "0123456789abcdef" * 2
    assert check_call_sid(sid) == sid


async def test_empty_twiml_is_refused_before_any_request(
    fake: FakeTwilioApi, http: aiohttp.ClientSession
) -> None:
    call_sid = fake.add_call()
    with pytest.raises(InvalidRequest):
        await TwilioApi(http, settings_for(fake)).update_twiml(call_sid, "  ")
    assert fake.requests == []


async def test_slow_twilio_raises_upstream_timeout(
    fake: FakeTwilioApi, http: aiohttp.ClientSession
) -> None:
    fake.options = FakeTwilioApiOptions(update_delay_s=30.0)  # released when the fake closes
    call_sid = fake.add_call()
    with pytest.raises(UpstreamTimeout) as info:
        await TwilioApi(http, settings_for(fake, timeout_s=0.2)).hang_up(call_sid)
    assert "Twilio hang up" in info.value.message


async def test_unreachable_twilio_raises_without_status(http: aiohttp.ClientSession) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = TwilioSettings(
        account_sid=ACCOUNT, auth_token=TOKEN, api_url=f"http://127.0.0.1:{port}"
    )
    with pytest.raises(TwilioApiError) as info:
        await TwilioApi(http, settings).hang_up(new_call_sid())
    assert info.value.status is None


def test_twilio_api_needs_account_sid_and_token() -> None:
    with pytest.raises(ValueError, match="TWILIO_AUTH_TOKEN"):
        TwilioApi(None, TwilioSettings(account_sid=ACCOUNT))  # type: ignore[arg-type]


async def test_twilio_hang_up_runs_at_most_once(
    fake: FakeTwilioApi, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    call_sid = fake.add_call()
    hang_up = TwilioHangUp(TwilioApi(http, settings_for(fake)), call_sid)
    with caplog.at_level(logging.INFO, logger="vonage_bridge.twilio.rest"):
        assert await hang_up("end_call tool") is True
        assert await hang_up("shutdown") is True
    assert hang_up.done
    assert len(fake.hangups(call_sid)) == 1
    assert len(fake.requests) == 1
    assert [r.getMessage() for r in caplog.records] == [
        "hung up the call over Twilio REST (end_call tool)"
    ]


async def test_twilio_hang_up_of_an_ended_call_logs_info_and_succeeds(
    fake: FakeTwilioApi, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    hang_up = TwilioHangUp(TwilioApi(http, settings_for(fake)), new_call_sid())
    with caplog.at_level(logging.INFO, logger="vonage_bridge.twilio.rest"):
        assert await hang_up("realtime failed") is True
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, "Twilio call had already ended (realtime failed)")
    ]


async def test_twilio_hang_up_failure_is_logged_not_raised(
    fake: FakeTwilioApi, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    call_sid = fake.add_call()
    api = TwilioApi(http, settings_for(fake, token="wrong-token-0123456789abcdef0123"))
    hang_up = TwilioHangUp(api, call_sid)
    with caplog.at_level(logging.WARNING, logger="vonage_bridge.twilio.rest"):
        assert await hang_up("end_call tool") is False
        assert await hang_up("shutdown") is True  # not retried
    assert len(fake.refused) == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "HTTP 401" in warnings[0].getMessage()
    assert TOKEN not in caplog.text


async def test_twilio_hang_up_with_bad_call_sid_is_logged_not_raised(
    fake: FakeTwilioApi, http: aiohttp.ClientSession
) -> None:
    hang_up = TwilioHangUp(TwilioApi(http, settings_for(fake)), "not-a-sid")
    assert await hang_up("end_call tool") is False
    assert fake.requests == []


async def test_fake_refuses_a_form_without_status_or_twiml(
    fake: FakeTwilioApi, http: aiohttp.ClientSession
) -> None:
    call_sid = fake.add_call()
    url = f"{fake.base_url}/2010-04-01/Accounts/{ACCOUNT}/Calls/{call_sid}.json"
    auth = {"Authorization": aiohttp.encode_basic_auth(ACCOUNT, TOKEN)}
    async with http.post(url, data={"Foo": "bar"}, headers=auth) as resp:
        assert resp.status == 400
        assert (await resp.json())["code"] == 20001
    async with http.post(url, json={"Status": "completed"}, headers=auth) as resp:
        assert resp.status == 400
    async with http.post(url, data={"Status": "completed"}) as resp:
        assert resp.status == 401
        body = await resp.json()
        assert body["code"] == 20003 and body["message"] == "Authenticate"
        assert resp.headers["WWW-Authenticate"].startswith("Basic")
    assert fake.calls[call_sid] == "in-progress"

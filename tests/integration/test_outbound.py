"""Outbound calls (``POST /connect``) and REST hang-ups, on loopback against the fake Voice
API (``vonage_bridge.sim.vonage_api``).

Source: https://developer.vonage.com/en/api/voice ("Create an outbound call", "Modify an in
progress call")."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from support import SECOND, Call, StartCall
from test_tools_call import function_call

from vonage_bridge.config import Settings
from vonage_bridge.errors import ConfigError
from vonage_bridge.sim.realtime import FakeRealtimeOptions
from vonage_bridge.sim.vonage_api import (
    FakeVoiceApi,
    FakeVoiceApiOptions,
    application_test_key,
    vonage_error,
)
from vonage_bridge.web.keys import CALLS

APP_ID = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
API_KEY = "connect-key-for-tests"
FROM = "+815031023332"
TO = "+818012345678"


def pkcs8_pem() -> str:
    return (
        application_test_key()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


def pkcs1_pem() -> str:
    return (
        application_test_key()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        .decode()
    )


@pytest.fixture
async def voice_api() -> AsyncIterator[FakeVoiceApi]:
    api = FakeVoiceApi(application_test_key().public_key(), APP_ID)
    await api.start()
    yield api
    await api.close()


def vonage_env(api: FakeVoiceApi, **extra: str) -> dict[str, str]:
    env = {
        "VONAGE_APPLICATION_ID": APP_ID,
        "VONAGE_PRIVATE_KEY": pkcs8_pem(),
        "VONAGE_API_URL": api.base_url,
        "VONAGE_OUTBOUND_FROM": FROM,
        "CONNECT_API_KEY": API_KEY,
        "VONAGE_API_TIMEOUT_S": "5",
    }
    env.update(extra)
    return {k: v for k, v in env.items() if v}


async def post_connect(
    call: Call, body: Any, *, key: str | None = API_KEY
) -> tuple[int, dict[str, Any]]:
    headers = {"X-API-Key": key} if key is not None else {}
    kwargs: dict[str, Any] = {"data": body} if isinstance(body, str) else {"json": body}
    async with call.http.post(f"{call.bridge.url}/connect", headers=headers, **kwargs) as resp:
        return resp.status, await resp.json()


async def no_live_calls(call: Call) -> None:
    app = call.bridge.app
    tasks = [live.task for live in app[CALLS].values()]
    if tasks:
        await asyncio.wait(tasks, timeout=5 * SECOND)
    assert not app[CALLS]


# --- 201 ------------------------------------------------------------------------------------


async def test_connect_places_the_call_with_a_signed_jwt(
    start_call: StartCall, voice_api: FakeVoiceApi
) -> None:
    call = await start_call(**vonage_env(voice_api))
    status, body = await post_connect(call, {"to": TO, "from": "815031023399"})
    assert status == 201
    (created,) = voice_api.created
    assert body == {
        "uuid": created["uuid"],
        "status": "started",
        "direction": "outbound",
        "conversation_uuid": body["conversation_uuid"],
    }
    assert body["conversation_uuid"].startswith("CON-")
    sent = created["body"]
    assert sent["to"] == [{"type": "phone", "number": "818012345678"}]
    assert sent["from"] == {"type": "phone", "number": "815031023399"}
    assert sent["answer_url"] == [f"{call.bridge.url}/answer"]
    assert sent["event_url"] == [f"{call.bridge.url}/event"]
    assert "ncco" not in sent  # answer_url XOR ncco ("Create an outbound call")
    claims = created["claims"]
    assert claims["application_id"] == APP_ID
    assert claims["exp"] > claims["iat"]
    assert claims["jti"]
    assert voice_api.refused == []


async def test_connect_from_defaults_to_vonage_outbound_from(
    start_call: StartCall, voice_api: FakeVoiceApi
) -> None:
    call = await start_call(**vonage_env(voice_api))
    status, _ = await post_connect(call, {"to": "818012345678"})
    assert status == 201
    assert voice_api.created[0]["body"]["from"] == {"type": "phone", "number": "815031023332"}


async def test_each_request_gets_a_fresh_jwt(
    start_call: StartCall, voice_api: FakeVoiceApi
) -> None:
    call = await start_call(**vonage_env(voice_api))
    for _ in range(2):
        assert (await post_connect(call, {"to": TO}))[0] == 201
    jtis = {c["claims"]["jti"] for c in voice_api.created}
    assert len(jtis) == 2


async def test_outbound_callee_is_bridged_like_an_inbound_caller(
    start_call: StartCall, voice_api: FakeVoiceApi
) -> None:
    """When the callee answers, Vonage fetches ``/answer`` for the new call uuid (the answer
    webhook: https://developer.vonage.com/en/voice/voice-api/webhook-reference)."""
    call = await start_call(**vonage_env(voice_api))
    status, body = await post_connect(call, {"to": TO})
    assert status == 201
    caller = call.caller(
        "/answer", call_uuid=body["uuid"], from_number="815031023332", to_number="818012345678"
    )
    ncco = await caller.answer()
    assert ncco[-1]["action"] == "connect"
    await caller.connect()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    await rt.wait_for_event("session.update")
    await caller.hang_up()
    await no_live_calls(call)


# --- 400 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"to": "08012345678"}, "to", "invalid_number"),
        ({"to": "+81 80"}, "to", "invalid_number"),
        ({"to": "+81 80 1234 5678 9012 3456"}, "to", "invalid_number"),
        ({"to": 818012345678}, "to", "invalid_number"),
        ({"to": TO, "from": "Vonage"}, "from", "invalid_number"),
        ({"to": TO, "from": "+0123"}, "from", "invalid_number"),
        ({"from": FROM}, "to", "missing_field"),
        ({}, "to", "missing_field"),
    ],
)
async def test_connect_bad_or_missing_number_is_400_naming_the_field(
    start_call: StartCall,
    voice_api: FakeVoiceApi,
    body: dict[str, Any],
    field: str,
    code: str,
) -> None:
    call = await start_call(**vonage_env(voice_api))
    status, answer = await post_connect(call, body)
    assert status == 400
    assert answer["error"]["code"] == code
    assert answer["error"]["field"] == field
    assert answer["error"]["message"].startswith(f"{field}:")
    assert voice_api.created == []


async def test_connect_missing_from_without_default_is_400(
    start_call: StartCall, voice_api: FakeVoiceApi
) -> None:
    call = await start_call(**vonage_env(voice_api, VONAGE_OUTBOUND_FROM=""))
    status, answer = await post_connect(call, {"to": TO})
    assert status == 400
    assert answer["error"]["field"] == "from"
    assert "VONAGE_OUTBOUND_FROM" in answer["error"]["message"]


@pytest.mark.parametrize("body", ["not json", "[1, 2]", '"+818012345678"', ""])
async def test_connect_body_that_is_not_a_json_object_is_400(
    start_call: StartCall, voice_api: FakeVoiceApi, body: str
) -> None:
    call = await start_call(**vonage_env(voice_api))
    status, answer = await post_connect(call, body)
    assert status == 400
    assert answer["error"]["code"] == "invalid_json"


# --- 401 / 403 / 503 ------------------------------------------------------------------------


async def test_connect_without_api_key_is_401(
    start_call: StartCall, voice_api: FakeVoiceApi
) -> None:
    call = await start_call(**vonage_env(voice_api))
    status, answer = await post_connect(call, {"to": TO}, key=None)
    assert status == 401
    assert answer["error"]["code"] == "api_key_missing"
    assert voice_api.created == []


@pytest.mark.parametrize("key", ["wrong", API_KEY + "x", API_KEY[:-1], "ключ"])
async def test_connect_with_wrong_api_key_is_403(
    start_call: StartCall, voice_api: FakeVoiceApi, key: str
) -> None:
    call = await start_call(**vonage_env(voice_api))
    async with call.http.post(
        f"{call.bridge.url}/connect",
        json={"to": TO},
        headers={"X-API-Key": key.encode().decode("latin-1")},
    ) as resp:
        assert resp.status == 403
        assert (await resp.json())["error"]["code"] == "api_key_invalid"
    assert voice_api.created == []


async def test_connect_is_503_when_connect_api_key_is_unset(
    start_call: StartCall, voice_api: FakeVoiceApi, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        call = await start_call(**vonage_env(voice_api, CONNECT_API_KEY=""))
    assert any("POST /connect is off" in r.getMessage() for r in caplog.records)
    status, answer = await post_connect(call, {"to": TO})
    assert status == 503
    assert answer["error"]["code"] == "connect_disabled"
    assert "CONNECT_API_KEY" in answer["error"]["message"]


async def test_connect_is_503_naming_missing_vonage_credentials(start_call: StartCall) -> None:
    call = await start_call(CONNECT_API_KEY=API_KEY)  # no application id, no key
    status, answer = await post_connect(call, {"to": TO, "from": FROM})
    assert status == 503
    assert answer["error"]["code"] == "vonage_not_configured"
    assert "VONAGE_APPLICATION_ID" in answer["error"]["message"]
    assert "VONAGE_PRIVATE_KEY" in answer["error"]["message"]


# --- 502 / 504 ------------------------------------------------------------------------------


async def test_connect_vonage_4xx_is_502_with_title_and_detail(
    start_call: StartCall, voice_api: FakeVoiceApi
) -> None:
    voice_api.options = FakeVoiceApiOptions(
        create_status=400,
        create_error=vonage_error(400, "Bad Request", "The to number is not valid"),
    )
    call = await start_call(**vonage_env(voice_api))
    status, answer = await post_connect(call, {"to": TO})
    assert status == 502
    error = answer["error"]
    assert error["code"] == "vonage_api_error"
    assert error["vonage"] == {
        "status": 400,
        "title": "Bad Request",
        "detail": "The to number is not valid",
    }
    assert "Bad Request" in error["message"] and "not valid" in error["message"]


async def test_connect_vonage_rejecting_our_jwt_is_502(start_call: StartCall) -> None:
    """A key that is not the application's: the fake refuses the JWT with 401."""
    other = FakeVoiceApi(application_test_key().public_key(), "another-application-id")
    await other.start()
    try:
        call = await start_call(**vonage_env(other))
        status, answer = await post_connect(call, {"to": TO})
    finally:
        await other.close()
    assert status == 502
    assert answer["error"]["vonage"]["status"] == 401
    assert other.refused and "application_id" in other.refused[0]


async def test_connect_vonage_5xx_is_502(start_call: StartCall, voice_api: FakeVoiceApi) -> None:
    voice_api.options = FakeVoiceApiOptions(create_status=503)
    call = await start_call(**vonage_env(voice_api))
    status, answer = await post_connect(call, {"to": TO})
    assert status == 502
    assert answer["error"]["vonage"]["status"] == 503


async def test_connect_vonage_timeout_is_504(
    start_call: StartCall, voice_api: FakeVoiceApi
) -> None:
    voice_api.options = FakeVoiceApiOptions(create_delay_s=30.0)
    call = await start_call(**vonage_env(voice_api, VONAGE_API_TIMEOUT_S="0.3"))
    async with asyncio.timeout(5 * SECOND):
        status, answer = await post_connect(call, {"to": TO})
    assert status == 504
    assert answer["error"]["code"] == "upstream_timeout"
    assert "0.3 s" in answer["error"]["message"]


async def test_connect_unreachable_vonage_is_502(
    start_call: StartCall, caplog: pytest.LogCaptureFixture
) -> None:
    api = FakeVoiceApi(application_test_key().public_key(), APP_ID)
    await api.start()
    url = api.base_url
    await api.close()  # nothing listens there any more
    call = await start_call(**{**vonage_env(api), "VONAGE_API_URL": url})
    with caplog.at_level(logging.INFO):
        status, answer = await post_connect(call, {"to": TO})
    assert status == 502
    error = answer["error"]
    assert error["code"] == "vonage_api_error"
    assert error["vonage"] == {"status": None, "title": None, "detail": None}
    assert "Vonage API unreachable" in error["message"]
    # No exception repr and nothing about our side of the network in the body.
    body = json.dumps(answer)
    port = url.rsplit(":", 1)[1].split("/")[0]
    for leak in ("Error", "ConnectionKey", "127.0.0.1", port, "ssl"):
        assert leak not in body, leak
    refused = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(refused) == 1 and refused[0].levelno == logging.WARNING
    for r in caplog.records:  # the number dialled is not logged
        assert TO.lstrip("+") not in r.getMessage()


# --- hang-up over REST ----------------------------------------------------------------------


async def test_realtime_failure_hangs_the_call_up_over_rest(
    start_call: StartCall, voice_api: FakeVoiceApi
) -> None:
    call = await start_call(FakeRealtimeOptions(reject_status=401), **vonage_env(voice_api))
    caller = call.caller()
    await caller.answer()
    await caller.connect()
    body = await voice_api.wait_hangup(caller.call_uuid, timeout=5 * SECOND)
    assert body == {"action": "hangup"}
    await caller.wait_closed(timeout=5 * SECOND)
    assert caller.close_code == 1011
    await no_live_calls(call)
    assert [u for u, _ in voice_api.hangups] == [caller.call_uuid]
    assert voice_api.refused == []


async def test_realtime_closing_the_session_hangs_the_call_up(
    start_call: StartCall, voice_api: FakeVoiceApi
) -> None:
    call = await start_call(**vonage_env(voice_api))
    caller = call.caller()
    await caller.answer()
    await caller.connect()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    await rt.wait_for_event("session.update")
    await rt.close(1000)
    assert await voice_api.wait_hangup(caller.call_uuid, timeout=5 * SECOND) == {"action": "hangup"}
    await no_live_calls(call)


async def test_transfer_tool_transfers_over_rest_with_the_called_number_as_caller_id(
    start_call: StartCall, voice_api: FakeVoiceApi
) -> None:
    """The model's ``transfer_call``: ``PUT /v1/calls/{uuid}`` with an inline NCCO whose
    ``connect`` shows the number the caller dialled (the SDK's ``Connect`` needs a ``from``)."""
    call = await start_call(**vonage_env(voice_api, TRANSFER_NUMBER="447700900123"))
    caller = call.caller(to_number="447700900555")
    await caller.answer()
    await caller.connect()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    await rt.wait_for_event("session.update")
    function_call(rt, "call_1", "transfer_call", {"reason": "wants a human"})
    body = await voice_api.wait_hangup(caller.call_uuid, timeout=5 * SECOND)
    assert body == {
        "action": "transfer",
        "destination": {
            "type": "ncco",
            "ncco": [
                {
                    "action": "connect",
                    "from": "447700900555",
                    "endpoint": [{"type": "phone", "number": "447700900123"}],
                }
            ],
        },
    }
    output = await rt.wait_for_event("conversation.item.create", timeout=5 * SECOND)
    assert output["item"]["call_id"] == "call_1"
    assert "transferred" in output["item"]["output"]
    await caller.hang_up()


async def test_caller_hang_up_is_not_hung_up_again_over_rest(
    start_call: StartCall, voice_api: FakeVoiceApi
) -> None:
    call = await start_call(**vonage_env(voice_api))
    caller = call.caller()
    await caller.answer()
    await caller.connect()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    await rt.wait_for_event("session.update")
    await caller.hang_up()
    await asyncio.wait_for(rt.closed.wait(), 5 * SECOND)
    await no_live_calls(call)  # cleanup (where a hang-up would happen) has finished
    assert voice_api.hangups == []


async def test_server_shutdown_hangs_live_calls_up(
    start_call: StartCall, voice_api: FakeVoiceApi
) -> None:
    call = await start_call(**vonage_env(voice_api))
    caller = call.caller()
    await caller.answer()
    await caller.connect()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    await rt.wait_for_event("session.update")
    await call.bridge.close()
    await caller.wait_closed(timeout=5 * SECOND)
    assert caller.close_code == 1001
    assert [u for u, _ in voice_api.hangups] == [caller.call_uuid]  # once, not twice


async def test_failed_hang_up_is_logged_and_the_call_still_ends_cleanly(
    start_call: StartCall, voice_api: FakeVoiceApi, caplog: pytest.LogCaptureFixture
) -> None:
    voice_api.options = FakeVoiceApiOptions(hangup_status=500)
    call = await start_call(FakeRealtimeOptions(reject_status=401), **vonage_env(voice_api))
    caller = call.caller()
    await caller.answer()
    with caplog.at_level(logging.INFO):
        await caller.connect()
        await caller.wait_closed(timeout=5 * SECOND)
        await no_live_calls(call)
    assert caller.close_code == 1011
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("Vonage hang-up failed" in m and "HTTP 500" in m for m in warnings)
    assert any("call summary" in r.getMessage() for r in caplog.records)


async def test_transfer_tool_transfers_the_vonage_call_through_its_call_control(
    start_call: StartCall, voice_api: FakeVoiceApi
) -> None:
    call = await start_call(**vonage_env(voice_api, TRANSFER_NUMBER="447700900123"))
    caller = call.caller()
    await caller.answer()
    await caller.connect()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    await rt.wait_for_event("session.update")
    item = {
        "id": "item_t",
        "type": "function_call",
        "status": "completed",
        "call_id": "call_t",
        "name": "transfer_call",
        "arguments": '{"reason": "wants a human"}',
    }
    rt._push("response.output_item.done", response_id="resp_x", output_index=0, item=item)
    body = await voice_api.wait_hangup(caller.call_uuid, timeout=5 * SECOND)  # the first PUT
    assert body["action"] == "transfer"
    (connect,) = body["destination"]["ncco"]
    assert connect["action"] == "connect"
    assert connect["endpoint"][0] == {"type": "phone", "number": "447700900123"}
    created = await rt.wait_for_event("conversation.item.create", timeout=5 * SECOND)
    assert "transferred" in created["item"]["output"]
    await caller.hang_up()
    await no_live_calls(call)


async def test_no_hang_up_without_vonage_credentials(start_call: StartCall) -> None:
    """Inbound calls work with no Vonage settings at all; ending them needs no REST."""
    call = await start_call(FakeRealtimeOptions(reject_status=401))
    caller = call.caller()
    await caller.answer()
    await caller.connect()
    await caller.wait_closed(timeout=5 * SECOND)
    assert caller.close_code == 1011
    await no_live_calls(call)


# --- settings -------------------------------------------------------------------------------

BASE_ENV = {
    "SERVER_URL": "https://bridge.example",
    "OPENAI_API_KEY": "sk-test",
    "ALLOW_UNSIGNED_WEBHOOKS": "true",
}


@pytest.mark.parametrize("pem", [pkcs8_pem, pkcs1_pem], ids=["pkcs8", "pkcs1"])
def test_private_key_loads_from_pkcs8_and_pkcs1_pem(pem: Any) -> None:
    settings = Settings.from_env(
        {**BASE_ENV, "VONAGE_APPLICATION_ID": APP_ID, "VONAGE_PRIVATE_KEY": pem()}
    )
    key = settings.vonage.private_key
    assert key is not None
    assert key.private_numbers() == application_test_key().private_numbers()
    assert settings.vonage.missing_for_rest == []


def test_private_key_accepts_literal_backslash_n_escapes() -> None:
    escaped = pkcs8_pem().replace("\n", "\\n")
    settings = Settings.from_env(
        {**BASE_ENV, "VONAGE_APPLICATION_ID": APP_ID, "VONAGE_PRIVATE_KEY": escaped}
    )
    assert settings.vonage.private_key is not None


@pytest.mark.parametrize("pem", [pkcs8_pem, pkcs1_pem], ids=["pkcs8", "pkcs1"])
def test_private_key_loads_from_a_path(tmp_path: Path, pem: Any) -> None:
    path = tmp_path / "private.key"
    path.write_text(pem())
    settings = Settings.from_env(
        {**BASE_ENV, "VONAGE_APPLICATION_ID": APP_ID, "VONAGE_PRIVATE_KEY_PATH": str(path)}
    )
    assert settings.vonage.private_key is not None


def test_the_loaded_key_signs_jwts_the_public_key_verifies() -> None:
    from vonage_bridge.vonage.app_jwt import application_jwt

    settings = Settings.from_env(
        {**BASE_ENV, "VONAGE_APPLICATION_ID": APP_ID, "VONAGE_PRIVATE_KEY": pkcs1_pem()}
    )
    assert settings.vonage.private_key is not None
    token = application_jwt(APP_ID, settings.vonage.private_key, 1_800_000_000.0, jti="j1")
    claims = jwt.decode(
        token,
        application_test_key().public_key(),
        algorithms=["RS256"],
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims == {
        "application_id": APP_ID,
        "iat": 1_800_000_000,
        "jti": "j1",
        "exp": 1_800_000_900,
    }
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "JWT"}


def test_vonage_settings_errors_name_every_bad_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(
            {
                **BASE_ENV,
                "VONAGE_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nnot a key\n",
                "VONAGE_API_URL": "ftp://api.nexmo.com",
                "VONAGE_OUTBOUND_FROM": "Vonage",
                "VONAGE_API_TIMEOUT_S": "soon",
            }
        )
    text = info.value.message
    assert "VONAGE_PRIVATE_KEY=***: not a PEM RSA private key" in text
    assert "VONAGE_API_URL" in text
    assert "VONAGE_OUTBOUND_FROM" in text
    assert "VONAGE_API_TIMEOUT_S" in text
    assert "not a key" not in text  # the secret's text is never shown
    with pytest.raises(ConfigError) as info:
        Settings.from_env(
            {
                **BASE_ENV,
                "VONAGE_APPLICATION_ID": APP_ID,
                "VONAGE_PRIVATE_KEY_PATH": str(tmp_path / "missing.key"),
            }
        )
    assert "VONAGE_PRIVATE_KEY_PATH" in info.value.message
    with pytest.raises(ConfigError) as info:
        Settings.from_env(
            {**BASE_ENV, "VONAGE_PRIVATE_KEY": pkcs8_pem(), "VONAGE_PRIVATE_KEY_PATH": "k.pem"}
        )
    assert "set only one" in info.value.message


def test_vonage_settings_are_optional_and_secrets_stay_out_of_repr() -> None:
    assert Settings.from_env(BASE_ENV).vonage.missing_for_rest == [
        "VONAGE_APPLICATION_ID",
        "VONAGE_PRIVATE_KEY or VONAGE_PRIVATE_KEY_PATH",
    ]
    # change_url.py's VONAGE_APPLICATION_ID alone does not stop the server: REST stays off.
    alone = Settings.from_env({**BASE_ENV, "VONAGE_APPLICATION_ID": APP_ID}).vonage
    assert alone.missing_for_rest == ["VONAGE_PRIVATE_KEY or VONAGE_PRIVATE_KEY_PATH"]
    settings = Settings.from_env(
        {
            **BASE_ENV,
            "VONAGE_APPLICATION_ID": APP_ID,
            "VONAGE_PRIVATE_KEY": pkcs8_pem(),
            "CONNECT_API_KEY": "connect-secret-value",
            "VONAGE_SIGNATURE_SECRET": "signature-secret-value",
        }
    )
    text = repr(settings)
    assert APP_ID in text
    for secret in ("connect-secret-value", "signature-secret-value", "RSAPrivateKey", "BEGIN"):
        assert secret not in text


async def test_http_session_is_shared(start_call: StartCall, voice_api: FakeVoiceApi) -> None:
    """The Voice API client uses the app's one ClientSession (HTTP AppKey)."""
    from vonage_bridge.web.keys import HTTP, VOICE_API

    call = await start_call(**vonage_env(voice_api))
    api = call.bridge.app[VOICE_API]
    assert api._api.http is call.bridge.app[HTTP]
    assert isinstance(call.bridge.app[HTTP], aiohttp.ClientSession)

"""Signed webhooks and the signed media handshake (``VONAGE_SIGNATURE_SECRET``), on loopback.

Source: https://developer.vonage.com/en/voice/voice-api/guides/signed-webhooks;
https://api.support.vonage.com/hc/en-us/articles/19033783342876 (``payload_hash``); the NCCO
websocket endpoint's ``authorization`` (https://developer.vonage.com/en/voice/voice-api/ncco-reference)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import jwt
import pytest
from support import SECOND, Call, StartCall
from test_outbound import no_live_calls, voice_api, vonage_env  # noqa: F401  (fixture)

from vonage_bridge.logs import CallContextFilter
from vonage_bridge.sim.realtime import FakeRealtimeOptions
from vonage_bridge.sim.vonage_api import FakeVoiceApi, query_json, sign_webhook
from vonage_bridge.web.keys import WARM_SESSIONS

SECRET = "vonage-signature-secret-for-tests-0123456789"
WRONG_SECRET = "not-the-vonage-signature-secret-0123456789"
SIGNED = {"VONAGE_SIGNATURE_SECRET": SECRET, "ALLOW_UNSIGNED_WEBHOOKS": "false"}
"""Start-up as in production: signed, no opt-out (``sim_env`` opts out for the fakes)."""


def answer_params(call_uuid: str | None = None) -> list[tuple[str, str]]:
    return [
        ("to", "447700900001"),
        ("from", "447700900000"),
        ("uuid", call_uuid or str(uuid.uuid4())),
        ("conversation_uuid", f"CON-{uuid.uuid4()}"),
    ]


def event_body() -> bytes:
    doc = {"uuid": str(uuid.uuid4()), "status": "answered", "direction": "inbound"}
    return json.dumps(doc).encode()


async def signed_get(
    call: Call, path: str, params: list[tuple[str, str]], authorization: str | None
) -> aiohttp.ClientResponse:
    headers = {"Authorization": authorization} if authorization else {}
    async with call.http.get(call.bridge.url + path, params=params, headers=headers) as resp:
        await resp.read()
        return resp


async def signed_post(
    call: Call, path: str, body: bytes, authorization: str | None
) -> aiohttp.ClientResponse:
    headers = {"Content-Type": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    async with call.http.post(call.bridge.url + path, data=body, headers=headers) as resp:
        await resp.read()
        return resp


# --- accepted -------------------------------------------------------------------------------


async def test_signed_get_answer_is_accepted_and_asks_vonage_to_sign_the_socket(
    start_call: StartCall,
) -> None:
    call = await start_call(**SIGNED)
    params = answer_params()
    async with call.http.get(
        call.bridge.url + "/answer",
        params=params,
        headers={"Authorization": sign_webhook(SECRET, query_json(params))},
    ) as resp:
        assert resp.status == 200
        ncco = await resp.json()
    (endpoint,) = ncco[-1]["endpoint"]
    assert endpoint["authorization"] == {"type": "vonage"}


async def test_signed_post_answer_is_accepted(start_call: StartCall) -> None:
    call = await start_call(**SIGNED)
    body = json.dumps(dict(answer_params())).encode()
    resp = await signed_post(call, "/incoming-call", body, sign_webhook(SECRET, body))
    assert resp.status == 200


async def test_signed_post_and_get_event_are_accepted(start_call: StartCall) -> None:
    call = await start_call(**SIGNED)
    body = event_body()
    assert (await signed_post(call, "/event", body, sign_webhook(SECRET, body))).status == 204
    params = [("uuid", "abc"), ("status", "ringing")]
    auth = sign_webhook(SECRET, query_json(params))
    assert (await signed_get(call, "/event", params, auth)).status == 204


async def test_signature_without_payload_hash_is_accepted(start_call: StartCall) -> None:
    call = await start_call(**SIGNED)
    body = event_body()
    assert (await signed_post(call, "/event", body, sign_webhook(SECRET, None))).status == 204


async def test_iat_slightly_in_the_future_is_accepted(start_call: StartCall) -> None:
    """Vonage's clock may run ahead of ours (PyJWT alone would refuse a future iat)."""
    call = await start_call(**SIGNED)
    body = event_body()
    auth = sign_webhook(SECRET, body, iat=time.time() + 30)
    assert (await signed_post(call, "/event", body, auth)).status == 204


async def signed_post_answer(call: Call, fields: dict[str, str]) -> list[dict[str, Any]]:
    """POST the answer URL with ``fields`` as a Vonage-signed JSON body; the NCCO."""
    body = json.dumps(fields).encode()
    headers = {"Content-Type": "application/json", "Authorization": sign_webhook(SECRET, body)}
    async with call.http.post(call.bridge.url + "/incoming-call", data=body, headers=headers) as r:
        assert r.status == 200
        ncco: list[dict[str, Any]] = await r.json()
    return ncco


async def test_signed_post_answer_keeps_the_call_fields(start_call: StartCall) -> None:
    """The signature check reads the body; the fields must still come from it."""
    call = await start_call(**SIGNED)
    fields = dict(answer_params("post-call-1"))
    (endpoint,) = (await signed_post_answer(call, fields))[-1]["endpoint"]
    query = parse_qs(urlsplit(endpoint["uri"]).query)
    assert query["call_uuid"] == ["post-call-1"]
    assert endpoint["headers"] == {
        "call_uuid": "post-call-1",
        "conversation_uuid": fields["conversation_uuid"],
        "from": fields["from"],
        "to": fields["to"],
    }


async def test_signed_post_event_is_logged_with_its_status_and_call(
    start_call: StartCall, caplog: pytest.LogCaptureFixture
) -> None:
    call = await start_call(**SIGNED)
    body = json.dumps({"uuid": "post-call-2", "status": "completed"}).encode()
    caplog.handler.addFilter(CallContextFilter())
    with caplog.at_level(logging.INFO):
        resp = await signed_post(call, "/event", body, sign_webhook(SECRET, body))
    assert resp.status == 204
    (line,) = [r for r in caplog.records if r.getMessage().startswith("event ")]
    assert line.getMessage().startswith("event completed")
    assert getattr(line, "call_uuid", None) == "post-call-2"


async def test_signed_post_answer_call_is_hung_up_over_rest(
    start_call: StartCall,
    voice_api: FakeVoiceApi,  # noqa: F811  (the fixture imported above)
) -> None:
    """A call answered by a signed POST is known by its uuid: a Realtime failure hangs it up."""
    call = await start_call(
        FakeRealtimeOptions(reject_status=401),
        **SIGNED,
        **vonage_env(voice_api),
    )
    fields = dict(answer_params("post-call-3"))
    (endpoint,) = (await signed_post_answer(call, fields))[-1]["endpoint"]
    ws = await call.http.ws_connect(
        endpoint["uri"], headers={"Authorization": sign_webhook(SECRET, None)}
    )
    try:
        connected = {"event": "websocket:connected", "content-type": endpoint["content-type"]}
        await ws.send_str(json.dumps({**connected, **endpoint["headers"]}))
        body = await voice_api.wait_hangup("post-call-3", timeout=5 * SECOND)
        assert body == {"action": "hangup"}
    finally:
        await ws.close()
    await no_live_calls(call)


# --- refused --------------------------------------------------------------------------------


def forged(kind: str, payload: bytes) -> str | None:
    if kind == "no header":
        return None
    if kind == "wrong secret":
        return sign_webhook(WRONG_SECRET, payload)
    if kind == "stale iat":
        return sign_webhook(SECRET, payload, iat=time.time() - 3600)
    if kind == "future iat":
        return sign_webhook(SECRET, payload, iat=time.time() + 3600)
    if kind == "bad payload_hash":
        return sign_webhook(SECRET, payload + b" ")
    if kind == "wrong iss":
        return sign_webhook(SECRET, payload, iss="Mallory")
    if kind == "not bearer":
        return "Basic " + sign_webhook(SECRET, payload).removeprefix("Bearer ")
    raise AssertionError(kind)


FORGERIES = [
    "no header",
    "wrong secret",
    "stale iat",
    "future iat",
    "bad payload_hash",
    "wrong iss",
    "not bearer",
]


@pytest.mark.parametrize("kind", FORGERIES)
@pytest.mark.parametrize("path", ["/answer", "/event"])
async def test_forged_post_webhook_is_401(
    start_call: StartCall, caplog: pytest.LogCaptureFixture, kind: str, path: str
) -> None:
    call = await start_call(**SIGNED)
    params = dict(answer_params())
    body = json.dumps(params).encode()
    caplog.handler.addFilter(CallContextFilter())
    with caplog.at_level(logging.INFO):
        async with call.http.post(
            call.bridge.url + path,
            data=body,
            headers={"Authorization": a} if (a := forged(kind, body)) else {},
        ) as resp:
            assert resp.status == 401
            error = (await resp.json())["error"]
    expected = "signature_missing" if kind in ("no header", "not bearer") else "signature_invalid"
    assert error["code"] == expected
    # One line for the refusal, at INFO (a client mistake), with the call id the body claims.
    refusals = [r for r in caplog.records if f"POST {path} -> 401" in r.getMessage()]
    assert len(refusals) == 1
    assert refusals[0].levelno == logging.INFO
    assert getattr(refusals[0], "call_uuid", None) == params["uuid"]


@pytest.mark.parametrize("kind", FORGERIES)
async def test_forged_get_answer_is_401(start_call: StartCall, kind: str) -> None:
    call = await start_call(**SIGNED)
    params = answer_params()
    resp = await signed_get(call, "/answer", params, forged(kind, query_json(params)))
    assert resp.status == 401


@pytest.mark.parametrize("path", ["/answer", "/event"])
async def test_repeated_query_parameter_is_400_naming_it(
    start_call: StartCall, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    """A captured signed GET with an extra ``uuid`` in front: the signature covers the last
    value (the hashed JSON object keeps one per name), the fields would take the first."""
    call = await start_call(**SIGNED)
    params = [("uuid", "real-call"), ("from", "447700900000"), ("to", "447700900001")]
    auth = sign_webhook(SECRET, query_json(params))
    assert (await signed_get(call, path, params, auth)).status in (200, 204)  # as captured
    polluted = [("uuid", "attacker-call"), *params]
    caplog.handler.addFilter(CallContextFilter())
    with caplog.at_level(logging.INFO):
        async with call.http.get(
            call.bridge.url + path, params=polluted, headers={"Authorization": auth}
        ) as resp:
            assert resp.status == 400
            error = (await resp.json())["error"]
    assert error["code"] == "repeated_parameter"
    assert "'uuid'" in error["message"]
    refused = [r for r in caplog.records if f"{path} -> 4" in r.getMessage()]
    assert len(refused) == 1 and getattr(refused[0], "call_uuid", None) == "attacker-call"


async def test_repeated_query_parameter_is_400_unsigned_too(start_call: StartCall) -> None:
    call = await start_call()
    params = [("uuid", "a"), ("uuid", "b")]
    async with call.http.post(call.bridge.url + "/incoming-call", params=params, json={}) as r:
        assert r.status == 400
        assert (await r.json())["error"]["code"] == "repeated_parameter"


async def test_get_signature_for_other_query_values_is_401(start_call: StartCall) -> None:
    call = await start_call(**SIGNED)
    params = answer_params()
    tampered = [(k, "447700900999" if k == "from" else v) for k, v in params]
    resp = await signed_get(call, "/answer", tampered, sign_webhook(SECRET, query_json(params)))
    assert resp.status == 401


# --- replays ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", ["/answer", "/event"])
async def test_a_signed_request_is_good_once(
    start_call: StartCall, caplog: pytest.LogCaptureFixture, method: str, path: str
) -> None:
    """The same Vonage JWT again within its iat window (a captured request replayed): 401."""
    call = await start_call(**SIGNED)
    params = answer_params("replayed-call")
    body = json.dumps(dict(params)).encode()
    auth = sign_webhook(SECRET, query_json(params) if method == "GET" else body)

    async def send() -> tuple[int, dict[str, Any] | None]:
        kwargs: dict[str, Any] = {"headers": {"Authorization": auth}}
        if method == "GET":
            kwargs["params"] = params
        else:
            kwargs["data"] = body
            kwargs["headers"]["Content-Type"] = "application/json"
        async with call.http.request(method, call.bridge.url + path, **kwargs) as resp:
            return resp.status, (await resp.json() if resp.status >= 400 else None)

    assert (await send())[0] in (200, 204)
    caplog.handler.addFilter(CallContextFilter())
    with caplog.at_level(logging.INFO):
        status, error = await send()
    assert status == 401
    assert error is not None and error["error"]["code"] == "signature_replayed"
    refused = [r for r in caplog.records if f"{path} -> 4" in r.getMessage()]
    assert len(refused) == 1 and getattr(refused[0], "call_uuid", None) == "replayed-call"
    assert auth.removeprefix("Bearer ") not in caplog.text  # the token is never logged


async def test_a_signed_request_without_jti_is_good_once_too(start_call: StartCall) -> None:
    call = await start_call(**SIGNED)
    body = event_body()
    claims = {
        "iat": int(time.time()),
        "iss": "Vonage",
        "payload_hash": hashlib.sha256(body).hexdigest(),
    }
    auth = "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")
    assert (await signed_post(call, "/event", body, auth)).status == 204
    assert (await signed_post(call, "/event", body, auth)).status == 401
    # a fresh token for the same body is a new request (Vonage signs each one)
    assert (await signed_post(call, "/event", body, sign_webhook(SECRET, body))).status == 204


# --- media socket ---------------------------------------------------------------------------


async def media_endpoint(call: Call) -> dict[str, Any]:
    params = answer_params()
    async with call.http.get(
        call.bridge.url + "/answer",
        params=params,
        headers={"Authorization": sign_webhook(SECRET, query_json(params))},
    ) as resp:
        assert resp.status == 200
        ncco = await resp.json()
    endpoint: dict[str, Any] = ncco[-1]["endpoint"][0]
    return endpoint


async def test_signed_media_handshake_opens_the_call(start_call: StartCall) -> None:
    call = await start_call(**SIGNED)
    endpoint = await media_endpoint(call)
    ws = await call.http.ws_connect(
        endpoint["uri"], headers={"Authorization": sign_webhook(SECRET, None)}
    )
    try:
        await ws.send_str(
            json.dumps(
                {
                    "event": "websocket:connected",
                    "content-type": endpoint["content-type"],
                    **endpoint["headers"],
                }
            )
        )
        rt = await call.fake.wait_for_session(timeout=5 * SECOND)
        await rt.wait_for_event("session.update")
    finally:
        await ws.close()


@pytest.mark.parametrize("kind", ["no header", "wrong secret", "stale iat", "wrong iss"])
async def test_media_handshake_without_a_valid_vonage_jwt_is_401(
    start_call: StartCall, kind: str
) -> None:
    call = await start_call(**SIGNED)
    endpoint = await media_endpoint(call)
    auth = forged(kind, b"")
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await call.http.ws_connect(endpoint["uri"], headers={"Authorization": auth} if auth else {})
    assert info.value.status == 401
    async with call.http.get(endpoint["uri"].replace("ws://", "http://", 1)) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "signature_missing"
    # No Realtime session was opened for the refused socket: the signed answer URL's warm
    # session is the only one, not adopted (it expires unused).
    warm = await call.fake.wait_for_session(timeout=5 * SECOND)
    assert call.fake.handshakes == [warm.handshake]
    call_uuid = parse_qs(urlsplit(endpoint["uri"]).query)["call_uuid"][0]
    assert call_uuid in call.bridge.app[WARM_SESSIONS]


async def test_signed_handshake_still_needs_the_media_token(start_call: StartCall) -> None:
    call = await start_call(**SIGNED)
    endpoint = await media_endpoint(call)
    uri = endpoint["uri"].split("&token=")[0] + "&token=forged"
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await call.http.ws_connect(uri, headers={"Authorization": sign_webhook(SECRET, None)})
    assert info.value.status == 403


# --- secret unset (ALLOW_UNSIGNED_WEBHOOKS=true, as sim_env sets) ---------------------------


async def test_without_a_secret_webhooks_are_not_verified_and_the_log_says_so(
    start_call: StartCall, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        call = await start_call()
    assert any(
        "webhooks and the media handshake are NOT verified" in r.getMessage()
        for r in caplog.records
    )
    caller = call.caller()
    ncco = await caller.answer()  # unsigned
    assert "authorization" not in ncco[-1]["endpoint"][0]
    await caller.connect()  # unsigned handshake, token only
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    await rt.wait_for_event("session.update")
    await caller.hang_up()

"""Verified by default: a front door whose webhooks are not signed is a start-up error unless
the deployer opts out (``ALLOW_UNSIGNED_WEBHOOKS=true``); then the start-up log says so and
unsigned answer URLs mint at most ``UNSIGNED_CALLS_PER_MINUTE`` media tokens a minute.

Sources: https://developer.nexmo.com/voice/voice-api/guides/signed-webhooks,
https://www.twilio.com/docs/usage/webhooks/webhooks-security.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import pytest
from support import Call, StartCall
from test_startup import assert_one_line_failure, run_bridge

from vonage_bridge.errors import ConfigError
from vonage_bridge.logs import CallContextFilter
from vonage_bridge.sim.harness import RunningBridge, sim_env
from vonage_bridge.sim.twilio import FakeTwilioCaller, TwilioCallerError
from vonage_bridge.sim.vonage import CallerError
from vonage_bridge.sim.vonage_api import sign_webhook

SECRET = "vonage-signature-secret-for-tests-0123456789"
AUTH_TOKEN = "twilio-auth-token-for-tests-0123456789"
ACCOUNT_SID = "AC" + "b" * 32
SIGNED = {"VONAGE_SIGNATURE_SECRET": SECRET, "ALLOW_UNSIGNED_WEBHOOKS": "false"}
"""Every front door verified, no opt-out: what a production deployment runs."""


# --- start-up -------------------------------------------------------------------------------


def test_vonage_without_signature_secret_is_a_startup_error() -> None:
    env = sim_env("http://127.0.0.1:9/v1", ALLOW_UNSIGNED_WEBHOOKS="")
    with pytest.raises(ConfigError) as info:
        RunningBridge(env)
    (problem,) = [p for p in info.value.problems if "VONAGE_SIGNATURE_SECRET" in p]
    assert "ALLOW_UNSIGNED_WEBHOOKS" in problem


def test_twilio_without_auth_token_is_a_startup_error() -> None:
    env = sim_env("http://127.0.0.1:9/v1", **SIGNED, TWILIO_ACCOUNT_SID=ACCOUNT_SID)
    with pytest.raises(ConfigError) as info:
        RunningBridge(env)
    (problem,) = info.value.problems
    assert "TWILIO_AUTH_TOKEN" in problem and "ALLOW_UNSIGNED_WEBHOOKS" in problem


@pytest.mark.parametrize("value", ["", "false", "0"])
def test_both_missing_are_named_at_once(value: str) -> None:
    env = sim_env(
        "http://127.0.0.1:9/v1", ALLOW_UNSIGNED_WEBHOOKS=value, TWILIO_ACCOUNT_SID=ACCOUNT_SID
    )
    with pytest.raises(ConfigError) as info:
        RunningBridge(env)
    text = "\n".join(info.value.problems)
    assert "VONAGE_SIGNATURE_SECRET" in text and "TWILIO_AUTH_TOKEN" in text


async def test_the_service_refuses_to_start_unsigned(tmp_path: Any) -> None:
    """As a deployer runs it: exit 2, one line naming the variable and the opt-out."""
    run = await run_bridge(tmp_path, ALLOW_UNSIGNED_WEBHOOKS="false")
    assert_one_line_failure(run, 2, "VONAGE_SIGNATURE_SECRET", "ALLOW_UNSIGNED_WEBHOOKS")


async def test_signed_front_doors_start_without_the_opt_out(
    start_call: StartCall, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        call = await start_call(
            **SIGNED, TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN
        )
    assert not any("ALLOW_UNSIGNED_WEBHOOKS" in r.getMessage() for r in caplog.records)
    assert (await call.http.get(call.bridge.url + "/health")).status == 200


async def test_the_opt_out_is_logged_at_warning(
    start_call: StartCall, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        await start_call(ALLOW_UNSIGNED_WEBHOOKS="true", UNSIGNED_CALLS_PER_MINUTE="7")
    lines = [r for r in caplog.records if "ALLOW_UNSIGNED_WEBHOOKS=true" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    assert "Vonage" in lines[0].getMessage() and "7" in lines[0].getMessage()


# --- the unsigned-call limit ----------------------------------------------------------------


async def vonage_answer(call: Call, **headers: str) -> tuple[int, Any]:
    params = {"uuid": str(uuid.uuid4()), "from": "447700900000", "to": "447700900001"}
    async with call.http.get(
        call.bridge.url + "/incoming-call", params=params, headers=headers
    ) as resp:
        return resp.status, await resp.json()


async def test_unsigned_answer_urls_mint_a_bounded_number_of_tokens(
    start_call: StartCall, caplog: pytest.LogCaptureFixture
) -> None:
    call = await start_call(
        ALLOW_UNSIGNED_WEBHOOKS="true",
        UNSIGNED_CALLS_PER_MINUTE="3",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,  # unsigned too: the same budget
    )
    twilio = FakeTwilioCaller(
        call.http, f"{call.bridge.url}/twilio/incoming-call", account_sid=ACCOUNT_SID
    )
    await twilio.answer()
    for _ in range(2):
        status, ncco = await vonage_answer(call)
        assert status == 200 and ncco[-1]["action"] == "connect"
    caplog.handler.addFilter(CallContextFilter())
    caplog.clear()  # the start-up lines
    with caplog.at_level(logging.INFO):
        refused = [await vonage_answer(call) for _ in range(5)]
        with pytest.raises(TwilioCallerError) as info:
            await FakeTwilioCaller(
                call.http, f"{call.bridge.url}/twilio/incoming-call", account_sid=ACCOUNT_SID
            ).answer()
    assert {status for status, _ in refused} == {429}
    assert {body["error"]["code"] for _, body in refused} == {"too_many_calls"}
    assert "token" not in json.dumps([body for _, body in refused])
    assert info.value.status == 429
    lines = [r for r in caplog.records if "call(s) refused with 429" in r.getMessage()]
    assert len(lines) == 1  # once a minute, not per request
    assert "UNSIGNED_CALLS_PER_MINUTE=3: 1 call(s)" in lines[0].getMessage()
    assert sum("429" in r.getMessage() for r in caplog.records) == 1  # nothing per request
    assert getattr(lines[0], "call_uuid", "-") not in ("-", None)
    assert "447700900000" not in caplog.text  # no phone number in those lines
    assert "+14155550100" not in caplog.text


async def test_signed_answer_urls_are_not_limited(start_call: StartCall) -> None:
    call = await start_call(**SIGNED, UNSIGNED_CALLS_PER_MINUTE="1")
    for _ in range(3):
        params = [("uuid", str(uuid.uuid4())), ("from", "447700900000")]
        body = json.dumps(dict(params)).encode()
        async with call.http.post(
            call.bridge.url + "/incoming-call",
            data=body,
            headers={"Authorization": sign_webhook(SECRET, body)},
        ) as resp:
            assert resp.status == 200


async def test_unsigned_vonage_caller_gets_429_over_the_limit(start_call: StartCall) -> None:
    call = await start_call(ALLOW_UNSIGNED_WEBHOOKS="true", UNSIGNED_CALLS_PER_MINUTE="1")
    await call.caller().answer()
    with pytest.raises(CallerError) as info:
        await call.caller().answer()
    assert info.value.status == 429

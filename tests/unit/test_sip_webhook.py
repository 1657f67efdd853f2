"""The pure half of the OpenAI SIP front door: signatures, parsing, numbers, screening."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from test_layering import PACKAGE_DIR, forbidden_imports, imported_names

from vonage_bridge.config import Settings, SipSettings
from vonage_bridge.core.assistant import (
    Assistant,
    CallContext,
    call_instructions_for,
    default_assistant,
)
from vonage_bridge.errors import ConfigError, WebhookRejected
from vonage_bridge.openai_sip.webhook import (
    accept_session,
    greeting_event,
    number_from_uri,
    parse_event,
    screen,
    sip_headers,
    verify_webhook,
    webhook_verifier,
)
from vonage_bridge.realtime.instructions import caller_label, national_form
from vonage_bridge.sim.openai_sip import (
    TEST_WEBHOOK_SECRET,
    incoming_call_body,
    signed_headers,
)

VERIFIER = webhook_verifier(TEST_WEBHOOK_SECRET)
BODY = incoming_call_body("rtc_abc123")
BASE_ENV = {
    "SERVER_URL": "http://127.0.0.1:3000",
    "OPENAI_API_KEY": "sk-test",
    "ALLOW_UNSIGNED_WEBHOOKS": "true",
}


def test_sip_webhook_module_is_pure() -> None:
    """openai_sip/webhook.py is pure (core ring); openai_sip/control.py is its I/O shell."""
    source = (PACKAGE_DIR / "openai_sip" / "webhook.py").read_text(encoding="utf-8")
    assert forbidden_imports(source, "vonage_bridge.openai_sip.webhook") == []
    names = imported_names(source, "vonage_bridge.openai_sip.webhook", False)
    assert not [
        n
        for n in names
        if n.startswith(("vonage_bridge.openai_sip.control", "vonage_bridge.store"))
    ]


def test_verify_webhook_accepts_a_good_signature_and_returns_its_id() -> None:
    headers = signed_headers(TEST_WEBHOOK_SECRET, BODY, msg_id="msg_1")
    assert verify_webhook(VERIFIER, BODY, headers) == "msg_1"


def test_verify_webhook_accepts_one_good_entry_among_several() -> None:
    headers = signed_headers(TEST_WEBHOOK_SECRET, BODY)
    headers["webhook-signature"] = "v1,AAAA " + headers["webhook-signature"]
    verify_webhook(VERIFIER, BODY, headers)


def test_verify_webhook_header_names_are_case_insensitive() -> None:
    headers = {k.title(): v for k, v in signed_headers(TEST_WEBHOOK_SECRET, BODY).items()}
    verify_webhook(VERIFIER, BODY, headers)


@pytest.mark.parametrize(
    "tamper",
    [
        "body",
        "stale",
        "future",
        "no_comma",
        "bad_base64",
        "missing_signature",
        "missing_id",
        "wrong_secret",
        "bad_timestamp",
    ],
)
def test_verify_webhook_rejects_anything_not_signed_now_by_openai(tamper: str) -> None:
    body = BODY
    at = datetime.now(UTC)
    if tamper == "stale":
        at -= timedelta(minutes=6)
    if tamper == "future":
        at += timedelta(minutes=6)
    secret = TEST_WEBHOOK_SECRET
    if tamper == "wrong_secret":
        secret = "whsec_" + "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldA=="
    headers = signed_headers(secret, body, at=at)
    if tamper == "body":
        body = body.replace(b"rtc_abc123", b"rtc_evil99")
    if tamper == "no_comma":
        headers["webhook-signature"] = "v1" + headers["webhook-signature"][3:]
    if tamper == "bad_base64":
        headers["webhook-signature"] = "v1,!!!not-base64!!!"
    if tamper == "missing_signature":
        del headers["webhook-signature"]
    if tamper == "missing_id":
        del headers["webhook-id"]
    if tamper == "bad_timestamp":
        headers["webhook-timestamp"] = "nan-ish"
    with pytest.raises(WebhookRejected):
        verify_webhook(VERIFIER, body, headers)


def test_verify_webhook_rejects_a_non_utf8_body() -> None:
    headers = signed_headers(TEST_WEBHOOK_SECRET, BODY)
    with pytest.raises(WebhookRejected):
        verify_webhook(VERIFIER, b"\xff\xfe", headers)


def test_parse_event_reads_call_id_and_numbers() -> None:
    event = parse_event(BODY)
    assert event.type == "realtime.call.incoming"
    assert event.call is not None
    assert event.call.call_id == "rtc_abc123"
    assert event.call.caller == "+818012345678"
    assert event.call.called == "+815031023332"


def test_parse_event_other_types_have_no_call() -> None:
    event = parse_event(json.dumps({"type": "response.completed", "data": {}}).encode())
    assert event.type == "response.completed"
    assert event.call is None


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"data": {}}',
        b'{"type": "realtime.call.incoming", "data": {}}',
        b'{"type": "realtime.call.incoming", "data": {"call_id": "rtc_../../x"}}',
        b"[" * 3000 + b"]" * 3000,  # json.loads would raise RecursionError
    ],
)
def test_parse_event_refuses_unusable_bodies(body: bytes) -> None:
    with pytest.raises(WebhookRejected):
        parse_event(body)


def test_sip_headers_are_bounded_and_printable() -> None:
    raw = [{"name": "From", "value": "a\x00b" + "x" * 2000}, {"name": "From", "value": "2nd"}]
    raw += [{"name": f"X-{i}", "value": "v"} for i in range(200)]
    raw.append("junk")  # type: ignore[arg-type]
    headers = sip_headers(raw)
    assert headers["from"].startswith("a?b")
    assert len(headers["from"]) == 512
    assert len(headers) == 63  # the first 64 entries, the second From dropped


@pytest.mark.parametrize(
    ("header", "number"),
    [
        ("<sip:+818012345678@pstn.twilio.com;user=phone>;tag=abc", "+818012345678"),
        ("sip:818012345678@example.com", "+818012345678"),
        ('"Alice" <sips:+14155550100@example.com>', "+14155550100"),
        ("<tel:+14155550100>", "+14155550100"),
        ("<sip:alice@example.com>", None),
        ("<sip:anonymous@anonymous.invalid>", None),
        ("<sip:08012345678@example.com>", None),
        ("<sip:+1234@example.com>", None),
        ("", None),
    ],
)
def test_number_from_uri(header: str, number: str | None) -> None:
    assert number_from_uri(header) == number


def test_national_form_only_for_known_country_codes() -> None:
    assert national_form("+818012345678") == "08012345678"
    assert national_form("+14155550100") is None
    assert caller_label("+818012345678") == "+818012345678 (national form 08012345678)"
    assert caller_label("+14155550100") == "+14155550100"
    assert caller_label(None) is None


@pytest.mark.parametrize(
    ("caller", "sip", "live", "status"),
    [
        ("+818012345678", SipSettings(), 0, None),
        ("+818012345678", SipSettings(deny_from=("818012345678",)), 0, 603),
        ("+818012345678", SipSettings(allow_from=("14155550100",)), 0, 603),
        (None, SipSettings(allow_from=("14155550100",)), 0, 603),
        ("+14155550100", SipSettings(allow_from=("14155550100",)), 0, None),
        ("+14155550100", SipSettings(max_calls=2), 2, 486),
        ("+14155550100", SipSettings(max_calls=2), 1, None),
    ],
)
def test_screen(caller: str | None, sip: SipSettings, live: int, status: int | None) -> None:
    assert screen(caller, sip, live) == status


def test_accept_session_is_ga_without_audio_formats() -> None:
    settings = Settings.from_env(BASE_ENV)
    tools = [{"type": "function", "name": "end_call", "description": "x", "parameters": {}}]
    session = accept_session(default_assistant(settings.openai, settings.call), "be nice", tools)
    assert session["type"] == "realtime"
    assert session["model"] == "gpt-realtime"
    assert session["instructions"] == "be nice"
    assert session["audio"]["output"] == {"voice": "marin"}
    assert "format" not in session["audio"]["input"]
    assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert session["audio"]["input"]["transcription"] == {"model": "gpt-4o-mini-transcribe"}
    assert session["tools"] == tools
    assert session["tool_choice"] == "auto"


def call_instructions(system_message: str, *, caller: str | None, called: str | None) -> str:
    """The instructions of a call whose assistant has ``system_message`` and nothing more."""
    ctx = CallContext(Assistant(name="a").model_copy(update={"instructions": system_message}))
    return call_instructions_for(ctx, caller=caller, called=called)


def test_system_message_caller_placeholder_and_greeting() -> None:
    assert call_instructions("Hi {caller}.", caller="+1415", called=None) == "Hi +1415."
    assert call_instructions("Hi {caller}.", caller=None, called=None) == "Hi unknown."
    assert call_instructions("Hi {caller}.", caller="818012345678", called=None) == (
        "Hi +818012345678 (national form 08012345678)."
    )
    # without the placeholder the number is still given, once
    assert call_instructions("Be brief.", caller="+1415", called=None).count("+1415") == 1
    event = greeting_event("Hello there")
    assert event["type"] == "response.create"
    assert "Hello there" in event["response"]["instructions"]


def test_config_reads_sip_settings() -> None:
    env = {
        **BASE_ENV,
        "OPENAI_WEBHOOK_SECRET": TEST_WEBHOOK_SECRET,
        "OPENAI_PROJECT_ID": "proj_123",
        "SIP_ALLOW_FROM": "+818012345678, 14155550100",
        "SIP_DENY_FROM": "+15550001111",
        "SIP_MAX_CALLS": "3",
    }
    sip = Settings.from_env(env).sip
    assert sip.webhook_secret is not None
    assert sip.webhook_secret.get_secret_value() == TEST_WEBHOOK_SECRET
    assert sip.project_id == "proj_123"
    assert sip.allow_from == ("818012345678", "14155550100")
    assert sip.deny_from == ("15550001111",)
    assert sip.max_calls == 3
    assert TEST_WEBHOOK_SECRET not in repr(sip)
    assert Settings.from_env(BASE_ENV).sip == SipSettings()


def test_config_names_bad_sip_settings() -> None:
    env = {
        **BASE_ENV,
        "OPENAI_WEBHOOK_SECRET": "whsec_***",
        "SIP_ALLOW_FROM": "hello",
        "SIP_MAX_CALLS": "0",
    }
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    text = str(info.value)
    for name in ("OPENAI_WEBHOOK_SECRET=***", "SIP_ALLOW_FROM", "SIP_MAX_CALLS"):
        assert name in text
    assert "whsec_***" not in text  # the secret itself

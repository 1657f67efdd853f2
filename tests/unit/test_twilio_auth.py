"""Twilio request validation (``twilio_auth``): Twilio's documented vector, round trips, the
URLs behind a proxy and for the media socket upgrade, missing and wrong signatures."""

from __future__ import annotations

import pytest
from multidict import MultiDict

from vonage_bridge.config import PublicUrl
from vonage_bridge.errors import Forbidden
from vonage_bridge.twilio.signature import (
    candidate_urls,
    sign_request,
    signature_algorithm,
    verify_twilio_signature,
)

# Twilio's worked example (request-validation docs, and the SDKs' RequestValidator tests).
DOC_TOKEN = "12345"
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+14158675309",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
}
DOC_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="

TOKEN = "twilio-auth-token-0123456789abcdef"
WEBHOOK_PARAMS = {
    "AccountSid": "AC" + "0" * 32,
    "CallSid": "CA" + "1" * 32,
    "From": "+14155550100",
    "To": "+14155550199",
    "CallStatus": "ringing",
}


def urls_for(
    *,
    public: str = "https://public.example",
    path_qs: str = "/twilio/incoming-call",
    scheme: str = "http",
    host: str = "internal:8080",
    proto: str | None = None,
    fwd_host: str | None = None,
    websocket: bool = False,
) -> list[str]:
    return candidate_urls(
        public_url=public,
        path_qs=path_qs,
        scheme=scheme,
        host=host,
        forwarded_proto=proto,
        forwarded_host=fwd_host,
        websocket=websocket,
    )


def test_sign_request_reproduces_twilios_documented_signature() -> None:
    assert sign_request(DOC_TOKEN, DOC_URL, DOC_PARAMS) == DOC_SIGNATURE


def test_verify_accepts_twilios_documented_signature_and_returns_the_url() -> None:
    assert verify_twilio_signature(DOC_TOKEN, [DOC_URL], DOC_PARAMS, DOC_SIGNATURE) == DOC_URL


def test_verify_round_trip_of_a_signed_webhook() -> None:
    url = "https://public.example/twilio/incoming-call"
    signature = sign_request(TOKEN, url, WEBHOOK_PARAMS)
    assert verify_twilio_signature(TOKEN, [url], WEBHOOK_PARAMS, signature) == url


def test_verify_checks_every_value_of_a_repeated_form_field() -> None:
    url = "https://public.example/twilio/incoming-call"
    form = MultiDict([("Digits", "1"), ("Digits", "2"), ("CallSid", "CA" + "1" * 32)])
    signature = sign_request(TOKEN, url, form)
    verify_twilio_signature(TOKEN, [url], form, signature)
    with pytest.raises(Forbidden):
        verify_twilio_signature(TOKEN, [url], MultiDict([("Digits", "1")]), signature)


@pytest.mark.parametrize(
    ("token", "params", "url"),
    [
        ("another-auth-token-0123456789abcd", WEBHOOK_PARAMS, "https://public.example/x"),
        (TOKEN, {**WEBHOOK_PARAMS, "From": "+14155550111"}, "https://public.example/x"),
        (TOKEN, {**WEBHOOK_PARAMS, "Extra": "1"}, "https://public.example/x"),
        (TOKEN, WEBHOOK_PARAMS, "https://public.example/y"),
        (TOKEN, WEBHOOK_PARAMS, "https://public.example/x?a=1"),
        (TOKEN, WEBHOOK_PARAMS, "https://evil.example/x"),
    ],
    ids=["wrong-token", "changed-param", "added-param", "other-path", "added-query", "host"],
)
def test_verify_refuses_a_changed_token_param_or_url(
    token: str, params: dict[str, str], url: str
) -> None:
    signature = sign_request(TOKEN, "https://public.example/x", WEBHOOK_PARAMS)
    with pytest.raises(Forbidden) as info:
        verify_twilio_signature(token, [url], params, signature)
    assert info.value.code == "twilio_signature_invalid"
    assert info.value.http_status == 403


@pytest.mark.parametrize("signature", [None, "", "   "])
def test_verify_refuses_a_missing_signature(signature: str | None) -> None:
    with pytest.raises(Forbidden) as info:
        verify_twilio_signature(TOKEN, [DOC_URL], DOC_PARAMS, signature)
    assert info.value.code == "twilio_signature_missing"


def test_verify_error_message_never_contains_the_token_or_signature() -> None:
    signature = sign_request(TOKEN, "https://public.example/x", WEBHOOK_PARAMS)
    with pytest.raises(Forbidden) as info:
        verify_twilio_signature(TOKEN, ["https://public.example/y"], WEBHOOK_PARAMS, signature)
    assert TOKEN not in info.value.message
    assert signature not in info.value.message


def test_verify_rejects_empty_url_list_as_a_caller_bug() -> None:
    with pytest.raises(ValueError):
        verify_twilio_signature(TOKEN, [], None, "sig")


def test_proxy_request_signed_for_the_public_url_verifies() -> None:
    """Fly terminates TLS: we see http://internal:8080, Twilio signed https://public.example."""
    signed = "https://public.example/twilio/incoming-call?x=1"
    signature = sign_request(TOKEN, signed, WEBHOOK_PARAMS)
    urls = urls_for(
        public="https://public.example",
        path_qs="/twilio/incoming-call?x=1",
        proto="https",
        fwd_host="public.example",
    )
    assert urls[0] == signed
    assert verify_twilio_signature(TOKEN, urls, WEBHOOK_PARAMS, signature) == signed


def test_proxy_forwarded_headers_are_used_when_server_url_differs() -> None:
    """SERVER_URL is stale, but the proxy's X-Forwarded-* rebuild the URL Twilio signed."""
    signed = "https://new-name.example/twilio/incoming-call"
    signature = sign_request(TOKEN, signed, WEBHOOK_PARAMS)
    urls = urls_for(public="https://old-name.example", proto="https", fwd_host="new-name.example")
    assert signed in urls
    assert verify_twilio_signature(TOKEN, urls, WEBHOOK_PARAMS, signature) == signed


def test_candidate_urls_take_the_first_value_of_forwarded_lists() -> None:
    urls = urls_for(
        public="https://public.example",
        proto="https, http",
        fwd_host="edge.example, internal:8080",
    )
    assert urls == [
        "https://public.example/twilio/incoming-call",
        "https://edge.example/twilio/incoming-call",
        "http://internal:8080/twilio/incoming-call",
    ]


def test_candidate_urls_without_proxy_headers_use_the_request_itself_once() -> None:
    urls = urls_for(public="http://127.0.0.1:3000", scheme="http", host="127.0.0.1:3000")
    assert urls == ["http://127.0.0.1:3000/twilio/incoming-call"]


def test_candidate_urls_keep_server_url_base_path_and_accept_public_url_object() -> None:
    urls = candidate_urls(
        public_url=PublicUrl.parse("abc.ngrok.app/base"),
        path_qs="/twilio/incoming-call",
        scheme="http",
        host="localhost:3000",
        forwarded_proto=None,
        forwarded_host=None,
        websocket=False,
    )
    assert urls == [
        "https://abc.ngrok.app/base/twilio/incoming-call",
        "http://localhost:3000/twilio/incoming-call",
    ]


def test_candidate_urls_for_websocket_try_wss_then_https_forms() -> None:
    urls = urls_for(
        path_qs="/twilio/media-stream?token=t1",
        proto="https",
        fwd_host="public.example",
        websocket=True,
    )
    assert urls == [
        "wss://public.example/twilio/media-stream?token=t1",
        "https://public.example/twilio/media-stream?token=t1",
        "ws://internal:8080/twilio/media-stream?token=t1",
        "http://internal:8080/twilio/media-stream?token=t1",
    ]


@pytest.mark.parametrize(
    "signed",
    [
        "wss://public.example/twilio/media-stream?token=t1",
        "https://public.example/twilio/media-stream?token=t1",
    ],
)
def test_websocket_upgrade_signed_without_params_verifies(signed: str) -> None:
    signature = sign_request(TOKEN, signed)
    urls = urls_for(path_qs="/twilio/media-stream?token=t1", websocket=True)
    assert verify_twilio_signature(TOKEN, urls, None, signature) == signed


def test_websocket_upgrade_signed_for_another_token_is_refused() -> None:
    signed = "wss://public.example/twilio/media-stream?token=t1"
    signature = sign_request(TOKEN, signed)
    urls = urls_for(path_qs="/twilio/media-stream?token=t2", websocket=True)
    with pytest.raises(Forbidden):
        verify_twilio_signature(TOKEN, urls, None, signature)


def test_signature_with_explicit_default_port_still_verifies() -> None:
    """The library tries the URL with and without :443, since Twilio's signer is
    inconsistent about it."""
    signature = sign_request(TOKEN, "https://public.example:443/twilio/incoming-call")
    verify_twilio_signature(TOKEN, ["https://public.example/twilio/incoming-call"], {}, signature)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "HMAC_SHA1"),
        ("", "HMAC_SHA1"),
        ("key=webhooks_sharedkey_abc", "HMAC_SHA1"),
        ("key=webhooks_sharedkey_abc,algorithm=HMAC_SHA256", "HMAC_SHA256"),
    ],
)
def test_signature_algorithm_reads_the_settings_header(header: str | None, expected: str) -> None:
    assert signature_algorithm(header) == expected


def test_sha256_shared_key_signature_round_trip() -> None:
    url = "https://public.example/twilio/incoming-call"
    signature = sign_request(TOKEN, url, WEBHOOK_PARAMS, algorithm="HMAC_SHA256")
    assert signature != sign_request(TOKEN, url, WEBHOOK_PARAMS)
    verify_twilio_signature(TOKEN, [url], WEBHOOK_PARAMS, signature, algorithm="HMAC_SHA256")
    with pytest.raises(Forbidden):
        verify_twilio_signature(TOKEN, [url], WEBHOOK_PARAMS, signature)  # as SHA-1


def test_unsupported_algorithm_is_refused() -> None:
    with pytest.raises(Forbidden) as info:
        verify_twilio_signature(TOKEN, [DOC_URL], DOC_PARAMS, DOC_SIGNATURE, algorithm="MD5")
    assert info.value.code == "twilio_signature_invalid"

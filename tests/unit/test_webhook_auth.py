"""Vonage signed-webhook checks, without sockets or clocks.

Source: https://developer.vonage.com/en/voice/voice-api/guides/signed-webhooks;
https://api.support.vonage.com/hc/en-us/articles/19033783342876 (``payload_hash``)."""

from __future__ import annotations

import hashlib
from typing import Any

import jwt
import pytest

from vonage_bridge.core.replay import SeenIds
from vonage_bridge.errors import InvalidRequest, Unauthorized
from vonage_bridge.vonage.signing import (
    LEEWAY_S,
    MAX_AGE_S,
    query_payload,
    single_values,
    verify_signed_request,
)

SECRET = "signature-secret-for-tests-0123456789abcdef"
NOW = 1_800_000_000.0
BODY = b'{"uuid":"abc","status":"answered"}'


def token(secret: str = SECRET, **overrides: Any) -> str:
    claims: dict[str, Any] = {
        "iat": int(NOW),
        "jti": "jti-1",
        "iss": "Vonage",
        "api_key": "abcd1234",
        "payload_hash": hashlib.sha256(BODY).hexdigest(),
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return "Bearer " + jwt.encode(claims, secret, algorithm="HS256")


def verify(authorization: str | None, payload: bytes | None = BODY) -> dict[str, Any]:
    return verify_signed_request(authorization, SECRET, NOW, payload=payload)


def test_valid_signature_returns_the_claims() -> None:
    claims = verify(token())
    assert claims["iss"] == "Vonage"
    assert claims["api_key"] == "abcd1234"


def test_payload_hash_is_optional() -> None:
    assert verify(token(payload_hash=None))["jti"] == "jti-1"


def test_handshake_skips_the_payload_hash_check() -> None:
    assert verify(token(payload_hash="00" * 32), payload=None)["jti"] == "jti-1"


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic abc", "abc"])
def test_missing_signature_is_unauthorized(header: str | None) -> None:
    with pytest.raises(Unauthorized) as info:
        verify(header)
    assert info.value.code == "signature_missing"
    assert info.value.http_status == 401


@pytest.mark.parametrize(
    ("authorization", "why"),
    [
        (token(secret="wrong-secret-0123456789abcdef-0123456789"), "bad token"),
        (token(iss="Nexmo"), "issuer"),
        (token(iss=None), "bad token"),
        (token(iat=None), "bad token"),
        (token(iat="yesterday"), "iat is not a number"),
        (token(iat=int(NOW - MAX_AGE_S - LEEWAY_S - 1)), "too old"),
        (token(iat=int(NOW + LEEWAY_S + 1)), "future"),
        (token(exp=int(NOW - LEEWAY_S - 1)), "expired"),
        (token(payload_hash=hashlib.sha256(b"other").hexdigest()), "payload_hash"),
        (token(payload_hash=12), "payload_hash"),
        ("Bearer not.a.jwt", "bad token"),
        (
            "Bearer "
            + jwt.encode({"iss": "Vonage", "iat": int(NOW)}, SECRET * 2, algorithm="HS384"),
            "bad",
        ),
    ],
)
def test_forged_or_stale_signature_is_unauthorized(authorization: str, why: str) -> None:
    with pytest.raises(Unauthorized) as info:
        verify(authorization)
    assert info.value.code == "signature_invalid"
    assert why in info.value.message


def test_iat_within_the_window_and_leeway_is_accepted() -> None:
    verify(token(iat=int(NOW - MAX_AGE_S)))
    verify(token(iat=int(NOW + LEEWAY_S - 1)))  # Vonage's clock a little ahead of ours


def test_unsigned_alg_none_token_is_refused() -> None:
    unsigned = jwt.encode({"iss": "Vonage", "iat": int(NOW)}, None, algorithm="none")
    with pytest.raises(Unauthorized):
        verify("Bearer " + unsigned)


def test_payload_hash_compares_case_insensitively() -> None:
    verify(token(payload_hash=hashlib.sha256(BODY).hexdigest().upper()))


def test_query_payload_is_compact_json_in_received_order() -> None:
    items = [("to", "442079460000"), ("from", "447700900000"), ("uuid", "aaa")]
    assert query_payload(items) == b'{"to":"442079460000","from":"447700900000","uuid":"aaa"}'
    assert query_payload([("name", "José")]) == '{"name":"José"}'.encode()


def test_short_secret_verifies_without_a_warning() -> None:
    """Vonage picks the secret; PyJWT's short-HMAC-key warning would fire on every request."""
    short = "abc123"
    claims = {"iat": int(NOW), "iss": "Vonage"}
    with pytest.warns(jwt.warnings.InsecureKeyLengthWarning):
        signed = jwt.encode(claims, short, algorithm="HS256")
    verify_signed_request("Bearer " + signed, short, NOW, payload=BODY)  # -W error: no warning


def test_a_token_is_good_once_until_it_expires() -> None:
    seen = SeenIds()
    auth = token(iat=int(NOW))
    verify_signed_request(auth, SECRET, NOW, payload=BODY, seen=seen)
    with pytest.raises(Unauthorized) as info:
        verify_signed_request(auth, SECRET, NOW + 10, payload=BODY, seen=seen)
    assert info.value.code == "signature_replayed"
    assert info.value.http_status == 401
    later = NOW + MAX_AGE_S + LEEWAY_S + 1  # past its life the token is refused as too old
    with pytest.raises(Unauthorized) as info:
        verify_signed_request(auth, SECRET, later, payload=BODY, seen=seen)
    assert info.value.code == "signature_invalid"


def test_tokens_without_jti_are_told_apart_by_their_hash() -> None:
    seen = SeenIds()
    first, second = token(jti=None, iat=int(NOW)), token(jti=None, iat=int(NOW) - 1)
    verify_signed_request(first, SECRET, NOW, payload=BODY, seen=seen)
    verify_signed_request(second, SECRET, NOW, payload=BODY, seen=seen)
    with pytest.raises(Unauthorized):
        verify_signed_request(first, SECRET, NOW, payload=BODY, seen=seen)


def test_a_forged_token_is_not_remembered() -> None:
    seen = SeenIds()
    with pytest.raises(Unauthorized):
        verify_signed_request(
            token("wrong-secret-0123456789abcdef0123"), SECRET, NOW, payload=BODY, seen=seen
        )
    assert len(seen) == 0


def test_single_values_refuses_a_repeated_name() -> None:
    assert single_values([("a", "1"), ("b", "2")]) == {"a": "1", "b": "2"}
    with pytest.raises(InvalidRequest) as info:
        single_values([("uuid", "x"), ("to", "1"), ("uuid", "y")])
    assert info.value.code == "repeated_parameter"
    assert "'uuid'" in info.value.message

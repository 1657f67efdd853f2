"""Per-call media tokens: minted at the answer URL, checked at the WebSocket upgrade."""

from __future__ import annotations

import pytest

from vonage_bridge.core.media_token import MediaTokenSigner
from vonage_bridge.errors import Forbidden

SECRET = b"0123456789abcdef-test-secret"
CALL = "63f61863-4a51-4f6b-86e1-46edebcf9356"
NOW = 1_750_000_000.7
TTL = 300


@pytest.fixture
def signer() -> MediaTokenSigner:
    return MediaTokenSigner(SECRET, TTL)


def test_media_token_mint_then_verify_succeeds(signer: MediaTokenSigner) -> None:
    t = signer.mint(CALL, NOW)
    assert t.call_uuid == CALL
    assert t.exp == int(NOW) + TTL
    signer.verify(CALL, str(t.exp), t.token, NOW)  # no exception
    signer.verify(CALL, str(t.exp), t.token, float(t.exp))  # still valid at exactly exp


def test_media_token_is_url_safe_and_deterministic(signer: MediaTokenSigner) -> None:
    t = signer.mint(CALL, NOW)
    assert t.token == signer.mint(CALL, NOW).token
    assert set(t.token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=")


def test_media_token_from_another_secret_is_rejected(signer: MediaTokenSigner) -> None:
    other = MediaTokenSigner(b"another-secret-of-16+bytes", TTL).mint(CALL, NOW)
    with pytest.raises(Forbidden) as info:
        signer.verify(CALL, str(other.exp), other.token, NOW)
    assert info.value.code == "media_token_invalid"


def _flip_first(token: str) -> str:
    return ("B" if token[0] == "A" else "A") + token[1:]


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("wrong_call_uuid", "media_token_invalid"),
        ("tampered_token", "media_token_invalid"),
        ("extended_exp", "media_token_invalid"),
        ("malformed_exp", "media_token_invalid"),
        ("missing_call_uuid", "media_token_missing"),
        ("missing_exp", "media_token_missing"),
        ("missing_token", "media_token_missing"),
        ("expired", "media_token_expired"),
    ],
)
def test_media_token_verify_rejects_bad_input_with_code(
    signer: MediaTokenSigner, case: str, code: str
) -> None:
    t = signer.mint(CALL, NOW)
    args = {"call_uuid": CALL, "exp": str(t.exp), "token": t.token, "now": NOW}
    if case == "wrong_call_uuid":
        args["call_uuid"] = "00000000-0000-0000-0000-000000000000"
    elif case == "tampered_token":
        args["token"] = _flip_first(t.token)
    elif case == "extended_exp":
        args["exp"] = str(t.exp + 3600)
    elif case == "malformed_exp":
        args["exp"] = "soon"
    elif case == "missing_call_uuid":
        args["call_uuid"] = ""
    elif case == "missing_exp":
        args["exp"] = ""
    elif case == "missing_token":
        args["token"] = ""
    elif case == "expired":
        args["now"] = t.exp + 0.001
    with pytest.raises(Forbidden) as info:
        signer.verify(**args)  # type: ignore[arg-type]
    assert info.value.code == code
    assert info.value.http_status == 403


def test_media_token_non_ascii_token_is_rejected_not_crashing(signer: MediaTokenSigner) -> None:
    t = signer.mint(CALL, NOW)
    with pytest.raises(Forbidden) as info:
        signer.verify(CALL, str(t.exp), "é" * len(t.token), NOW)
    assert info.value.code == "media_token_invalid"


@pytest.mark.parametrize("secret", [b"", b"x" * 15])
def test_media_token_signer_rejects_secret_shorter_than_16_bytes(secret: bytes) -> None:
    with pytest.raises(ValueError):
        MediaTokenSigner(secret, TTL)


def test_media_token_signer_accepts_16_byte_secret() -> None:
    s = MediaTokenSigner(b"x" * 16, TTL)
    t = s.mint(CALL, NOW)
    s.verify(CALL, str(t.exp), t.token, NOW)
    assert s.ttl_s == TTL

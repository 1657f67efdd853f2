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


def test_media_token_redeemed_once_then_refused_as_used(signer: MediaTokenSigner) -> None:
    t = signer.mint(CALL, NOW)
    signer.verify(CALL, str(t.exp), t.token, NOW)  # checking does not spend it
    signer.redeem(CALL, str(t.exp), t.token, NOW)
    for check in (signer.verify, signer.redeem):
        with pytest.raises(Forbidden) as info:
            check(CALL, str(t.exp), t.token, float(t.exp))  # still refused at exactly exp
        assert (info.value.code, info.value.http_status) == ("media_token_used", 403)
    with pytest.raises(Forbidden) as expired:  # past exp it is refused as expired
        signer.redeem(CALL, str(t.exp), t.token, t.exp + 0.001)
    assert expired.value.code == "media_token_expired"


def test_media_token_spending_one_leaves_the_others(signer: MediaTokenSigner) -> None:
    first = signer.mint(CALL, NOW)
    later = signer.mint(CALL, NOW + 1)  # a new token for the same call
    other = signer.mint("another-call", NOW)
    signer.redeem(CALL, str(first.exp), first.token, NOW)
    signer.redeem(CALL, str(later.exp), later.token, NOW + 1)
    signer.redeem("another-call", str(other.exp), other.token, NOW + 2)


def test_media_token_bad_token_is_not_remembered(signer: MediaTokenSigner) -> None:
    t = signer.mint(CALL, NOW)
    with pytest.raises(Forbidden):
        signer.redeem(CALL, str(t.exp), _flip_first(t.token), NOW)
    signer.redeem(CALL, str(t.exp), t.token, NOW)  # the real one is still unspent


def test_media_token_memory_is_bounded_oldest_forgotten_first() -> None:
    signer = MediaTokenSigner(SECRET, TTL, max_used=2)
    tokens = [signer.mint(f"call-{n}", NOW) for n in range(3)]
    for t in tokens:
        signer.redeem(t.call_uuid, str(t.exp), t.token, NOW)
    oldest, *newer = tokens
    signer.verify(oldest.call_uuid, str(oldest.exp), oldest.token, NOW)  # forgotten
    for t in newer:
        with pytest.raises(Forbidden, match="already used"):
            signer.verify(t.call_uuid, str(t.exp), t.token, NOW)

"""Vonage signed webhooks: check the ``Authorization: Bearer <JWT>`` Vonage puts on answer
and event requests and on the media socket's opening handshake. Pure: time is passed in.

The JWT is HS256 with the account's signature secret (not the API secret). Its claims are
``iat``, ``jti``, ``iss`` (``"Vonage"``), ``payload_hash`` (hex SHA-256 of the payload),
``api_key`` and optionally ``application_id``; no ``exp`` is documented, so freshness is ours
to check: ``iat`` must be at most ``max_age_s`` old, and may lie up to ``leeway_s`` in the
future (clock skew; PyJWT's own check would refuse any future ``iat``). Verification itself
is PyJWT's; the clock checks are done here against ``now`` so the module stays pure.

A token is good once: given a :class:`~vonage_bridge.core.replay.SeenIds`, a second use of
its ``jti`` (or, without one, of the token itself) within its life (``iat + max_age_s +
leeway_s``) is refused as a replay. That memory is per instance (see ``core/replay.py``).

Sources: https://developer.nexmo.com/voice/voice-api/guides/signed-webhooks (the JWT and its
claims), https://api.support.vonage.com/hc/en-us/articles/19033783342876 (``payload_hash``),
https://developer.vonage.com/en/voice/voice-api/ncco-reference (``authorization: {"type":
"vonage"}`` on the media socket), https://pyjwt.readthedocs.io/en/stable/api.html.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import warnings
from collections.abc import Iterable
from typing import Any

import jwt

from ..core.replay import SeenIds
from ..errors import InvalidRequest, Unauthorized

ISSUER = "Vonage"
MAX_AGE_S = 300.0
"""How old (s) a signed request's ``iat`` may be: a replay window of 5 minutes."""
LEEWAY_S = 60.0
"""Clock skew (s) allowed between Vonage and us, both ways."""
MAX_JTI_CHARS = 256
"""A longer ``jti`` is remembered by its hash, so the replay memory stays small."""


def single_values(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Query parameters as a dict, in received order, each name once.

    A repeated name is refused: the handler would read one value while ``payload_hash``
    covers another (:func:`query_payload` keeps the last), so one captured signed request
    with an extra ``uuid=...`` would pass for another call.

    Raises:
        InvalidRequest: ``repeated_parameter`` naming the first repeated name (at most 64
            characters of it).
    """
    fields: dict[str, str] = {}
    for key, value in items:
        if key in fields:
            raise InvalidRequest(
                f"query parameter {key[:64]!r} is repeated", code="repeated_parameter"
            )
        fields[key] = value
    return fields


def query_payload(items: Iterable[tuple[str, str]]) -> bytes:
    """The bytes Vonage hashes for a GET webhook: the query parameters as a JSON object, in
    received order, with no whitespace (UTF-8). A repeated name keeps its last value: the
    caller must refuse repeated names first (``vonage/routes.py`` answers 400).

    Source: https://api.support.vonage.com/hc/en-us/articles/19033783342876
    """
    return json.dumps(dict(items), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def verify_signed_request(
    authorization: str | None,
    secret: str,
    now: float,
    *,
    payload: bytes | None,
    max_age_s: float = MAX_AGE_S,
    leeway_s: float = LEEWAY_S,
    seen: SeenIds | None = None,
) -> dict[str, Any]:
    """Check a Vonage-signed request.

    Args:
        authorization: the ``Authorization`` header, ``"Bearer <JWT>"``, or None.
        secret: the signature secret (``VONAGE_SIGNATURE_SECRET``).
        now: Unix time, s.
        payload: the raw POST body, or :func:`query_payload` of a GET; compared with the
            ``payload_hash`` claim when the token has one. None skips that check (the media
            socket's handshake, whose hashed payload Vonage does not document).
        max_age_s: oldest acceptable ``iat``, s before ``now``.
        leeway_s: clock skew allowed, s.
        seen: the tokens already used; a valid token is checked against it and then
            remembered until ``iat + max_age_s + leeway_s``. None skips the replay check.
    Returns:
        The verified claims.
    Raises:
        Unauthorized: ``signature_missing`` without a Bearer token; ``signature_invalid``
            when the signature, ``iss``, ``iat``/``exp`` or ``payload_hash`` is wrong;
            ``signature_replayed`` when ``seen`` already holds the token.
    Source: https://developer.nexmo.com/voice/voice-api/guides/signed-webhooks
    """
    if not authorization:
        raise Unauthorized("Vonage signature missing", code="signature_missing")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Vonage signature missing", code="signature_missing")
    try:
        with warnings.catch_warnings():
            # Vonage chooses the secret's length; PyJWT would warn on every request when it is
            # shorter than 32 bytes.
            warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
            claims: dict[str, Any] = jwt.decode(
                token.strip(),
                secret,
                algorithms=["HS256"],
                issuer=ISSUER,
                options={
                    "require": ["iat", "iss"],
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
    except jwt.InvalidIssuerError:
        raise _invalid("issuer is not Vonage") from None
    except jwt.InvalidTokenError as exc:
        raise _invalid(f"bad token ({exc.__class__.__name__})") from None
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise _invalid("iat is not a number")
    if iat > now + leeway_s:
        raise _invalid("iat is in the future")
    if iat < now - max_age_s - leeway_s:
        raise _invalid("iat is too old")
    exp = claims.get("exp")
    if exp is not None and (not isinstance(exp, int | float) or exp < now - leeway_s):
        raise _invalid("token expired")
    expected = claims.get("payload_hash")
    if payload is not None and expected is not None:
        actual = hashlib.sha256(payload).hexdigest()
        if not isinstance(expected, str) or not hmac.compare_digest(
            actual, expected.lower().encode("ascii", "replace").decode()
        ):
            raise _invalid("payload_hash does not match the request")
    if seen is not None and seen.check_and_add(
        replay_id(claims, token.strip()), now, expires_at=iat + max_age_s + leeway_s
    ):
        raise Unauthorized("Vonage signature already used (replayed)", code="signature_replayed")
    return claims


def replay_id(claims: dict[str, Any], token: str) -> str:
    """What identifies a verified token for the replay check: ``jti:<jti>`` when the token
    has a string ``jti`` of at most :data:`MAX_JTI_CHARS`, else ``sha256:<hex>`` of the token
    (a missing or odd ``jti`` still makes each token good once)."""
    jti = claims.get("jti")
    if isinstance(jti, str) and jti and len(jti) <= MAX_JTI_CHARS:
        return "jti:" + jti
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


def _invalid(why: str) -> Unauthorized:
    return Unauthorized(f"Vonage signature invalid: {why}", code="signature_invalid")

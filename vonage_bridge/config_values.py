"""The value parsers of the settings: text of one variable in, a value out, or ``ValueError``
whose message says in our words what is wrong (``config_problems`` puts the variable and its
value in front). Pure apart from reading the files the variables name (private key).

Each parser is wrapped as a pydantic ``BeforeValidator`` (:func:`parse`) so that a settings
group declares its variable with one annotated type; values that are not text (a group built
directly, as tests do) pass as they are.
Source: https://docs.pydantic.dev/latest/concepts/validators/
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from pydantic import BeforeValidator, SecretStr

from .phone import e164_digits
from .vonage.app_jwt import load_private_key

RESAMPLE_QUALITIES = ("QQ", "LQ", "MQ", "HQ", "VHQ")
VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
_HOST_RE = re.compile(
    r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?|[0-9a-f:.]+"
)
"""A DNS name (labels of letters, digits, ``-``; ``_`` tolerated) or an IPv4/IPv6 address."""
TWILIO_ACCOUNT_SID_RE = re.compile(r"AC[0-9a-fA-F]{32}")
"""A Twilio account SID: ``AC`` then 32 hex digits."""


def parse(conv: Callable[[str], Any], blank: Any = ...) -> BeforeValidator:
    """Run ``conv`` on text; other values (a group built directly, as tests do) pass as they
    are. With ``blank`` given, blank text gives it, and ``conv`` gets the text stripped."""

    def run(value: Any) -> Any:
        """The value from ``conv`` for text (``blank`` for blank text, when given); others as they
        are."""
        if not isinstance(value, str):
            return value
        if blank is ...:
            return conv(value)
        return conv(value.strip()) if value.strip() else blank

    return BeforeValidator(run)


def check(ok: Callable[[str], object], reason: str, blank: Any = ...) -> BeforeValidator:
    """A parser that keeps the text (stripped) when ``ok(text)`` is truthy, else raises
    ``ValueError(reason)``."""

    def conv(value: str) -> str:
        """``value`` stripped. Raises ``ValueError(reason)`` when ``ok`` refuses it."""
        if not ok(value):
            raise ValueError(reason)
        return value.strip()

    return parse(conv, blank)


def choice(*options: str) -> BeforeValidator:
    """A parser for one of ``options``, matched without regard to case, given as spelt there."""

    def conv(value: str) -> str:
        """The option ``value`` names, as spelt in ``options``; ``ValueError`` for any other."""
        for option in options:
            if value.strip().upper() == option.upper():
                return option
        raise ValueError(f"must be one of {', '.join(options)}")

    return parse(conv)


def voice(value: str) -> str:
    """A built-in voice (lower case) or a custom voice id ``voice_...`` (the Realtime
    session's ``audio.output.voice``)."""
    if value.strip().lower() in VOICES:
        return value.strip().lower()
    if value.strip().startswith("voice_"):
        return value.strip()
    raise ValueError(f"must be one of {', '.join(VOICES)} or a custom voice id voice_...")


def http_url(value: str) -> str:
    """An ``http(s)`` URL with a host, without trailing slash."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")
    return value.strip().rstrip("/")


def public_url(value: str) -> tuple[str, str]:
    """``SERVER_URL`` as its ``(http(s), ws(s))`` forms: a bare host means https/wss, a value
    with a scheme is taken as given (``http://127.0.0.1:3000`` gives ``ws://127.0.0.1:3000``).

    Raises:
        ValueError: if the value has white space inside, an unknown scheme, no host, a host
            that is not a DNS name or an IP address, a port that is not a number, a query or
            a fragment.
    """
    raw = value.strip()
    if any(c.isspace() for c in raw):
        raise ValueError("is not a URL: it contains white space")
    parts = urlsplit(raw if "://" in raw else "https://" + raw)
    ws_scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if ws_scheme is None:
        raise ValueError(f"scheme {parts.scheme!r} is not http, https, ws or wss")
    if not parts.hostname:
        raise ValueError("has no host")
    if not _HOST_RE.fullmatch(parts.hostname):
        raise ValueError(f"is not a URL: host {parts.hostname!r} is not a DNS name or IP address")
    try:
        parts.port  # noqa: B018 (raises for a port that is not a number)
    except ValueError:
        raise ValueError("is not a URL: its port is not a number from 0 to 65535") from None
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    http_scheme, path = "https" if ws_scheme == "wss" else "http", parts.path.rstrip("/")
    return (
        urlunsplit((http_scheme, parts.netloc, path, "", "")),
        urlunsplit((ws_scheme, parts.netloc, path, "", "")),
    )


def numbers(value: str) -> tuple[str, ...]:
    """Comma-separated E.164 numbers as digits without ``+``."""
    return tuple(e164_digits(part.strip()) for part in value.split(",") if part.strip())


def is_webhook_secret(value: str) -> bool:
    """``whsec_`` then non-empty base64, as OpenAI shows it (https://www.standardwebhooks.com/)."""
    body = value.removeprefix("whsec_")
    try:
        return bool(base64.b64decode(body + "=" * (-len(body) % 4), validate=True))
    except (ValueError, binascii.Error):
        return False


def read_private_key(path: str) -> RSAPrivateKey:
    """The RSA private key in the PEM file at ``path`` (PKCS#8 or PKCS#1).

    Raises:
        ValueError: if the file cannot be read or does not hold a PEM RSA private key.
    """
    try:
        return load_private_key(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot be read ({exc.__class__.__name__})") from None


def database_url(value: str) -> str:
    """``sqlite:///<path>`` whose directory exists, or ``postgresql://`` with a database.

    Raises:
        ValueError: for another scheme, a PostgreSQL URL without a database, or a SQLite file
            whose directory is missing, that is a directory, or that cannot be written.
    """
    v = value.strip()
    scheme, sep, rest = v.partition("://")
    base = scheme.split("+", 1)[0].lower()
    if not sep or base not in ("sqlite", "postgresql", "postgres"):
        raise ValueError("must be a sqlite:///<path> or postgresql://user@host/db URL")
    if base != "sqlite":
        if not urlsplit(v).path.strip("/"):
            raise ValueError("names no database (postgresql://user:password@host:5432/dbname)")
        return v
    if not rest.startswith("/"):
        raise ValueError("sqlite URLs have three slashes: sqlite:///calls.db")
    path = rest[1:].split("?", 1)[0]
    if path in ("", ":memory:"):
        return v
    parent = Path(path).parent
    if not parent.is_dir():
        raise ValueError(f"directory {str(parent)!r} of the SQLite file does not exist")
    if Path(path).is_dir():
        raise ValueError(f"{path!r} is a directory, not a SQLite file")
    target = path if Path(path).exists() else str(parent)
    if not os.access(target, os.W_OK):
        raise ValueError(f"{target!r} is not writable (call records are written there)")
    return v


NOT_BLANK = check(str.strip, "must not be blank")
Text = Annotated[str, NOT_BLANK]
OptText = Annotated[str | None, parse(str, None)]
OptSecret = Annotated[SecretStr | None, parse(str, None)]
Url = Annotated[str, parse(http_url)]
Phone = Annotated[str | None, parse(e164_digits, None)]
Numbers = Annotated[tuple[str, ...], parse(numbers)]
Key = Annotated[RSAPrivateKey | None, parse(load_private_key, None)]
KeyFile = Annotated[RSAPrivateKey | None, parse(read_private_key, None)]
"""Annotated types of the settings fields: blank text means None (or the default) for the
optional ones; ``Key`` parses PEM text, ``KeyFile`` reads it from a path."""

"""Operators and their console sessions, in the call-record database. Shell: does I/O.

Two tables on the call store's SQLAlchemy metadata (``store.metadata``), created with the
others at start-up, on SQLite and PostgreSQL alike:

- ``console_operators``: ``name`` (primary key, 1-64 characters of ``[A-Za-z0-9._@-]``),
  ``password_hash`` (:func:`hash_password`), ``created_at``;
- ``console_sessions``: ``token_hash`` (primary key: SHA-256 of the cookie's token, so a
  leaked table opens no session), ``operator`` (deleted with its operator), ``csrf`` (the
  session's CSRF token), ``created_at``, ``expires_at``. Server-side, so any instance on
  the same database accepts a session another one opened.

Passwords are hashed with scrypt (``hashlib.scrypt``; N=2**14, r=8, p=1, 16-byte salt,
32-byte key: the parameters RFC 7914 section 2 and OWASP's password storage cheat sheet
give for interactive logins) and stored as ``scrypt$N$r$p$salt$key`` (base64); the clear
password is never stored or logged. Sources: https://www.rfc-editor.org/rfc/rfc7914,
https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ..store import SqlCallStore, UtcDateTime, metadata

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
MIN_PASSWORD = 8
"""Shortest password ``operator add`` / ``passwd`` accept, characters."""
MAX_PASSWORD = 1024
"""Longest password hashed (a longer one is refused before any work)."""
NAME_RE = re.compile(r"[A-Za-z0-9._@-]{1,64}")

operators_table = sa.Table(
    "console_operators",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

sessions_table = sa.Table(
    "console_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column(
        "operator",
        sa.String(64),
        sa.ForeignKey("console_operators.name", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Index("ix_console_sessions_expires_at", "expires_at"),
)


# ------------------------------------------------------------------ passwords (pure)


def check_name(name: str) -> str:
    """``name`` if it is a valid operator name.

    Raises:
        ValueError: not 1-64 characters of letters, digits and ``._@-``.
    """
    if not NAME_RE.fullmatch(name):
        raise ValueError("operator name: 1-64 characters of letters, digits and . _ @ -")
    return name


def check_password(password: str) -> str:
    """``password`` if it may be set.

    Raises:
        ValueError: shorter than :data:`MIN_PASSWORD` or longer than :data:`MAX_PASSWORD`.
    """
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"password: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ValueError(f"password: at most {MAX_PASSWORD} characters")
    return password


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES, maxmem=64 * 2**20
    )


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$key`` for ``password`` with a fresh random salt (about 50 ms of
    CPU: call it through ``asyncio.to_thread`` on the event loop)."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


@functools.cache
def dummy_hash() -> str:
    """Checked against when the operator does not exist, so that an unknown name takes as long
    as a wrong password (made once, on first use)."""
    return hash_password(secrets.token_urlsafe(16))


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (a :func:`hash_password` value); False for a
    malformed hash or an over-long password; compared in constant time."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt" or len(password) > MAX_PASSWORD:
            return False
        got = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
        return hmac.compare_digest(got, base64.b64decode(key))
    except ValueError:
        return False


def _check(password: str, stored: str | None) -> bool:
    """:func:`verify_password` against ``stored``, or the dummy hash (then False)."""
    return verify_password(password, stored or dummy_hash()) and stored is not None


def token_hash(token: str) -> str:
    """The stored form of a session token: SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# ------------------------------------------------------------------ database


@dataclass(frozen=True, slots=True)
class Operator:
    """A console operator as listed: name and creation time (UTC)."""

    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A logged-in operator: ``csrf`` must come back with every state-changing request."""

    operator: str
    csrf: str
    expires_at: datetime


class Accounts:
    """Operators and sessions on the call store's engine (tables created by its ``open``),
    taking turns with the store's own queries on SQLite (one writer at a time)."""

    def __init__(self, store: SqlCallStore) -> None:
        self.engine: AsyncEngine = store.engine
        self._turns = store._turns

    # ---------------------------------------------------------------- operators

    async def count(self) -> int:
        """How many operators there are."""
        async with self._turns, self.engine.connect() as conn:
            n = await conn.scalar(sa.select(sa.func.count()).select_from(operators_table))
        return int(n or 0)

    async def list(self) -> list[Operator]:
        """Every operator, by name."""
        async with self._turns, self.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(operators_table.c.name, operators_table.c.created_at).order_by(
                    operators_table.c.name
                )
            )
            return [Operator(r.name, r.created_at) for r in rows]

    async def add(self, name: str, password: str) -> bool:
        """Create operator ``name``; False if it exists already.

        Raises:
            ValueError: a bad name or password (:func:`check_name`, :func:`check_password`).
        """
        check_name(name)
        hashed = await asyncio.to_thread(hash_password, check_password(password))
        async with self._turns, self.engine.begin() as conn:
            exists = await conn.scalar(
                sa.select(operators_table.c.name).where(operators_table.c.name == name)
            )
            if exists is not None:
                return False
            await conn.execute(
                operators_table.insert().values(
                    name=name, password_hash=hashed, created_at=datetime.now(UTC)
                )
            )
        return True

    async def set_password(self, name: str, password: str) -> bool:
        """Change ``name``'s password and end its sessions; False if there is no such
        operator.

        Raises:
            ValueError: a bad password (:func:`check_password`).
        """
        hashed = await asyncio.to_thread(hash_password, check_password(password))
        async with self._turns, self.engine.begin() as conn:
            done = await conn.execute(
                operators_table.update()
                .where(operators_table.c.name == name)
                .values(password_hash=hashed)
            )
            await conn.execute(sessions_table.delete().where(sessions_table.c.operator == name))
        return done.rowcount == 1

    async def remove(self, name: str) -> bool:
        """Delete ``name`` and its sessions; False if there is no such operator."""
        async with self._turns, self.engine.begin() as conn:
            await conn.execute(sessions_table.delete().where(sessions_table.c.operator == name))
            done = await conn.execute(
                operators_table.delete().where(operators_table.c.name == name)
            )
        return done.rowcount == 1

    async def authenticate(self, name: str, password: str) -> bool:
        """Whether ``name`` exists and ``password`` is its password (as slow either way)."""
        async with self._turns, self.engine.connect() as conn:
            stored = await conn.scalar(
                sa.select(operators_table.c.password_hash).where(operators_table.c.name == name)
            )
        ok = await asyncio.to_thread(_check, password, stored)
        return ok

    # ---------------------------------------------------------------- sessions

    async def open_session(self, name: str, hours: float) -> tuple[str, ConsoleSession]:
        """A new session for ``name`` lasting ``hours``: the cookie's token and the session.
        Expired sessions of every operator are deleted on the way."""
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        session = ConsoleSession(name, secrets.token_urlsafe(32), now + timedelta(hours=hours))
        async with self._turns, self.engine.begin() as conn:
            await conn.execute(sessions_table.delete().where(sessions_table.c.expires_at <= now))
            await conn.execute(
                sessions_table.insert().values(
                    token_hash=token_hash(token),
                    operator=name,
                    csrf=session.csrf,
                    created_at=now,
                    expires_at=session.expires_at,
                )
            )
        return token, session

    async def session(self, token: str) -> ConsoleSession | None:
        """The live session of ``token``, or None (unknown, expired, operator removed)."""
        if not token or len(token) > 128:
            return None
        async with self._turns, self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(
                        sessions_table.c.operator,
                        sessions_table.c.csrf,
                        sessions_table.c.expires_at,
                    ).where(sessions_table.c.token_hash == token_hash(token))
                )
            ).first()
        if row is None or row.expires_at <= datetime.now(UTC):
            return None
        return ConsoleSession(row.operator, row.csrf, row.expires_at)

    async def close_session(self, token: str) -> None:
        """Delete the session of ``token`` (logout); nothing happens for an unknown token."""
        async with self._turns, self.engine.begin() as conn:
            await conn.execute(
                sessions_table.delete().where(sessions_table.c.token_hash == token_hash(token))
            )

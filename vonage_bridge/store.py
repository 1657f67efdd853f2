"""Call records: one row per call plus its timestamped transcript. Shell: does I/O.

:class:`CallRecord` is what ``GET /calls`` returns; :class:`CallStore` is what the web layer
needs; :class:`SqlCallStore` implements it for SQLite (``aiosqlite``, the default, a file next
to the app) and PostgreSQL (``asyncpg``, for several instances) with SQLAlchemy 2 Core async:
one code path, the dialect picked from ``DATABASE_URL``. On open the schema is migrated to
the newest revision (:mod:`.migrations`, Alembic, behind a PostgreSQL advisory lock); a
database of the version before migrations is recognised and stamped, and its ``calls`` table,
if older still (no ``front_door`` column), gets ``front_door VARCHAR(16) NOT NULL DEFAULT
'vonage'``: its old rows, all Vonage calls, read back as ``vonage``. A table of
:data:`metadata` that no revision creates yet is then created by ``metadata.create_all``
(only missing tables, never an ALTER); every schema change still needs its revision.
Revision 0003 added the outbound columns ``call_metadata`` (the ``POST /connect`` metadata
as JSON text) and ``amd`` (``human`` / ``machine``), and ``assistant`` / ``assistant_version``,
all nullable (NULL on older rows).
Revision 0004 added ``usage`` (JSON), ``cost_usd`` (float) and ``recording`` (JSON),
nullable: old rows read back with them null.
Revision 0005 added ``figures`` (the call's figures as JSON text,
``records.call_figures``; NULL on older rows), and 0006 the ``outbound_calls`` table
(``outbound_store``).

Timestamps are stored as naive UTC with microseconds (``TIMESTAMP WITHOUT TIME ZONE`` on
PostgreSQL, ISO text on SQLite) and come back as aware UTC ``datetime``s.

Transcripts are :class:`~.core.events.TranscriptEntry` items, as every front door's session
records them (``CallSession.stats.transcript``); an entry without a time is stored with a
NULL ``at`` (never invented at write time).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from .core.events import TranscriptEntry
from .errors import StoreUnavailable
from .migrations import upgrade_database

log = logging.getLogger(__name__)

DIRECTIONS = ("inbound", "outbound")
FRONT_DOOR_VONAGE = "vonage"
"""Vonage Voice API: NCCO answer + ``/vonage/ws`` media socket (also every pre-upgrade row)."""
FRONT_DOOR_TWILIO = "twilio"
"""Twilio Programmable Voice: TwiML answer + Media Streams socket."""
FRONT_DOOR_OPENAI_SIP = "openai-sip"
"""OpenAI's SIP connector: ``realtime.call.incoming`` webhook + sideband socket."""
FRONT_DOOR_BROWSER = "browser"
"""The operator console's browser phone: ``/console/phone/ws`` (L16 16 kHz from the mic)."""
FRONT_DOORS = (FRONT_DOOR_VONAGE, FRONT_DOOR_TWILIO, FRONT_DOOR_OPENAI_SIP, FRONT_DOOR_BROWSER)
"""Every value of ``CallRecord.front_door`` (at most 16 characters: the column's width)."""


SCHEMA_LOCK_KEY = 0x76622D7363686D61
"""PostgreSQL advisory lock taken while creating or upgrading tables, so that instances
starting at once on one database take turns (``CREATE TABLE`` races on the catalog
otherwise). Source: https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS
"""


async def lock_schema(conn: AsyncConnection) -> None:
    """On PostgreSQL, wait for :data:`SCHEMA_LOCK_KEY` until the transaction ends; nothing on
    SQLite (one writer at a time anyway)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK_KEY})"))


UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, OSError, TimeoutError)
"""Errors of a database that is down or unusable, as opposed to bugs (which propagate)."""


# ------------------------------------------------------------------ records


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One finished (or cut-off) call.

    Attributes:
        call_uuid: the front door's call id (the primary key; a call's first record stays,
            a later one with the same id is refused): Vonage call leg UUID, Twilio
            ``CallSid`` (``CA...``) or OpenAI SIP ``call_id``.
        conversation_uuid: Vonage ``CON-...`` UUID, when known.
        direction: ``inbound`` (``/incoming-call``) or ``outbound`` (``POST /connect``).
        from_number / to_number: as the provider gave them (untrusted, bounded), when known.
        started_at / ended_at: aware UTC, microseconds (media socket open / call cleaned up).
        duration_s: the call's length, s.
        end_reason: why it ended, as in the summary log line.
        front_door: which front door the call came through, one of :data:`FRONT_DOORS`
            (default ``vonage``); :meth:`SqlCallStore.add` refuses anything else.
        transcript: entries in the order they happened.
        metadata: the JSON object ``POST /connect`` was given for the call, or None.
        amd: what answering machine detection said of an outbound call: ``human``,
            ``machine``, or None (not asked, or no answer yet).
        assistant / assistant_version: the assistant that answered and its version (0: the
            built-in default); None on records written before assistants.
        usage: the call's token usage in OpenAI's shape (``core.usage.CallUsage.to_json``),
            None when unknown.
        cost_usd: what that usage cost, USD (``prices.call_cost_usd``); None when a model it
            used has no price.
        recording: the call's recording (``recording.RecordingResult.to_json``: ``url``,
            ``seconds``, ``bytes``, ``format``, ``channels``, ``rate_hz``, ``status``), or
            None when the call was not recorded.
        figures: the call's figures (``records.call_figures``: reply latency median/p95 in
            ms, underruns, barge-ins...), or None on records written before them.
    """

    call_uuid: str
    direction: str
    started_at: datetime
    ended_at: datetime
    duration_s: float
    end_reason: str
    front_door: str = FRONT_DOOR_VONAGE
    conversation_uuid: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    transcript: tuple[TranscriptEntry, ...] = field(default=())
    metadata: dict[str, object] | None = None
    amd: str | None = None
    assistant: str | None = None
    assistant_version: int | None = None
    usage: dict[str, Any] | None = None
    cost_usd: float | None = None
    recording: dict[str, Any] | None = None
    figures: dict[str, object] | None = None

    def to_json(self, *, with_transcript: bool = True) -> dict[str, Any]:
        """The record as the API returns it: times ISO 8601 in UTC with microseconds,
        ``duration_s`` in s, ``cost_usd`` in USD; the transcript unless ``with_transcript`` is
        False."""
        body: dict[str, Any] = {
            "call_uuid": self.call_uuid,
            "conversation_uuid": self.conversation_uuid,
            "direction": self.direction,
            "from": self.from_number,
            "to": self.to_number,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "duration_s": self.duration_s,
            "end_reason": self.end_reason,
            "front_door": self.front_door,
            "metadata": self.metadata,
            "amd": self.amd,
            "assistant": self.assistant,
            "assistant_version": self.assistant_version,
            "usage": self.usage,
            "cost_usd": self.cost_usd,
            "recording": self.recording,
            "figures": self.figures,
        }
        if with_transcript:
            body["transcript"] = [e.to_json() for e in self.transcript]
        return body


@dataclass(frozen=True, slots=True)
class CallFilter:
    """What :meth:`CallStore.page` keeps (every given condition must hold; None: any).

    Attributes:
        direction: ``inbound`` or ``outbound``.
        number: part of the caller's or the called number (a substring, as typed).
        since / until: ``started_at >= since`` and ``started_at < until`` (aware datetimes).
        end_reason: part of the end reason, case-insensitive (``caller``, ``shutdown``...).
        words: every word must occur in one of the call's transcript entries,
            case-insensitive (a substring match, not a full-text index).
    """

    direction: str | None = None
    number: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    end_reason: str | None = None
    words: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CallPage:
    """A page of records, newest first (without transcripts); ``next_offset`` is None on the
    last page; ``total_cost_usd`` sums ``cost_usd`` over every record the filters keep (all
    pages), rounded to 1e-6."""

    records: list[CallRecord]
    offset: int
    limit: int
    next_offset: int | None
    total_cost_usd: float = 0.0


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat(timespec="microseconds")


# ------------------------------------------------------------------ protocol


class CallStore(Protocol):
    """Where call records go. Implementations must be safe to call from many calls at once."""

    async def add(self, record: CallRecord) -> bool:
        """Write the record of ``record.call_uuid`` with its transcript, once: True if it was
        written; False (one WARNING line with the call id, no numbers) if that call already
        has a record, which stays as it is (a later connection never overwrites a call).

        Raises:
            ValueError: ``record.front_door`` is not one of :data:`FRONT_DOORS`.
        """

    async def get(self, call_uuid: str) -> CallRecord | None:
        """The record with its transcript, or None.

        Raises:
            StoreUnavailable: the database is down or unusable (503).
        """

    async def page(
        self,
        *,
        limit: int,
        offset: int,
        front_door: str | None = None,
        where: CallFilter | None = None,
        min_cost: float | None = None,
    ) -> CallPage:
        """Records newest first (by ``started_at``), without transcripts; only those of
        ``front_door`` (one of :data:`FRONT_DOORS`) when it is given, only those ``where``
        keeps (:class:`CallFilter`), and those that cost at least ``min_cost`` USD when it is
        given (a record without a cost is then left out).

        Raises:
            StoreUnavailable: the database is down or unusable (503).
        """

    async def close(self) -> None:
        """Release connections."""


# ------------------------------------------------------------------ SQL implementation


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC ``datetime`` in, aware UTC out; stored naive UTC with microseconds."""

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """An aware ``datetime`` -> naive UTC for the column.

        Raises:
            ValueError: ``value`` is naive.
        """
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: call records need aware UTC times")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """The column's naive UTC value -> aware UTC."""
        return None if value is None else value.replace(tzinfo=UTC)


metadata = sa.MetaData()

calls_table = sa.Table(
    "calls",
    metadata,
    sa.Column("call_uuid", sa.String(128), primary_key=True),
    sa.Column("conversation_uuid", sa.String(128), nullable=True),
    sa.Column("direction", sa.String(16), nullable=False),
    sa.Column("from_number", sa.String(64), nullable=True),
    sa.Column("to_number", sa.String(64), nullable=True),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("ended_at", UtcDateTime(), nullable=False),
    sa.Column("duration_s", sa.Float, nullable=False),
    sa.Column("end_reason", sa.Text, nullable=False),
    sa.Column(
        "front_door",
        sa.String(16),
        nullable=False,
        server_default=sa.text(f"'{FRONT_DOOR_VONAGE}'"),
    ),
    # outbound calls (POST /connect): the caller's metadata as JSON text, and AMD's verdict
    sa.Column("call_metadata", sa.Text, nullable=True),
    sa.Column("amd", sa.String(16), nullable=True),
    sa.Column("assistant", sa.String(64), nullable=True),
    sa.Column("assistant_version", sa.Integer, nullable=True),
    # usage and cost, recording (issue 14)
    sa.Column("usage", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("cost_usd", sa.Float, nullable=True),
    sa.Column("recording", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("figures", sa.Text, nullable=True),
    sa.Index("ix_calls_started_at", "started_at"),
)

transcript_table = sa.Table(
    "transcript_entries",
    metadata,
    sa.Column(
        "call_uuid",
        sa.String(128),
        sa.ForeignKey("calls.call_uuid", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("at", UtcDateTime(), nullable=True),
)


def async_url(database_url: str) -> str:
    """``DATABASE_URL`` with the async driver: ``sqlite://`` -> ``sqlite+aiosqlite://``,
    ``postgresql://`` / ``postgres://`` -> ``postgresql+asyncpg://``.

    Raises:
        ValueError: for any other scheme.
    """
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "postgres":
        backend = "postgresql"
    driver = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}.get(backend)
    if driver is None:
        raise ValueError("must be a sqlite:/// or postgresql:// URL")
    return url.set(drivername=f"{backend}+{driver}").render_as_string(hide_password=False)


def open_engine(database_url: str, *, connect_timeout_s: float = 5.0) -> AsyncEngine:
    """An async engine for ``DATABASE_URL`` (:func:`async_url`), pinging connections before
    use. On PostgreSQL, ``connect_timeout_s`` bounds a connection attempt, and libpq's
    ``options=-c name=value ...`` query parameter (e.g. ``options=-csearch_path%3Dbridge``,
    the schema to use) becomes asyncpg's ``server_settings``, which take no ``options``.
    Source: https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNECT-OPTIONS

    Raises:
        ValueError: if the URL's scheme is not supported, or ``options`` holds anything but
            ``-c name=value`` settings.
    """
    url = make_url(async_url(database_url))
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.get_backend_name() == "postgresql":
        connect: dict[str, Any] = {"timeout": connect_timeout_s}
        options = url.query.get("options")
        if options is not None:
            text = options if isinstance(options, str) else " ".join(options)
            connect["server_settings"] = server_settings(text)
            url = url.difference_update_query(["options"])
        kwargs["connect_args"] = connect
    return create_async_engine(url, **kwargs)


def server_settings(options: str) -> dict[str, str]:
    """``-c a=1 -cb=2`` -> ``{"a": "1", "b": "2"}``; ValueError on anything else."""
    words = options.split()
    settings: dict[str, str] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word == "-c" and i + 1 < len(words):
            item, i = words[i + 1], i + 2
        elif word.startswith("-c") and len(word) > 2:
            item, i = word[2:], i + 1
        else:
            raise ValueError("options: only -c name=value settings are supported")
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise ValueError("options: only -c name=value settings are supported")
        settings[name] = value
    return settings


class SqlCallStore:
    """:class:`CallStore` on SQLAlchemy Core async (SQLite or PostgreSQL)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # SQLite has one writer at a time, and ``:memory:`` shares one connection between
        # coroutines (StaticPool): take turns here instead of interleaving transactions.
        self._turns: contextlib.AbstractAsyncContextManager[object] = (
            asyncio.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )

    @classmethod
    async def open(cls, database_url: str, *, connect_timeout_s: float = 5.0) -> SqlCallStore:
        """Connect and migrate the schema to the newest revision (see the module docstring).

        Raises:
            ValueError: if the URL's scheme is not supported.
            sqlalchemy.exc.SQLAlchemyError / OSError: if the database cannot be reached.
        """
        engine = open_engine(database_url, connect_timeout_s=connect_timeout_s)
        store = cls(engine)
        try:
            await upgrade_database(engine, metadata)
        except BaseException:
            await engine.dispose()
            raise
        return store

    @property
    def turns(self) -> contextlib.AbstractAsyncContextManager[object]:
        """Hold it around a transaction on :attr:`engine` (SQLite takes turns; PostgreSQL
        does not wait)."""
        return self._turns

    @property
    def dialect(self) -> str:
        """The engine's dialect name: ``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    async def add(self, record: CallRecord) -> bool:
        """See :meth:`CallStore.add` (one ``INSERT ... ON CONFLICT DO NOTHING``).

        Raises:
            ValueError: ``record.front_door`` is not one of :data:`FRONT_DOORS`.
        """
        if record.front_door not in FRONT_DOORS:
            raise ValueError(f"front_door must be one of {FRONT_DOORS}, not {record.front_door!r}")
        async with self._turns, self.engine.begin() as conn:
            # Insert once: ON CONFLICT DO NOTHING, so that of two writers (two instances on
            # one PostgreSQL) exactly one inserts and the other sees 0 rows, without an error.
            inserted = await conn.execute(
                _insert_once(conn.dialect.name).values(
                    call_uuid=record.call_uuid,
                    conversation_uuid=record.conversation_uuid,
                    direction=record.direction,
                    from_number=record.from_number,
                    to_number=record.to_number,
                    started_at=record.started_at,
                    ended_at=record.ended_at,
                    duration_s=record.duration_s,
                    end_reason=record.end_reason,
                    front_door=record.front_door,
                    call_metadata=_metadata_text(record.metadata),
                    amd=record.amd,
                    assistant=record.assistant,
                    assistant_version=record.assistant_version,
                    usage=record.usage,
                    cost_usd=record.cost_usd,
                    recording=record.recording,
                    figures=_metadata_text(record.figures),
                )
            )
            if inserted.rowcount != 1:
                log.warning(
                    "call record of %s already exists: this one is not written, the first stays",
                    record.call_uuid,
                )
                return False
            if record.transcript:
                await conn.execute(
                    transcript_table.insert(),
                    [
                        {
                            "call_uuid": record.call_uuid,
                            "seq": seq,
                            "role": e.role,
                            "text": e.text,
                            "at": e.at,
                        }
                        for seq, e in enumerate(record.transcript)
                    ],
                )
        return True

    async def get(self, call_uuid: str) -> CallRecord | None:
        """See :meth:`CallStore.get`; raises :class:`StoreUnavailable` when the database is down."""
        try:
            return await self._get(call_uuid)
        except UNAVAILABLE as exc:
            raise StoreUnavailable(f"call records unavailable: {exc.__class__.__name__}") from exc

    async def _get(self, call_uuid: str) -> CallRecord | None:
        async with self._turns, self.engine.connect() as conn:
            row = (
                await conn.execute(calls_table.select().where(calls_table.c.call_uuid == call_uuid))
            ).first()
            if row is None:
                return None
            lines = await conn.execute(
                sa.select(transcript_table.c.role, transcript_table.c.text, transcript_table.c.at)
                .where(transcript_table.c.call_uuid == call_uuid)
                .order_by(transcript_table.c.seq)
            )
            entries = tuple(TranscriptEntry(r.role, r.text, r.at) for r in lines)
        return _record(row, entries)

    async def page(
        self,
        *,
        limit: int,
        offset: int,
        front_door: str | None = None,
        where: CallFilter | None = None,
        min_cost: float | None = None,
    ) -> CallPage:
        """See :meth:`CallStore.page`; raises :class:`StoreUnavailable` when the database is
        down."""
        try:
            return await self._page(
                limit=limit, offset=offset, front_door=front_door, where=where, min_cost=min_cost
            )
        except UNAVAILABLE as exc:
            raise StoreUnavailable(f"call records unavailable: {exc.__class__.__name__}") from exc

    async def _page(
        self,
        *,
        limit: int,
        offset: int,
        front_door: str | None,
        where: CallFilter | None,
        min_cost: float | None,
    ) -> CallPage:
        filters: list[sa.ColumnElement[bool]] = []
        if front_door is not None:
            filters.append(calls_table.c.front_door == front_door)
        if where is not None:
            filters.extend(_conditions(where))
        if min_cost is not None:
            filters.append(calls_table.c.cost_usd >= min_cost)
        query = (
            calls_table.select()
            .where(*filters)
            .order_by(calls_table.c.started_at.desc(), calls_table.c.call_uuid.desc())
            .limit(limit + 1)
            .offset(offset)
        )
        total = sa.select(sa.func.coalesce(sa.func.sum(calls_table.c.cost_usd), 0.0)).where(
            *filters
        )
        async with self._turns, self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            total_cost = (await conn.execute(total)).scalar_one()
        more = len(rows) > limit
        return CallPage(
            records=[_record(r, ()) for r in rows[:limit]],
            offset=offset,
            limit=limit,
            next_offset=offset + limit if more else None,
            total_cost_usd=round(float(total_cost), 6),
        )

    async def close(self) -> None:
        """See :meth:`CallStore.close`: dispose of the engine's connections."""
        await self.engine.dispose()


def _contains(column: sa.ColumnElement[str], text: str) -> sa.ColumnElement[bool]:
    """``column`` contains ``text``, case-insensitive, with ``%`` and ``_`` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return sa.func.lower(column).like(f"%{escaped.lower()}%", escape="\\")


def _conditions(where: CallFilter) -> list[sa.ColumnElement[bool]]:
    """The SQL conditions of ``where`` (the same on SQLite and PostgreSQL)."""
    c = calls_table.c
    out: list[sa.ColumnElement[bool]] = []
    if where.direction is not None:
        out.append(c.direction == where.direction)
    if where.number:
        out.append(
            sa.or_(_contains(c.from_number, where.number), _contains(c.to_number, where.number))
        )
    if where.since is not None:
        out.append(c.started_at >= where.since)
    if where.until is not None:
        out.append(c.started_at < where.until)
    if where.end_reason:
        out.append(_contains(c.end_reason, where.end_reason))
    t = transcript_table.c
    for word in where.words:
        out.append(sa.exists().where(t.call_uuid == c.call_uuid, _contains(t.text, word)))
    return out


def _insert_once(dialect: str) -> sa.Insert:
    """``INSERT INTO calls ... ON CONFLICT (call_uuid) DO NOTHING`` for SQLite (3.24+) and
    PostgreSQL: a row that is already there is left as it is and counts 0 rows.

    Sources: https://www.sqlite.org/lang_upsert.html,
    https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT
    """
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(calls_table).on_conflict_do_nothing(index_elements=[calls_table.c.call_uuid])


def _record(row: sa.Row[Any], transcript: tuple[TranscriptEntry, ...]) -> CallRecord:
    return CallRecord(
        call_uuid=row.call_uuid,
        conversation_uuid=row.conversation_uuid,
        direction=row.direction,
        from_number=row.from_number,
        to_number=row.to_number,
        started_at=row.started_at,
        ended_at=row.ended_at,
        duration_s=row.duration_s,
        end_reason=row.end_reason,
        front_door=row.front_door,
        transcript=transcript,
        metadata=_metadata_value(row.call_metadata),
        amd=row.amd,
        assistant=row.assistant,
        assistant_version=row.assistant_version,
        usage=row.usage,
        cost_usd=row.cost_usd,
        recording=row.recording,
        figures=_metadata_value(row.figures),
    )


def _metadata_text(metadata: dict[str, object] | None) -> str | None:
    return None if metadata is None else json.dumps(metadata, separators=(",", ":"))


def _metadata_value(text: str | None) -> dict[str, object] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None

"""Call records: one row per call plus its timestamped transcript. Shell: does I/O.

:class:`CallRecord` is what ``GET /calls`` returns; :class:`CallStore` is what the web layer
needs; :class:`SqlCallStore` implements it for SQLite (``aiosqlite``, the default, a file next
to the app) and PostgreSQL (``asyncpg``, for several instances) with SQLAlchemy 2 Core async:
one code path, the dialect picked from ``DATABASE_URL``. Tables are created on start-up
(``metadata.create_all``); there is no migration framework yet. Upgrades are done by hand on
open: a ``calls`` table of the previous version (no ``front_door`` column) gets
``front_door VARCHAR(16) NOT NULL DEFAULT 'vonage'`` added, the same DDL on SQLite and
PostgreSQL (``IF NOT EXISTS`` on PostgreSQL, where several instances may open at once); its
old rows, all Vonage calls, read back as ``vonage``. The nullable ``usage`` (JSON),
``cost_usd`` (float) and ``recording`` (JSON) columns are added the same way when missing;
old rows read back with them null.

Timestamps are stored as naive UTC with microseconds (``TIMESTAMP WITHOUT TIME ZONE`` on
PostgreSQL, ISO text on SQLite) and come back as aware UTC ``datetime``s.

Transcripts are :class:`~.core.events.TranscriptEntry` items, as every front door's session
records them (``CallSession.stats.transcript``); an entry without a time is stored with a
NULL ``at`` (never invented at write time).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .core.events import TranscriptEntry
from .errors import StoreUnavailable

log = logging.getLogger(__name__)

DIRECTIONS = ("inbound", "outbound")
FRONT_DOOR_VONAGE = "vonage"
"""Vonage Voice API: NCCO answer + ``/vonage/ws`` media socket (also every pre-upgrade row)."""
FRONT_DOOR_TWILIO = "twilio"
"""Twilio Programmable Voice: TwiML answer + Media Streams socket."""
FRONT_DOOR_OPENAI_SIP = "openai-sip"
"""OpenAI's SIP connector: ``realtime.call.incoming`` webhook + sideband socket."""
FRONT_DOORS = (FRONT_DOOR_VONAGE, FRONT_DOOR_TWILIO, FRONT_DOOR_OPENAI_SIP)
"""Every value of ``CallRecord.front_door`` (at most 16 characters: the column's width)."""


_UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, OSError, TimeoutError)
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
        usage: the call's token usage in OpenAI's shape (``core.usage.CallUsage.to_json``),
            None when unknown.
        cost_usd: what that usage cost, USD (``prices.call_cost_usd``); None when a model it
            used has no price.
        recording: the call's recording (``recording.RecordingResult.to_json``: ``url``,
            ``seconds``, ``bytes``, ``format``, ``channels``, ``rate_hz``, ``status``), or
            None when the call was not recorded.
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
    usage: dict[str, Any] | None = None
    cost_usd: float | None = None
    recording: dict[str, Any] | None = None

    def to_json(self, *, with_transcript: bool = True) -> dict[str, Any]:
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
            "usage": self.usage,
            "cost_usd": self.cost_usd,
            "recording": self.recording,
        }
        if with_transcript:
            body["transcript"] = [e.to_json() for e in self.transcript]
        return body


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
        min_cost: float | None = None,
    ) -> CallPage:
        """Records newest first (by ``started_at``), without transcripts; only those of
        ``front_door`` (one of :data:`FRONT_DOORS`) when it is given, and those that cost at
        least ``min_cost`` USD when it is given (a record without a cost is then left out).

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
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: call records need aware UTC times")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
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
    # usage and cost, recording (issue 14)
    sa.Column("usage", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("cost_usd", sa.Float, nullable=True),
    sa.Column("recording", sa.JSON(none_as_null=True), nullable=True),
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
        """Connect, create the tables if they are missing and upgrade a previous version's
        ``calls`` table (adds ``front_door``, see the module docstring).

        Raises:
            ValueError: if the URL's scheme is not supported.
            sqlalchemy.exc.SQLAlchemyError / OSError: if the database cannot be reached.
        """
        url = async_url(database_url)
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if url.startswith("postgresql"):
            kwargs["connect_args"] = {"timeout": connect_timeout_s}
        engine = create_async_engine(url, **kwargs)
        store = cls(engine)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(metadata.create_all)
                added = await conn.run_sync(_add_missing_columns)
        except BaseException:
            await engine.dispose()
            raise
        for column in added:
            log.info("call store upgraded: added column calls.%s", column)
        return store

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def add(self, record: CallRecord) -> bool:
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
                    usage=record.usage,
                    cost_usd=record.cost_usd,
                    recording=record.recording,
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
        try:
            return await self._get(call_uuid)
        except _UNAVAILABLE as exc:
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
        min_cost: float | None = None,
    ) -> CallPage:
        try:
            return await self._page(
                limit=limit, offset=offset, front_door=front_door, min_cost=min_cost
            )
        except _UNAVAILABLE as exc:
            raise StoreUnavailable(f"call records unavailable: {exc.__class__.__name__}") from exc

    async def _page(
        self, *, limit: int, offset: int, front_door: str | None, min_cost: float | None
    ) -> CallPage:
        filters: list[sa.ColumnElement[bool]] = []
        if front_door is not None:
            filters.append(calls_table.c.front_door == front_door)
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
        await self.engine.dispose()


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
        usage=row.usage,
        cost_usd=row.cost_usd,
        recording=row.recording,
    )


def _add_missing_columns(conn: sa.Connection) -> list[str]:
    """Bring a previous version's ``calls`` table up to date; the names of the columns added.

    Run on a sync connection (``AsyncConnection.run_sync``) after ``create_all``, in its
    transaction. The DDL works on SQLite (a ``NOT NULL`` column added with a default) and on
    PostgreSQL (11+ adds it without rewriting the table).
    """
    present = {c["name"] for c in sa.inspect(conn).get_columns(calls_table.name)}
    maybe = "IF NOT EXISTS " if conn.dialect.name == "postgresql" else ""
    added: list[str] = []
    if "front_door" not in present:
        conn.execute(
            sa.text(
                f"ALTER TABLE {calls_table.name} ADD COLUMN {maybe}front_door VARCHAR(16) "
                f"NOT NULL DEFAULT '{FRONT_DOOR_VONAGE}'"
            )
        )
        added.append("front_door")
    # usage and cost, recording (issue 14): nullable, so old rows read back as null
    for name in ("usage", "cost_usd", "recording"):
        if name not in present:
            ddl = calls_table.c[name].type.compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE {calls_table.name} ADD COLUMN {maybe}{name} {ddl}"))
            added.append(name)
    return added

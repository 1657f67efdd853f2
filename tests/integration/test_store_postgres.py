"""The call store against a real PostgreSQL server (``VB_TEST_POSTGRES_URL``).

``.ci/run`` installs and starts one and exports the URL. Without it these tests skip locally,
and fail under ``CI=true``: CI must not pass by skipping the database it is meant to test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from pg_support import pg_schema
from support import SECOND, StartCall

from vonage_bridge.sim.realtime import FakeRealtimeOptions
from vonage_bridge.store import (
    FRONT_DOOR_TWILIO,
    FRONT_DOOR_VONAGE,
    CallRecord,
    SqlCallStore,
    TranscriptEntry,
    metadata,
    open_engine,
)
from vonage_bridge.web.keys import CALLS, STORE

T0 = datetime(2026, 11, 23, 10, 0, 0, 987654, tzinfo=UTC)


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """``VB_TEST_POSTGRES_URL`` on a schema of this test's own (``pg_support``): parallel
    branches and runs sharing the server never see each other's tables or revisions."""
    async for schema in pg_schema():
        yield schema.url


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[SqlCallStore]:
    """A store on empty tables (dropped and created again for each test)."""
    s = await SqlCallStore.open(pg_url)
    async with s.engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
    yield s
    await s.close()


def record(n: int, **overrides: object) -> CallRecord:
    fields: dict[str, object] = {
        "call_uuid": f"pg-{n}",
        "conversation_uuid": f"CON-{n}",
        "direction": "outbound",
        "from_number": "447700900000",
        "to_number": "447700900001",
        "started_at": T0 + timedelta(seconds=n),
        "ended_at": T0 + timedelta(seconds=n + 3, microseconds=1),
        "duration_s": 3.0,
        "end_reason": "caller hung up (close 1000)",
        "transcript": (),
    }
    fields.update(overrides)
    return CallRecord(**fields)  # type: ignore[arg-type]


async def test_postgres_round_trips_records_with_microseconds(store: SqlCallStore) -> None:
    assert store.dialect == "postgresql"
    entries = (
        TranscriptEntry("caller", "hello", T0 + timedelta(microseconds=7)),
        TranscriptEntry("assistant", "hi", None),
        TranscriptEntry("dtmf", "#", T0 + timedelta(seconds=1)),
    )
    original = record(1, transcript=entries)
    assert await store.add(original) is True
    assert await store.get("pg-1") == original
    assert await store.add(record(1, end_reason="again")) is False  # written once
    assert await store.get("pg-1") == original
    assert await store.get("pg-none") is None


async def test_postgres_two_instances_adding_one_call_write_it_once(
    store: SqlCallStore, pg_url: str
) -> None:
    other = await SqlCallStore.open(pg_url)  # a second bridge instance on the same database
    try:
        entries = (TranscriptEntry("caller", "hello", T0), TranscriptEntry("assistant", "hi"))
        first = record(7, transcript=entries)
        later = record(7, end_reason="replayed", from_number="15550000001", transcript=())
        written = await asyncio.gather(
            store.add(first), other.add(later), store.add(later), other.add(first)
        )
        assert sorted(written) == [False, False, False, True]
        got = await other.get("pg-7")
        assert got in (first, later)  # one of them, whole: never a mix
        assert await store.get("pg-7") == got
    finally:
        await other.close()


async def test_postgres_pages_newest_first_across_two_instances(
    store: SqlCallStore, pg_url: str
) -> None:
    other = await SqlCallStore.open(pg_url)  # a second bridge instance on the same database
    try:
        await asyncio.gather(
            *(s.add(record(n)) for n, s in zip(range(6), [store, other] * 3, strict=True))
        )
        first = await other.page(limit=4, offset=0)
        assert [r.call_uuid for r in first.records] == ["pg-5", "pg-4", "pg-3", "pg-2"]
        assert first.next_offset == 4
        rest = await store.page(limit=4, offset=4)
        assert [r.call_uuid for r in rest.records] == ["pg-1", "pg-0"]
        assert rest.next_offset is None
    finally:
        await other.close()


async def test_loopback_call_is_recorded_in_postgres(
    pg_url: str,
    store: SqlCallStore,
    start_call: StartCall,  # the schema outlives the bridge
) -> None:
    call = await start_call(FakeRealtimeOptions(reject_status=401), DATABASE_URL=pg_url)
    assert call.bridge.app[STORE] is not None
    caller = call.caller()
    await caller.answer()
    await caller.connect()
    await caller.wait_closed(timeout=10 * SECOND)
    live = call.bridge.app[CALLS].get(caller.call_uuid)
    if live is not None:
        await asyncio.wait({live.task}, timeout=5 * SECOND)
    got = await store.get(caller.call_uuid)
    assert got is not None
    assert got.direction == "inbound"
    assert got.conversation_uuid == caller.conversation_uuid
    assert "401" in got.end_reason


# The ``calls`` table as the version before front doors created it (SQLAlchemy's PostgreSQL DDL).
OLD_POSTGRES_SCHEMA = [
    """CREATE TABLE calls (
        call_uuid VARCHAR(128) NOT NULL,
        conversation_uuid VARCHAR(128),
        direction VARCHAR(16) NOT NULL,
        from_number VARCHAR(64),
        to_number VARCHAR(64),
        started_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
        ended_at TIMESTAMP WITHOUT TIME ZONE NOT NULL,
        duration_s FLOAT NOT NULL,
        end_reason TEXT NOT NULL,
        PRIMARY KEY (call_uuid)
    )""",
    "CREATE INDEX ix_calls_started_at ON calls (started_at)",
    """CREATE TABLE transcript_entries (
        call_uuid VARCHAR(128) NOT NULL,
        seq INTEGER NOT NULL,
        role VARCHAR(32) NOT NULL,
        text TEXT NOT NULL,
        at TIMESTAMP WITHOUT TIME ZONE,
        PRIMARY KEY (call_uuid, seq),
        FOREIGN KEY(call_uuid) REFERENCES calls (call_uuid) ON DELETE CASCADE
    )""",
    """INSERT INTO calls VALUES ('pg-old', 'CON-old', 'inbound', '447700900000', '447700900001',
        '2026-11-22 09:00:00.000001', '2026-11-22 09:01:00.5', 60.5, 'caller hung up')""",
    "INSERT INTO transcript_entries VALUES ('pg-old', 0, 'caller', 'hello', NULL)",
]


async def test_postgres_previous_version_table_gets_the_front_door_column(pg_url: str) -> None:
    engine = open_engine(pg_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)
            # The previous version had no migrations: no alembic_version table either.
            await conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
            for statement in OLD_POSTGRES_SCHEMA:
                await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()

    # Two instances start at once on the old table: both upgrade it, neither fails.
    first, second = await asyncio.gather(SqlCallStore.open(pg_url), SqlCallStore.open(pg_url))
    try:
        old = await second.get("pg-old")
        assert old is not None
        assert old.front_door == FRONT_DOOR_VONAGE
        assert old.started_at == datetime(2026, 11, 22, 9, 0, 0, 1, tzinfo=UTC)
        assert (old.duration_s, old.transcript) == (60.5, (TranscriptEntry("caller", "hello"),))
        new = record(1, front_door=FRONT_DOOR_TWILIO)
        await first.add(new)
        assert await second.get("pg-1") == new
        twilio = await second.page(limit=10, offset=0, front_door=FRONT_DOOR_TWILIO)
        assert [r.call_uuid for r in twilio.records] == ["pg-1"]
        vonage = await first.page(limit=10, offset=0, front_door=FRONT_DOOR_VONAGE)
        assert [r.call_uuid for r in vonage.records] == ["pg-old"]
        async with first.engine.connect() as conn:
            column = (
                await conn.execute(
                    sa.text(
                        "SELECT data_type, character_maximum_length, is_nullable, column_default"
                        " FROM information_schema.columns"
                        " WHERE table_name = 'calls' AND column_name = 'front_door'"
                        " AND table_schema = current_schema()"  # not another run's schema
                    )
                )
            ).one()
        assert tuple(column[:3]) == ("character varying", 16, "NO")
        assert "'vonage'" in column[3]
    finally:
        await first.close()
        await second.close()


OUTBOUND_SCHEMA = "vb_outbound_test"
"""This branch's own schema, so parallel runs on the shared server do not collide."""


async def test_outbound_metadata_and_amd_round_trip_on_postgresql(pg_url: str) -> None:
    engine = open_engine(pg_url)
    async with engine.begin() as conn:
        await conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {OUTBOUND_SCHEMA} CASCADE"))
        await conn.execute(sa.text(f"CREATE SCHEMA {OUTBOUND_SCHEMA}"))
    scoped = engine.execution_options(schema_translate_map={None: OUTBOUND_SCHEMA})
    try:
        async with scoped.begin() as conn:
            await conn.run_sync(metadata.create_all)
        store = SqlCallStore(scoped)
        meta: dict[str, object] = {"crm_id": 42, "tags": ["vip", "é"]}
        await store.add(record(1, metadata=meta, amd="machine"))
        await store.add(record(2))
        got = await store.get("pg-1")
        assert got is not None and (got.metadata, got.amd) == (meta, "machine")
        plain = await store.get("pg-2")
        assert plain is not None and (plain.metadata, plain.amd) == (None, None)
        page = await store.page(limit=10, offset=0)
        assert {r.call_uuid: r.amd for r in page.records} == {"pg-1": "machine", "pg-2": None}
    finally:
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {OUTBOUND_SCHEMA} CASCADE"))
        await engine.dispose()

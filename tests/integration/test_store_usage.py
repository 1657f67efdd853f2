"""The call store keeps usage, cost and recording, filters by cost and totals it, on SQLite
and (with ``VB_TEST_POSTGRES_URL``) PostgreSQL, in a schema of its own (``rec14``) so that
parallel runs on the same server do not collide; a database of the revision before is upgraded."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import create_async_engine

from vonage_bridge import migrations
from vonage_bridge.store import CallRecord, SqlCallStore, async_url, metadata

T0 = datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=UTC)
SCHEMA = "rec14"
USAGE = {"input_tokens": 10, "transcription": {"input_tokens": 2}}
RECORDING = {"status": "complete", "url": "http://x/calls/c/recording", "rate_hz": 16000}


def record(n: int, cost: float | None, **overrides: Any) -> CallRecord:
    fields: dict[str, Any] = {
        "call_uuid": f"c-{n}",
        "direction": "inbound",
        "started_at": T0 + timedelta(seconds=n),
        "ended_at": T0 + timedelta(seconds=n + 1),
        "duration_s": 1.0,
        "end_reason": "caller hung up",
        "usage": USAGE,
        "cost_usd": cost,
        "recording": RECORDING if n == 1 else None,
    }
    fields.update(overrides)
    return CallRecord(**fields)


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlCallStore]:
    if request.param == "sqlite":
        s = await SqlCallStore.open(f"sqlite:///{tmp_path / 'calls.db'}")
        yield s
        await s.close()
        return
    url = os.environ.get("VB_TEST_POSTGRES_URL", "")
    if not url:
        pytest.skip("VB_TEST_POSTGRES_URL not set")
    admin = create_async_engine(async_url(url))
    async with admin.begin() as conn:
        await conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        await conn.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
    engine = create_async_engine(
        async_url(url), connect_args={"server_settings": {"search_path": SCHEMA}}
    )
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    s = SqlCallStore(engine)
    yield s
    await s.close()
    async with admin.begin() as conn:
        await conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    await admin.dispose()


async def test_usage_cost_and_recording_round_trip_and_filter(store: SqlCallStore) -> None:
    costs = [None, 0.012345, 0.5, 0.000001]
    for n, cost in enumerate(costs):
        assert await store.add(record(n, cost))
    got = await store.get("c-1")
    assert got is not None
    assert (got.usage, got.cost_usd, got.recording) == (USAGE, 0.012345, RECORDING)
    none = await store.get("c-0")
    assert none is not None and (none.cost_usd, none.recording) == (None, None)

    page = await store.page(limit=10, offset=0)
    assert len(page.records) == 4
    assert page.total_cost_usd == 0.512346
    page = await store.page(limit=1, offset=0, min_cost=0.01)
    assert [r.call_uuid for r in page.records] == ["c-2"]  # newest first
    assert page.next_offset == 1
    assert page.total_cost_usd == 0.512345  # over every page the filter keeps
    page = await store.page(limit=10, offset=0, min_cost=1.0)
    assert (page.records, page.total_cost_usd) == ([], 0.0)
    page = await store.page(limit=10, offset=0, front_door="twilio", min_cost=0.0)
    assert (page.records, page.total_cost_usd) == ([], 0.0)


async def test_a_revision_0003_database_gets_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "r0003.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        command.upgrade(migrations.alembic_config(conn), "0003")  # the version before
        assert "usage" not in {c["name"] for c in sa.inspect(conn).get_columns("calls")}
        conn.execute(
            sa.text(
                "INSERT INTO calls (call_uuid, direction, started_at, ended_at, duration_s, "
                "end_reason, front_door) VALUES ('old', 'inbound', :t, :t, 1.0, 'x', 'vonage')"
            ),
            {"t": T0.replace(tzinfo=None)},
        )
    engine.dispose()
    store = await SqlCallStore.open(f"sqlite:///{path}")  # migrates to the newest revision
    try:
        old = await store.get("old")
        assert old is not None and (old.usage, old.cost_usd, old.recording) == (None, None, None)
        assert await store.add(record(7, 0.25))
        assert (await store.page(limit=5, offset=0, min_cost=0.1)).total_cost_usd == 0.25
    finally:
        await store.close()

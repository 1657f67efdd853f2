"""The call store against a real PostgreSQL server (``VB_TEST_POSTGRES_URL``).

``.ci/run`` installs and starts one and exports the URL. Without it these tests skip locally,
and fail under ``CI=true``: CI must not pass by skipping the database it is meant to test.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from support import SECOND, StartCall

from vonage_bridge.sim.realtime import FakeRealtimeOptions
from vonage_bridge.store import CallRecord, SqlCallStore, TranscriptEntry, metadata
from vonage_bridge.web.keys import CALLS, STORE

T0 = datetime(2026, 11, 23, 10, 0, 0, 987654, tzinfo=UTC)


@pytest.fixture
def pg_url() -> str:
    url = os.environ.get("VB_TEST_POSTGRES_URL", "")
    if not url:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but VB_TEST_POSTGRES_URL is not set (.ci/run sets it)")
        pytest.skip("VB_TEST_POSTGRES_URL not set (see .ci/run)")
    return url


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
    await store.add(original)
    assert await store.get("pg-1") == original
    await store.add(record(1, end_reason="again"))
    got = await store.get("pg-1")
    assert got is not None and got.end_reason == "again" and got.transcript == ()
    assert await store.get("pg-none") is None


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
    start_call: StartCall, store: SqlCallStore, pg_url: str
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

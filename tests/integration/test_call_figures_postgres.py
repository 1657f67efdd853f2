"""The call's figures (``calls.figures``, revision 0005) on a real PostgreSQL
(``VB_TEST_POSTGRES_URL``), in a schema of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pg_support import PgSchema, pg_schema

from vonage_bridge.records import CallSummary, call_figures
from vonage_bridge.store import CallRecord, SqlCallStore

T0 = datetime(2026, 11, 25, 22, 0, 0, 123456, tzinfo=UTC)


def record(n: int, figures: dict[str, object] | None = None) -> CallRecord:
    start = T0 + timedelta(seconds=n)
    return CallRecord(f"uuid-{n}", "inbound", start, start, 0.5, "caller hung up", figures=figures)


def summary(reply_latency_ms: list[float]) -> CallSummary:
    return CallSummary("c", "vonage", 1.0, "x", 50, 50, 0, 2, 1, 0.0, 0.0, 0.0, reply_latency_ms)


@pytest.fixture
async def schema() -> AsyncIterator[PgSchema]:
    async for s in pg_schema():
        yield s


async def test_figures_round_trip_on_postgresql(schema: PgSchema) -> None:
    store = await SqlCallStore.open(schema.url)
    try:
        assert store.dialect == "postgresql"
        figures = call_figures(summary([250.0, 900.5]))
        await store.add(record(1, figures))
        await store.add(record(2))
        got = await store.get("uuid-1")
        assert got is not None and got.figures == figures
        assert got.figures["reply_latency_p95_ms"] == 900.5 and got.figures["underruns"] == 2
        page = await store.page(limit=10, offset=0)
        listed = {r.call_uuid: r.to_json(with_transcript=False) for r in page.records}
        assert listed["uuid-1"]["figures"] == figures and listed["uuid-2"]["figures"] is None
    finally:
        await store.close()

"""The call's figures (``records.call_figures``): computed from the summary, kept on the
record (``calls.figures``), returned by ``/calls`` JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_metric_labels import summary
from test_store import record

from vonage_bridge.records import call_figures
from vonage_bridge.store import SqlCallStore


def test_median_and_nearest_rank_p95_of_the_reply_latencies() -> None:
    # 20 replies of 100..2000 ms: median 1050, p95 the 19th value (1900).
    figures = call_figures(summary(reply_latency_ms=[float(x) for x in range(2000, 0, -100)]))
    assert figures == {
        "replies": 20,
        "reply_latency_median_ms": 1050.0,
        "reply_latency_p95_ms": 1900.0,
        "underruns": 3,
        "barge_ins": 2,
        "dtmf": 4,
    }
    one = call_figures(summary(reply_latency_ms=[412.34]))
    assert one["reply_latency_median_ms"] == one["reply_latency_p95_ms"] == 412.3


def test_no_reply_measured_is_none_not_zero() -> None:
    figures = call_figures(summary(reply_latency_ms=[], underruns=0, barge_ins=0))
    assert figures["replies"] == 0
    assert figures["reply_latency_median_ms"] is None
    assert figures["reply_latency_p95_ms"] is None


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlCallStore]:
    s = await SqlCallStore.open(f"sqlite:///{tmp_path / 'calls.db'}")
    yield s
    await s.close()


async def test_figures_round_trip_and_are_in_the_json(store: SqlCallStore) -> None:
    figures = call_figures(summary(reply_latency_ms=[300.0, 500.0, 700.0]))
    await store.add(record(1, figures=figures))
    await store.add(record(2))
    got = await store.get("uuid-1")
    assert got is not None and got.figures == figures
    assert got.to_json()["figures"]["reply_latency_median_ms"] == 500.0
    older = await store.get("uuid-2")
    assert older is not None and older.figures is None and older.to_json()["figures"] is None

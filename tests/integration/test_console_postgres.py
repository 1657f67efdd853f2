"""The console's tables and the history filters against a real PostgreSQL server
(``VB_TEST_POSTGRES_URL``), in a schema of their own (``vb_console_test``) so that other
tests on the same database do not collide with these. Skip locally without the URL; fail
under ``CI=true`` (as ``test_store_postgres.py``)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from vonage_bridge.console.accounts import Accounts
from vonage_bridge.store import (
    CallFilter,
    CallRecord,
    SqlCallStore,
    TranscriptEntry,
    async_url,
    metadata,
)

SCHEMA = "vb_console_test"
T0 = datetime(2026, 11, 25, 9, 0, 0, tzinfo=UTC)


@pytest.fixture
async def store() -> AsyncIterator[SqlCallStore]:
    url = os.environ.get("VB_TEST_POSTGRES_URL", "")
    if not url:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but VB_TEST_POSTGRES_URL is not set (.ci/run sets it)")
        pytest.skip("VB_TEST_POSTGRES_URL not set (see .ci/run)")
    admin = create_async_engine(async_url(url))
    async with admin.begin() as conn:
        await conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        await conn.execute(sa.text(f"CREATE SCHEMA {SCHEMA}"))
    await admin.dispose()
    engine = create_async_engine(
        async_url(url), connect_args={"server_settings": {"search_path": SCHEMA}}
    )
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    s = SqlCallStore(engine)
    try:
        yield s
    finally:
        await s.close()
        admin = create_async_engine(async_url(url))
        async with admin.begin() as conn:  # leave no second "calls" table behind
            await conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        await admin.dispose()


async def test_postgres_operators_sessions_and_history_filters(store: SqlCallStore) -> None:
    acc = Accounts(store)
    assert await acc.add("alice", "password-one")
    assert not await acc.add("alice", "password-one")
    assert await acc.authenticate("alice", "password-one")
    token, session = await acc.open_session("alice", 1)
    got = await acc.session(token)
    assert got is not None and got.csrf == session.csrf
    assert await acc.remove("alice") and await acc.session(token) is None

    for n, (words, number) in enumerate([("Where is my PARCEL", "447700900000"), ("hi", "1415")]):
        await store.add(
            CallRecord(
                call_uuid=f"c-{n}",
                direction="inbound",
                started_at=T0 + timedelta(days=n),
                ended_at=T0 + timedelta(days=n, seconds=5),
                duration_s=5.0,
                end_reason="caller hung up",
                front_door="browser",
                from_number=number,
                transcript=(TranscriptEntry("caller", words, T0),),
            )
        )

    async def ids(**kw: object) -> list[str]:
        page = await store.page(limit=5, offset=0, where=CallFilter(**kw))  # type: ignore[arg-type]
        return [r.call_uuid for r in page.records]

    assert await ids(words=("parcel",)) == ["c-0"]
    assert await ids(number="1415") == ["c-1"]
    assert await ids(since=T0 + timedelta(hours=1)) == ["c-1"]
    assert await ids(end_reason="CALLER", words=("where", "my")) == ["c-0"]
    assert await ids(words=("100%",)) == []

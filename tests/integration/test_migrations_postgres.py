"""Migrations on a real PostgreSQL (``VB_TEST_POSTGRES_URL``), in a schema of their own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from pg_support import PgSchema, pg_schema

from vonage_bridge import migrations
from vonage_bridge.store import SqlCallStore, metadata


@pytest.fixture
async def schema() -> AsyncIterator[PgSchema]:
    async for s in pg_schema():
        yield s


async def test_two_instances_starting_at_once_migrate_once(schema: PgSchema) -> None:
    first, second = schema.engine(), schema.engine()
    try:
        results = await asyncio.gather(
            migrations.upgrade_database(first, metadata),
            migrations.upgrade_database(second, metadata),
        )
        head = migrations.head()
        # The advisory lock: one migrated from nothing, the other waited and found it done.
        assert sorted(results, key=str) == sorted([(None, head), (head, head)], key=str)
        async with first.connect() as conn:
            assert await conn.run_sync(migrations.current) == head
    finally:
        await first.dispose()
        await second.dispose()


async def test_a_database_url_with_a_search_path_opens_the_store_there(schema: PgSchema) -> None:
    store = await SqlCallStore.open(schema.url)
    try:
        async with store.engine.connect() as conn:
            assert await conn.run_sync(migrations.current) == migrations.head()
            where = await conn.execute(
                sa.text(
                    "SELECT table_schema FROM information_schema.tables WHERE table_name = 'calls'"
                )
            )
            assert schema.name in {row[0] for row in where}
            assert (await conn.execute(sa.text("SHOW search_path"))).scalar() == schema.name
        assert (await store.page(limit=5, offset=0)).records == []
    finally:
        await store.close()

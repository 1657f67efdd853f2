"""The assistants' tables on SQLite and PostgreSQL (``VB_TEST_POSTGRES_URL``; its tests use a
schema of their own, ``vb_assistants``, so that parallel runs on one server do not collide)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from vonage_bridge.assistants.book import Assistants, e164
from vonage_bridge.assistants.store import TABLES, SqlAssistantStore
from vonage_bridge.core.assistant import Assistant
from vonage_bridge.errors import Conflict, NotFound
from vonage_bridge.store import SqlCallStore, async_url

SCHEMA = "vb_assistants"
SALES = Assistant(name="sales", numbers=("+447700900001", "+447700900002"), voice="ash")
BUILT_IN = Assistant(name="default", instructions="Built in.")


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlAssistantStore]:
    if request.param == "sqlite":
        calls = await SqlCallStore.open(f"sqlite:///{tmp_path / 'calls.db'}")
        yield await SqlAssistantStore.open(calls.engine, calls.turns)
        await calls.close()
        return
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
    yield await SqlAssistantStore.open(engine)
    await engine.dispose()


async def test_put_versions_only_changes(store: SqlAssistantStore) -> None:
    stored, created = await store.put(SALES)
    assert (stored.version, created) == (1, True)
    stored, created = await store.put(SALES.model_copy(update={"version": 7}))  # ignored
    assert (stored.version, created) == (1, False)
    stored, _ = await store.put(SALES.model_copy(update={"voice": "sage"}))
    assert stored.version == 2
    stored, _ = await store.put(SALES.model_copy(update={"voice": "sage", "numbers": ()}))
    assert stored.version == 3
    got = await store.get("sales")
    assert got is not None and (got.version, got.voice, got.numbers) == (3, "sage", ())


async def test_numbers_find_their_assistant_and_belong_to_one(store: SqlAssistantStore) -> None:
    await store.put(SALES)
    found = await store.for_number("+447700900002")
    assert found is not None and found.name == "sales" and found.numbers == SALES.numbers
    assert await store.for_number("+447700900003") is None
    with pytest.raises(Conflict) as caught:
        await store.put(Assistant(name="support", numbers=("+447700900003", "+447700900001")))
    assert caught.value.code == "number_taken" and "'sales'" in caught.value.message
    assert await store.get("support") is None  # nothing written
    assert await store.for_number("+447700900003") is None


async def test_delete_frees_the_numbers(store: SqlAssistantStore) -> None:
    await store.put(SALES)
    assert await store.delete("sales") is True
    assert await store.delete("sales") is False
    assert await store.for_number("+447700900001") is None
    stored, created = await store.put(Assistant(name="support", numbers=("+447700900001",)))
    assert created and stored.version == 1  # the number is free again
    assert [a.name for a in await store.all()] == ["support"]


async def test_concurrent_writers_bind_a_number_once(store: SqlAssistantStore) -> None:
    results = await asyncio.gather(
        *(store.put(Assistant(name=f"a{i}", numbers=("+447700900001",))) for i in range(4)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException))
    bound = await store.for_number("+447700900001")
    assert bound is not None and bound.name == winners[0][0].name


async def test_resolve_by_name_number_and_default(store: SqlAssistantStore) -> None:
    book = Assistants(BUILT_IN, store)
    await store.put(SALES)
    assert (await book.resolve(None, "447700900001")).name == "sales"  # Vonage's digits
    assert (await book.resolve(None, "+44 7700 900002")).name == "sales"
    assert await book.resolve(None, "447700900009") is BUILT_IN
    assert await book.resolve(None, "sip:alice@example.com") is BUILT_IN
    assert await book.resolve(None, None) is BUILT_IN
    assert (await book.resolve("sales", "447700900009")).name == "sales"  # a name wins
    with pytest.raises(NotFound):
        await book.resolve("nobody", None)
    stored_default, _ = await store.put(Assistant(name="default", instructions="Stored."))
    assert await book.resolve(None, "447700900009") == stored_default
    assert await book.resolve("default", None) == stored_default


async def test_a_database_that_is_down_gives_the_built_in_default(tmp_path: Path) -> None:
    calls = await SqlCallStore.open(f"sqlite:///{tmp_path / 'calls.db'}")
    store = await SqlAssistantStore.open(calls.engine, calls.turns)
    await store.put(SALES)
    with contextlib.closing(sqlite3.connect(tmp_path / "calls.db")) as db:
        db.execute("DROP TABLE assistant_numbers")  # any OperationalError will do
        db.commit()
    book = Assistants(BUILT_IN, store)
    assert await book.resolve(None, "447700900001") is BUILT_IN
    await calls.close()


def test_e164_reads_each_carriers_form() -> None:
    assert e164("447700900001") == e164("+447700900001") == "+447700900001"
    assert e164("+44 7700-900001") == "+447700900001"
    assert e164("anonymous") is None and e164("") is None and e164(None) is None


def test_the_tables_are_named_for_the_merge() -> None:
    assert [t.name for t in TABLES] == ["assistants", "assistant_numbers"]

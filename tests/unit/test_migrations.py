"""Schema migrations (``vonage_bridge.migrations``) on SQLite, and ``vonage-bridge db``."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from test_store import OLD_SQLITE_SCHEMA

from vonage_bridge import cluster, migrations, outbound_store
from vonage_bridge.__main__ import main
from vonage_bridge.assistants import store as assistants_store
from vonage_bridge.console import accounts
from vonage_bridge.store import SqlCallStore, metadata, open_engine

# Every table of the service is in the metadata compared (their modules are imported).
assert cluster.claims_table.metadata is metadata
assert assistants_store.assistants_table.metadata is metadata
assert accounts.operators_table.metadata is metadata
assert outbound_store.outbound_calls_table.metadata is metadata


def _diff(conn: sa.Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(conn), metadata))


async def test_the_revisions_create_exactly_the_metadata(tmp_path: Path) -> None:
    """Fails while a table or column of the store's metadata has no revision: add one (see
    the ``vonage_bridge.migrations`` docstring)."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
    try:
        async with engine.begin() as conn:
            before, after = await conn.run_sync(migrations.upgrade)  # no create_all
            assert (before, after) == (None, migrations.head())
            assert await conn.run_sync(_diff) == []
            assert await conn.run_sync(migrations.current) == migrations.head()
    finally:
        await engine.dispose()


async def test_a_previous_version_database_is_stamped_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(OLD_SQLITE_SCHEMA)
        db.commit()
    store = await SqlCallStore.open(f"sqlite:///{path}")
    try:
        assert (await store.get("old-1")) is not None
        async with store.engine.connect() as conn:
            assert await conn.run_sync(migrations.current) == migrations.head()
            assert await conn.run_sync(_diff) == []
        # Opening again: nothing to migrate, the revision stays.
        before, after = await migrations.upgrade_database(store.engine, metadata)
        assert before == after == migrations.head()
    finally:
        await store.close()


def test_db_upgrade_and_current_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cli.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    empty_env = str(tmp_path / "none.env")
    assert main(["db", "current", "--env-file", empty_env]) == 0
    assert "at revision (none)" in capsys.readouterr().out
    assert main(["db", "upgrade", "--env-file", empty_env]) == 0
    assert f"(none) -> {migrations.head()}" in capsys.readouterr().out
    assert main(["db", "upgrade", "--env-file", empty_env]) == 0
    assert f"already at revision {migrations.head()}" in capsys.readouterr().out
    with contextlib.closing(sqlite3.connect(path)) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"calls", "transcript_entries", "alembic_version"} <= tables


def test_db_upgrade_names_a_bad_database_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://user:hunter22@db/x")
    assert main(["db", "upgrade", "--env-file", str(tmp_path / "none.env")]) == 2
    err = capsys.readouterr().err
    assert "DATABASE_URL=" in err and "hunter22" not in err


def test_open_engine_turns_libpq_options_into_server_settings() -> None:
    engine = open_engine("postgresql://u:p@db/x?options=-csearch_path%3Dbridge%20-c%20a%3D1")
    try:
        args = engine.dialect.create_connect_args(engine.url)[1]
        assert args["host"] == "db" and "options" not in args
        assert engine.url.query == {}
    finally:
        engine.sync_engine.dispose()
    with pytest.raises(ValueError, match="options"):
        open_engine("postgresql://u@db/x?options=--statement_timeout%3D5")

"""Schema migrations of the call store, with Alembic, run from code (no ``alembic.ini``).

:func:`upgrade_database` brings a database to the newest revision: at start-up
(``SqlCallStore.open``) and by ``vonage-bridge db upgrade``. On PostgreSQL it holds a session
advisory lock (``pg_advisory_lock``) while it migrates, so of several instances starting at
once one migrates and the others wait, then find nothing to do; SQLite has one writer and
migrates plainly. Every revision runs in the one transaction of the upgrade (both databases
have transactional DDL), so a failed upgrade leaves the schema as it was.

A database of the version before migrations (its tables but no ``alembic_version``) is
recognised by the baseline revision, which creates only the tables that are missing and adds
the columns that version lacked (``calls.front_door``), then Alembic stamps it.

**Rule: every revision is backward compatible for one version.** During a rolling deploy the
previous version keeps running on the upgraded schema until its calls end: a revision may add
tables, nullable columns or columns with a server default, and indexes; it must not drop or
rename anything the previous version reads or writes (do that one release later, once no
instance of the version that used it is left).

**Adding a revision**: copy the newest file of ``versions/`` to ``rNNNN_<what>.py`` (the
next number), set ``revision = "NNNN"`` and ``down_revision`` to the previous one, write its
``upgrade()`` with ``alembic.op`` (``op.create_table`` mirroring the table's definition in
the SQLAlchemy metadata) and a ``downgrade()``. ``tests/unit/test_migrations.py`` fails while
the metadata has a table or column that no revision creates.

Sources: https://alembic.sqlalchemy.org/en/latest/api/commands.html (running commands from
code), https://alembic.sqlalchemy.org/en/latest/cookbook.html#sharing-a-connection-across-one-or-more-programmatic-migration-commands,
https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-ADVISORY-LOCKS
"""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)
logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
"""Alembic says "Context impl ..." at INFO on every start-up; :func:`upgrade_database` logs
one line of its own when the schema changed."""

HERE = Path(__file__).resolve().parent
MIGRATION_LOCK_KEY = 0x76627269_64676531
"""The ``pg_advisory_lock`` key held while migrating (a bigint; ``vbridge1`` in ASCII)."""


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic configuration of these migrations; ``connection`` is the one ``env.py``
    migrates (passed in ``Config.attributes``)."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision id."""
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None
    return revision


def current(connection: sa.Connection) -> str | None:
    """The revision the database is at (None: never migrated, maybe the previous version)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(
    connection: sa.Connection, metadata: sa.MetaData | None = None
) -> tuple[str | None, str]:
    """Upgrade to the newest revision on ``connection`` (sync; within its transaction, which
    the caller commits), then create the tables of ``metadata`` that are still missing (a
    table no revision creates yet). Returns the revisions before and after."""
    before = current(connection)
    command.upgrade(alembic_config(connection), "head")
    if metadata is not None:
        metadata.create_all(connection)
    return before, head()


async def upgrade_database(
    engine: AsyncEngine, metadata: sa.MetaData | None = None
) -> tuple[str | None, str]:
    """Upgrade the database of ``engine`` to the newest revision and create the tables of
    ``metadata`` still missing (see :func:`upgrade`), committed; on PostgreSQL behind
    :data:`MIGRATION_LOCK_KEY`. One INFO line when something was migrated.

    Returns:
        The revisions before (None: not migrated before) and after.
    Raises:
        sqlalchemy.exc.SQLAlchemyError / OSError: the database cannot be reached or refused
            the DDL (nothing is changed then).
    """
    postgres = engine.dialect.name == "postgresql"
    async with engine.connect() as conn:
        if postgres:
            await conn.execute(
                sa.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
            await conn.commit()  # a session lock: it outlives this transaction
        try:
            before, after = await conn.run_sync(upgrade, metadata)
            await conn.commit()
        finally:
            if postgres:
                try:
                    await conn.rollback()
                    await conn.execute(
                        sa.text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
                    )
                    await conn.commit()
                except BaseException:
                    # Never give a connection that may still hold the lock back to the pool.
                    await conn.invalidate()
                    raise
    if before != after:
        log.info("database schema upgraded: revision %s -> %s", before or "(none)", after)
    return before, after

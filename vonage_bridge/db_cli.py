"""``vonage-bridge db upgrade`` and ``vonage-bridge db current``: the database schema from the
command line. Shell.

``upgrade`` migrates the database ``DATABASE_URL`` names (read from the environment after the
``--env-file``, default ``.env``; nothing else is required) to the newest revision, as every
start-up also does (:mod:`.migrations`: on PostgreSQL behind an advisory lock, so it is safe
while instances run); ``current`` prints the revision the database is at and the newest one.
Exit status: 0 done, 2 ``DATABASE_URL`` invalid, 1 the database cannot be reached or refused
the migration (one line on stderr, never the password).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from dotenv import load_dotenv
from pydantic import ValidationError

from . import cluster, migrations
from .config import StoreSettings
from .config_problems import describe
from .store import metadata, open_engine

assert cluster.claims_table.metadata is metadata  # the shared tables are created too
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2


async def run_db_action(database_url: str, action: str) -> str:
    """``upgrade`` or ``current`` on ``database_url``; the line to print.

    Raises:
        ValueError: the URL is not a supported database.
        sqlalchemy.exc.SQLAlchemyError / OSError: the database failed.
    """
    engine = open_engine(database_url)
    try:
        if action == "upgrade":
            before, after = await migrations.upgrade_database(engine, metadata)
            if before == after:
                return f"database schema already at revision {after}"
            return f"database schema upgraded: revision {before or '(none)'} -> {after}"
        async with engine.connect() as conn:
            now = await conn.run_sync(migrations.current)
        return f"database schema at revision {now or '(none)'}; newest {migrations.head()}"
    finally:
        await engine.dispose()


def main(argv: list[str]) -> int:
    """Run ``db ACTION``; the exit status (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="vonage-bridge db", description="Migrate the call-store database (Alembic)."
    )
    parser.add_argument("action", choices=("upgrade", "current"))
    parser.add_argument("--env-file", default=".env", help="dotenv file to load (default .env)")
    args = parser.parse_args(argv)
    load_dotenv(args.env_file, override=False)
    given = {k: v for k, v in os.environ.items() if k == "DATABASE_URL" and v}
    try:
        store = StoreSettings.model_validate(given)
    except ValidationError as exc:
        fields = StoreSettings.model_fields
        by_alias = {f.alias: f for f in fields.values() if f.alias}
        problems = "; ".join(describe(e, by_alias) for e in exc.errors())
        print(f"vonage-bridge db: invalid configuration: {problems}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        print(asyncio.run(run_db_action(store.database_url, args.action)))
    except Exception as exc:
        text = " ".join(str(getattr(exc, "orig", None) or exc).split())[:300]
        print(
            f"vonage-bridge db: {args.action} failed: {exc.__class__.__name__}: {text}",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    return EXIT_OK

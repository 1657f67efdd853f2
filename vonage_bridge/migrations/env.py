"""Alembic's environment for :mod:`vonage_bridge.migrations`: migrates the connection the
caller passed in ``config.attributes["connection"]`` (no URL, no ``alembic.ini``, no offline
mode). Source: https://alembic.sqlalchemy.org/en/latest/cookbook.html#sharing-a-connection-across-one-or-more-programmatic-migration-commands
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context


def run_migrations() -> None:
    """Run the revisions on the caller's connection, in one transaction.

    Raises:
        RuntimeError: no ``connection`` was passed (Alembic run from its command line).
    """
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, sa.Connection):
        raise RuntimeError("vonage_bridge.migrations run from code only (migrations.upgrade)")
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()


if hasattr(context, "config"):  # run by Alembic; a plain import (tests) does nothing
    run_migrations()

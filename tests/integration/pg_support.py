"""A PostgreSQL schema of our own for each test (``VB_TEST_POSTGRES_URL``), so that tests of
parallel branches and runs sharing the server never see each other's tables.

Without the URL the tests skip locally and fail under ``CI=true`` (as ``test_store_postgres``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from vonage_bridge.store import async_url


def postgres_url() -> str:
    url = os.environ.get("VB_TEST_POSTGRES_URL", "")
    if not url:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but VB_TEST_POSTGRES_URL is not set (.ci/run sets it)")
        pytest.skip("VB_TEST_POSTGRES_URL not set (see .ci/run)")
    return url


@dataclass(frozen=True)
class PgSchema:
    """``url``: the server URL with ``options=-csearch_path=<name>`` (what an instance's
    ``DATABASE_URL`` would be); ``engine(...)`` opens an engine on that schema."""

    name: str
    server_url: str

    @property
    def url(self) -> str:
        sep = "&" if "?" in self.server_url else "?"
        return f"{self.server_url}{sep}options={quote(f'-csearch_path={self.name}')}"

    def engine(self) -> AsyncEngine:
        return create_async_engine(
            async_url(self.server_url),
            connect_args={"server_settings": {"search_path": self.name}},
        )


async def pg_schema() -> AsyncIterator[PgSchema]:
    """A fresh schema, dropped (with everything in it) afterwards."""
    server = postgres_url()
    schema = PgSchema(f"vb_scale_{secrets.token_hex(4)}", server)
    admin = create_async_engine(async_url(server))
    try:
        async with admin.begin() as conn:
            await conn.execute(sa.text(f'CREATE SCHEMA "{schema.name}"'))
        yield schema
    finally:
        async with admin.begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema.name}" CASCADE'))
        await admin.dispose()

"""Assistants in the call-record database. Shell: does I/O.

Two tables beside the call records (on ``store.metadata``, created on open like them; SQLite
and PostgreSQL through SQLAlchemy Core async, on the call store's engine):

- ``assistants``: ``name`` (primary key), ``version`` (1 when created, +1 on each change; a
  write that changes nothing keeps it), ``body`` (the assistant's JSON without name, numbers
  and version), ``updated_at``;
- ``assistant_numbers``: ``number`` (E.164 with ``+``, primary key: a number belongs to one
  assistant at most), ``assistant``.

Every read goes to the database, so a change applies to the next call on every instance,
with no restart.
"""

from __future__ import annotations

import contextlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..core.assistant import Assistant
from ..errors import Conflict, StoreUnavailable
from ..store import UNAVAILABLE, UtcDateTime, lock_schema, metadata

log = logging.getLogger(__name__)

_NOT_IN_BODY = frozenset({"name", "numbers", "version"})

assistants_table = sa.Table(
    "assistants",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

numbers_table = sa.Table(
    "assistant_numbers",
    metadata,
    sa.Column("number", sa.String(16), primary_key=True),
    sa.Column(
        "assistant",
        sa.String(64),
        sa.ForeignKey("assistants.name", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
)

TABLES = (assistants_table, numbers_table)


def number_taken(number: str, owner: str | None) -> Conflict:
    """The 409 of a number bound to another assistant (code ``number_taken``)."""
    whose = f"assistant {owner!r}" if owner else "another assistant"
    return Conflict(f"numbers: {number} is already bound to {whose}", code="number_taken")


class SqlAssistantStore:
    """The assistants and their numbers, on an engine shared with the call store.

    Args:
        engine: the call store's engine.
        turns: the call store's turn-taking lock on SQLite (``SqlCallStore.turns``): the
            two stores share one connection for ``:memory:``.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        turns: contextlib.AbstractAsyncContextManager[object] | None = None,
    ) -> None:
        self.engine = engine
        self._turns = turns if turns is not None else contextlib.nullcontext()

    @classmethod
    async def open(
        cls,
        engine: AsyncEngine,
        turns: contextlib.AbstractAsyncContextManager[object] | None = None,
    ) -> SqlAssistantStore:
        """Create the two tables if they are missing.

        Raises:
            sqlalchemy.exc.SQLAlchemyError / OSError: the database cannot be used.
        """
        store = cls(engine, turns)
        async with store._turns, engine.begin() as conn:
            await lock_schema(conn)
            await conn.run_sync(metadata.create_all, tables=list(TABLES))
        return store

    # -------------------------------------------------------------- reads

    async def get(self, name: str) -> Assistant | None:
        """The assistant called ``name``, or None.

        Raises:
            StoreUnavailable: the database is down or unusable.
        """
        async with self._reading():
            async with self._turns, self.engine.connect() as conn:
                row = (
                    await conn.execute(
                        assistants_table.select().where(assistants_table.c.name == name)
                    )
                ).first()
                if row is None:
                    return None
                numbers = await self._numbers(conn, [name])
        return _assistant(row, numbers.get(name, ()))

    async def for_number(self, number: str) -> Assistant | None:
        """The assistant bound to ``number`` (E.164 with ``+``), or None.

        Raises:
            StoreUnavailable: the database is down or unusable.
        """
        async with self._reading():
            async with self._turns, self.engine.connect() as conn:
                owner = (
                    await conn.execute(
                        sa.select(numbers_table.c.assistant).where(numbers_table.c.number == number)
                    )
                ).scalar()
                if owner is None:
                    return None
                row = (
                    await conn.execute(
                        assistants_table.select().where(assistants_table.c.name == owner)
                    )
                ).first()
                if row is None:
                    return None
                numbers = await self._numbers(conn, [owner])
        return _assistant(row, numbers.get(owner, ()))

    async def all(self) -> list[Assistant]:
        """Every stored assistant, by name.

        Raises:
            StoreUnavailable: the database is down or unusable.
        """
        async with self._reading():
            async with self._turns, self.engine.connect() as conn:
                rows = (
                    await conn.execute(assistants_table.select().order_by(assistants_table.c.name))
                ).all()
                numbers = await self._numbers(conn, None)
        out = []
        for row in rows:
            assistant = _assistant(row, numbers.get(row.name, ()))
            if assistant is not None:
                out.append(assistant)
        return out

    # -------------------------------------------------------------- writes

    async def put(self, assistant: Assistant) -> tuple[Assistant, bool]:
        """Create or replace ``assistant`` (its ``version`` is ignored) with its numbers.

        Returns:
            The stored assistant with its version, and whether it was created (False: it
            replaced one; the version is bumped only if something changed).
        Raises:
            Conflict: ``number_taken``, a number is bound to another assistant (nothing is
                written); ``assistant_changed``, another writer got in first.
            StoreUnavailable: the database is down or unusable.
        """
        name = assistant.name
        body = _body(assistant)
        try:
            async with self._turns, self.engine.begin() as conn:
                if assistant.numbers:
                    taken = (
                        await conn.execute(
                            sa.select(numbers_table.c.number, numbers_table.c.assistant)
                            .where(numbers_table.c.number.in_(assistant.numbers))
                            .where(numbers_table.c.assistant != name)
                            .order_by(numbers_table.c.number)
                        )
                    ).first()
                    if taken is not None:
                        raise number_taken(taken.number, taken.assistant)
                row = (
                    await conn.execute(
                        sa.select(assistants_table.c.version, assistants_table.c.body).where(
                            assistants_table.c.name == name
                        )
                    )
                ).first()
                numbers = (await self._numbers(conn, [name])).get(name, ())
                now = datetime.now(UTC)
                if row is None:
                    version = 1
                    await conn.execute(
                        assistants_table.insert().values(
                            name=name, version=version, body=body, updated_at=now
                        )
                    )
                elif row.body == body and sorted(numbers) == sorted(assistant.numbers):
                    return assistant.model_copy(update={"version": row.version}), False
                else:
                    version = row.version + 1
                    await conn.execute(
                        assistants_table.update()
                        .where(assistants_table.c.name == name)
                        .values(version=version, body=body, updated_at=now)
                    )
                await conn.execute(numbers_table.delete().where(numbers_table.c.assistant == name))
                if assistant.numbers:
                    await conn.execute(
                        numbers_table.insert(),
                        [{"number": n, "assistant": name} for n in assistant.numbers],
                    )
        except sa.exc.IntegrityError:
            # Another instance bound one of the numbers (or created the name) meanwhile.
            raise Conflict(
                "the assistant or one of its numbers changed meanwhile: try again",
                code="assistant_changed",
            ) from None
        except UNAVAILABLE as exc:
            raise StoreUnavailable(
                f"assistants unavailable: {exc.__class__.__name__}", code="assistants_unavailable"
            ) from exc
        return assistant.model_copy(update={"version": version}), row is None

    async def delete(self, name: str) -> bool:
        """Delete ``name`` and its numbers; False if there was none.

        Raises:
            StoreUnavailable: the database is down or unusable.
        """
        try:
            async with self._turns, self.engine.begin() as conn:
                # Numbers first: SQLite enforces no foreign key unless asked to.
                await conn.execute(numbers_table.delete().where(numbers_table.c.assistant == name))
                gone = await conn.execute(
                    assistants_table.delete().where(assistants_table.c.name == name)
                )
        except UNAVAILABLE as exc:
            raise StoreUnavailable(
                f"assistants unavailable: {exc.__class__.__name__}", code="assistants_unavailable"
            ) from exc
        return bool(gone.rowcount)

    # -------------------------------------------------------------- helpers

    @contextlib.asynccontextmanager
    async def _reading(self) -> Any:
        try:
            yield
        except UNAVAILABLE as exc:
            raise StoreUnavailable(
                f"assistants unavailable: {exc.__class__.__name__}", code="assistants_unavailable"
            ) from exc

    @staticmethod
    async def _numbers(conn: Any, names: list[str] | None) -> dict[str, tuple[str, ...]]:
        query = sa.select(numbers_table.c.assistant, numbers_table.c.number).order_by(
            numbers_table.c.assistant, numbers_table.c.number
        )
        if names is not None:
            query = query.where(numbers_table.c.assistant.in_(names))
        out: dict[str, list[str]] = {}
        for row in (await conn.execute(query)).all():
            out.setdefault(row.assistant, []).append(row.number)
        return {k: tuple(v) for k, v in out.items()}


def _body(assistant: Assistant) -> str:
    doc = {k: v for k, v in assistant.public_json().items() if k not in _NOT_IN_BODY}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def _assistant(row: sa.Row[Any], numbers: tuple[str, ...]) -> Assistant | None:
    """A stored row as an assistant; None (logged) if it no longer validates (a row written
    by a later version, or by hand)."""
    try:
        doc = json.loads(row.body)
        return Assistant.model_validate(
            {**doc, "name": row.name, "numbers": list(numbers), "version": row.version}
        )
    except (ValueError, ValidationError, TypeError) as exc:
        log.error("stored assistant %r is not valid, skipped: %s", row.name, type(exc).__name__)
        return None

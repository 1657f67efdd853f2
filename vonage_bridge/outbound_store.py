"""The outbound calls ``POST /connect`` placed, shared by the instances: table
``outbound_calls``. Shell: does I/O.

One instance places a call; the carrier's answer URL, media socket and status webhooks may
land on any other one (the balancer's choice). With PostgreSQL shared (``Cluster.shared``)
each placed call's entry (``ConnectContext``, ``status_url``, machine detection, numbers) is
written here before ``POST /connect`` answers, read by an instance that does not know the
call (``outbound.OutboundCalls.find``), and deleted with its last outcome. The answering
machine verdict (``amd``) is written by the instance the carrier's event reached and read
back by the one writing the call's record (:meth:`SharedOutbound.amd`); each row expires
(``expires_at``, :data:`~.outbound.ENTRY_TTL_S` after it was placed) and expired rows are
deleted by the next write. On SQLite (one instance) nothing is written: the instance's own
memory knows every call.

A database that fails is logged (once per kind until it works again) and never fails a call:
the instance that placed the call still has it in memory.

Sources: https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from .core.call_context import ConnectContext, MachineDetection
from .store import UNAVAILABLE, SqlCallStore, UtcDateTime, metadata

log = logging.getLogger(__name__)

outbound_calls_table = sa.Table(
    "outbound_calls",
    metadata,
    sa.Column("call_id", sa.String(128), primary_key=True),
    sa.Column("front_door", sa.String(16), nullable=False),
    sa.Column("to_number", sa.String(32), nullable=False),
    sa.Column("from_number", sa.String(32), nullable=False),
    sa.Column("context", sa.Text(), nullable=False),
    sa.Column("status_url", sa.Text(), nullable=True),
    sa.Column("machine_detection", sa.Text(), nullable=True),
    sa.Column("amd", sa.String(16), nullable=True),
    sa.Column("placed_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Index("ix_outbound_calls_expires_at", "expires_at"),
)


def context_text(context: ConnectContext) -> str:
    """``context`` as the JSON text of the ``context`` column."""
    return json.dumps(
        {
            "assistant": context.assistant,
            "instructions": context.instructions,
            "variables": context.variables,
            "metadata": context.metadata,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def context_of(text: str) -> ConnectContext:
    """The ``context`` column back as a :class:`ConnectContext`.

    Raises:
        ValueError: not the JSON object :func:`context_text` writes.
    """
    doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError("context: not a JSON object")
    variables = doc.get("variables") or {}
    meta = doc.get("metadata")
    return ConnectContext(
        assistant=_str(doc.get("assistant")),
        instructions=_str(doc.get("instructions")),
        variables={str(k): str(v) for k, v in variables.items()},
        metadata=meta if isinstance(meta, dict) else None,
    )


def machine_text(md: MachineDetection | None) -> str | None:
    """The ``machine_detection`` column: JSON ``{"on_machine": ..., "message": ...}``, or None."""
    if md is None:
        return None
    return json.dumps({"on_machine": md.on_machine, "message": md.message})


def machine_of(text: str | None) -> MachineDetection | None:
    """The ``machine_detection`` column back; None for NULL.

    Raises:
        ValueError: not the JSON object :func:`machine_text` writes.
    """
    if text is None:
        return None
    doc = json.loads(text)
    on_machine = doc.get("on_machine") if isinstance(doc, dict) else None
    if on_machine == "hangup":
        return MachineDetection("hangup", _str(doc.get("message")))
    if on_machine == "leave_message":
        return MachineDetection("leave_message", _str(doc.get("message")))
    raise ValueError("machine_detection: unknown on_machine")


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


class SharedOutbound:
    """The ``outbound_calls`` table on the call store's engine (PostgreSQL only)."""

    def __init__(self, store: SqlCallStore) -> None:
        self.engine = store.engine
        self._failing: set[str] = set()

    def _failed(self, what: str, exc: BaseException) -> None:
        if what not in self._failing:
            self._failing.add(what)
            log.warning("shared outbound calls: %s failed (%s)", what, exc.__class__.__name__)

    async def put(self, row: dict[str, Any], ttl_s: float) -> bool:
        """Write one entry (``call_id``, ``front_door``, ``to_number``, ``from_number``,
        ``context``, ``status_url``, ``machine_detection``, ``placed_at``), expiring
        ``ttl_s`` seconds after ``placed_at``, and delete expired ones; False if the
        database failed (logged)."""
        now = datetime.now(UTC)
        values = {**row, "expires_at": row["placed_at"] + timedelta(seconds=ttl_s)}
        upsert = postgresql.insert(outbound_calls_table).values(values)
        upsert = upsert.on_conflict_do_update(
            index_elements=[outbound_calls_table.c.call_id],
            set_={k: v for k, v in values.items() if k != "call_id"},
        )
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    outbound_calls_table.delete().where(outbound_calls_table.c.expires_at < now)
                )
                await conn.execute(upsert)
        except UNAVAILABLE as exc:
            self._failed("writing", exc)
            return False
        self._failing.discard("writing")
        return True

    async def get(self, call_id: str) -> sa.Row[Any] | None:
        """The entry of ``call_id`` while it has not expired; None if there is none or the
        database failed (logged)."""
        query = (
            sa.select(outbound_calls_table)
            .where(outbound_calls_table.c.call_id == call_id[:128])
            .where(outbound_calls_table.c.expires_at >= datetime.now(UTC))
        )
        try:
            async with self.engine.connect() as conn:
                row = (await conn.execute(query)).first()
        except UNAVAILABLE as exc:
            self._failed("reading", exc)
            return None
        self._failing.discard("reading")
        return row

    async def set_amd(self, call_id: str, amd: str) -> None:
        """Note the answering machine verdict (``human`` / ``machine``) of ``call_id``;
        failures are logged."""
        update = (
            outbound_calls_table.update()
            .where(outbound_calls_table.c.call_id == call_id[:128])
            .values(amd=amd[:16])
        )
        try:
            async with self.engine.begin() as conn:
                await conn.execute(update)
        except UNAVAILABLE as exc:
            self._failed("writing", exc)
            return
        self._failing.discard("writing")

    async def amd(self, call_id: str) -> str | None:
        """The verdict another instance may have noted for ``call_id``; None when there is
        none, the entry is gone, or the database failed (logged)."""
        row = await self.get(call_id)
        return None if row is None else _str(row.amd)

    async def remove(self, call_id: str) -> None:
        """Forget ``call_id`` (its last outcome came); failures are logged."""
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    outbound_calls_table.delete().where(
                        outbound_calls_table.c.call_id == call_id[:128]
                    )
                )
        except UNAVAILABLE as exc:
            self._failed("deleting", exc)

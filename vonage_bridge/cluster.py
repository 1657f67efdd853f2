"""What several instances share, in the call-store database: once-only claims and the live
calls of every instance. Shell: does I/O.

- **Claims** (:meth:`Cluster.claim_once`, table ``claims``): a key taken once across all
  instances, by ``INSERT ... ON CONFLICT DO NOTHING`` on its unique ``(kind, key)``: OpenAI's
  ``webhook-id`` (:data:`WEBHOOK`), the SIP call being handled (:data:`SIP_CALL`), a spent
  media token (:data:`MEDIA_TOKEN`) and a started Twilio stream (:data:`TWILIO_STREAM`).
  Each row expires (``expires_at``) and is purged by the heartbeat. The instance's own
  in-memory guards (``core.replay.SeenIds``) still answer first; this adds the other
  instances. A database that fails answers "first" (logged): one instance keeps its own
  guards, as before this module.
- **Live calls** (:class:`LiveRegistry`, tables ``instances`` and ``live_calls``): each
  instance writes a row per live call (numbers masked) and removes it at the end; ONE task
  per instance (:meth:`LiveRegistry.run`) refreshes the instance's heartbeat every
  :data:`HEARTBEAT_S` (one UPDATE, whatever the number of calls) and purges instances silent
  for :data:`STALE_S` with their calls, and expired claims. ``GET /calls/live`` lists the
  calls of the instances alive.

The tables are on the store's :data:`~.store.metadata` and created by the migration
``r0002_cluster`` (importing this module registers them). On SQLite (one instance) claims
are not written (:meth:`Cluster.claim_once` answers "first" at once: the in-memory guards
already know everything, and a media socket is not held up by a write); the live-call
tables are used as on PostgreSQL.

Sources: https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT,
https://www.sqlite.org/lang_upsert.html
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from .errors import StoreUnavailable
from .store import UNAVAILABLE, SqlCallStore, UtcDateTime, metadata

log = logging.getLogger(__name__)

WEBHOOK = "webhook"
SIP_CALL = "sip-call"
MEDIA_TOKEN = "media-token"
TWILIO_STREAM = "twilio-stream"
HEARTBEAT_S = 5.0
"""How often an instance refreshes its heartbeat, s."""
STALE_S = 20.0
"""An instance whose heartbeat is older than this is dead: its calls are not listed, and the
next heartbeat of another instance purges them, s."""

claims_table = sa.Table(
    "claims",
    metadata,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("key", sa.String(256), primary_key=True),
    sa.Column("instance_id", sa.String(64), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Index("ix_claims_expires_at", "expires_at"),
)
instances_table = sa.Table(
    "instances",
    metadata,
    sa.Column("instance_id", sa.String(64), primary_key=True),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("heartbeat_at", UtcDateTime(), nullable=False),
)
live_calls_table = sa.Table(
    "live_calls",
    metadata,
    sa.Column("call_uuid", sa.String(128), primary_key=True),
    sa.Column("instance_id", sa.String(64), nullable=False, index=True),
    sa.Column("front_door", sa.String(16), nullable=False),
    sa.Column("direction", sa.String(16), nullable=False),
    sa.Column("from_masked", sa.String(32), nullable=True),
    sa.Column("to_masked", sa.String(32), nullable=True),
    sa.Column("started_at", UtcDateTime(), nullable=False),
)


def new_instance_id(fly_machine_id: str | None = None) -> str:
    """This process's instance id: Fly's machine id (or the host name), the process id and 4
    random hex digits (a restarted process is a new instance), at most 64 characters."""
    host = fly_machine_id or socket.gethostname() or "host"
    return f"{host[:40]}-{os.getpid()}-{secrets.token_hex(2)}"


def mask_number(number: str | None) -> str | None:
    """A phone number for lists and logs: its last 4 characters after ``*``s (``***0001``);
    None stays None; 4 characters or fewer become ``****``."""
    if not number:
        return None
    text = number.strip()[:32]
    return "***" + text[-4:] if len(text) > 4 else "****"


def _insert(dialect: str, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """``INSERT`` with ``ON CONFLICT`` support, for PostgreSQL or SQLite."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


@dataclass(frozen=True, slots=True)
class LiveCallRow:
    """One live call of some instance, as ``GET /calls/live`` lists it."""

    call_uuid: str
    instance_id: str
    front_door: str
    direction: str
    from_masked: str | None
    to_masked: str | None
    started_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The row as ``GET /calls/live`` lists it; ``from``/``to`` masked, ``started_at`` ISO 8601
        in UTC."""
        return {
            "call_uuid": self.call_uuid,
            "instance_id": self.instance_id,
            "front_door": self.front_door,
            "direction": self.direction,
            "from": self.from_masked,
            "to": self.to_masked,
            "started_at": self.started_at.astimezone(UTC).isoformat(timespec="microseconds"),
        }


class Cluster:
    """This instance's view of the shared tables, on the store's engine.

    Args:
        store: the open call store (its engine and, on SQLite, its turn lock).
        instance_id: this instance (:func:`new_instance_id`).
    """

    def __init__(self, store: SqlCallStore, instance_id: str) -> None:
        self.engine = store.engine
        self.turns = store.turns
        self.instance_id = instance_id
        self.shared = store.dialect == "postgresql"
        """Whether claims are written (PostgreSQL: several instances may share it)."""
        self._warned = False

    async def claim_once(self, kind: str, key: str, ttl_s: float) -> bool:
        """Take ``(kind, key)`` for ``ttl_s`` seconds: True if this is the first claim of it
        by any instance (or the database failed: logged once, the local guards decide; or
        SQLite: see the module docstring); False if some instance took it before and it has
        not expired."""
        if not self.shared:
            return True
        now = datetime.now(UTC)
        row = {
            "kind": kind,
            "key": key[:256],
            "instance_id": self.instance_id,
            "expires_at": now + timedelta(seconds=ttl_s),
        }
        try:
            async with self.turns, self.engine.begin() as conn:
                done = await conn.execute(
                    _insert(conn.dialect.name, claims_table).values(row).on_conflict_do_nothing()
                )
                if done.rowcount == 1:
                    return True
                # Taken before: still valid, or expired and not purged yet (take it over).
                renewed = await conn.execute(
                    claims_table.update()
                    .where(claims_table.c.kind == kind)
                    .where(claims_table.c.key == row["key"])
                    .where(claims_table.c.expires_at < now)
                    .values(instance_id=self.instance_id, expires_at=row["expires_at"])
                )
                return renewed.rowcount == 1
        except UNAVAILABLE as exc:
            if not self._warned:
                self._warned = True
                log.warning(
                    "shared claims unavailable (%s): this instance relies on its own memory",
                    exc.__class__.__name__,
                )
            return True


class LiveRegistry:
    """The live calls of every instance (see the module docstring). Failures of the
    database are logged (once per kind until it works again) and never reach a call."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._failing: set[str] = set()
        self._writes: dict[str, asyncio.Task[None]] = {}  # call uuid -> its last write

    def register(
        self,
        call_uuid: str,
        *,
        front_door: str,
        direction: str,
        caller: str | None,
        called: str | None,
    ) -> None:
        """:meth:`add` in the background: a slow database never holds a call up. Returns at
        once; :meth:`unregister` runs after it."""
        self._chain(
            call_uuid,
            self.add(
                call_uuid,
                front_door=front_door,
                direction=direction,
                caller=caller,
                called=called,
            ),
        )

    def unregister(self, call_uuid: str) -> None:
        """:meth:`remove` in the background, after the call's registration."""
        self._chain(call_uuid, self.remove(call_uuid))

    def _chain(self, call_uuid: str, write: Coroutine[Any, Any, None]) -> None:
        before = self._writes.get(call_uuid)

        async def in_turn() -> None:
            """Run ``write`` once the call's previous write has finished."""
            if before is not None:
                await asyncio.wait({before})
            await write

        task = asyncio.create_task(in_turn(), name=f"registry-{call_uuid[:32]}")
        self._writes[call_uuid] = task

        def done(t: asyncio.Task[None]) -> None:
            """Forget the finished task unless a later write replaced it."""
            if self._writes.get(call_uuid) is t:
                del self._writes[call_uuid]

        task.add_done_callback(done)

    async def settled(self) -> None:
        """Wait for the background writes started so far (tests, shutdown)."""
        while self._writes:
            await asyncio.wait(set(self._writes.values()))

    @property
    def instance_id(self) -> str:
        """This instance's id (the cluster's)."""
        return self.cluster.instance_id

    async def _run(self, what: str, statement: Any) -> bool:
        c = self.cluster
        try:
            async with c.turns, c.engine.begin() as conn:
                if isinstance(statement, list):
                    for s in statement:
                        await conn.execute(s)
                else:
                    await conn.execute(statement)
        except UNAVAILABLE as exc:
            if what not in self._failing:
                self._failing.add(what)
                log.warning("live-call registry: %s failed (%s)", what, exc.__class__.__name__)
            return False
        self._failing.discard(what)
        return True

    async def add(
        self,
        call_uuid: str,
        *,
        front_door: str,
        direction: str,
        caller: str | None,
        called: str | None,
        started_at: datetime | None = None,
    ) -> None:
        """Register a live call of this instance (numbers masked)."""
        row = {
            "call_uuid": call_uuid[:128],
            "instance_id": self.instance_id,
            "front_door": front_door,
            "direction": direction,
            "from_masked": mask_number(caller),
            "to_masked": mask_number(called),
            "started_at": started_at or datetime.now(UTC),
        }
        insert = _insert(self.cluster.engine.dialect.name, live_calls_table)
        upsert = insert.values(row).on_conflict_do_update(
            index_elements=[live_calls_table.c.call_uuid],
            set_={k: row[k] for k in row if k != "call_uuid"},
        )
        await self._run("registering a call", upsert)

    async def remove(self, call_uuid: str) -> None:
        """Unregister a call of this instance (nothing if it is not there)."""
        await self._run(
            "unregistering a call",
            live_calls_table.delete()
            .where(live_calls_table.c.call_uuid == call_uuid[:128])
            .where(live_calls_table.c.instance_id == self.instance_id),
        )

    async def heartbeat(self) -> bool:
        """One beat: refresh this instance's row (inserted on the first beat), purge the
        instances silent for :data:`STALE_S` with their calls, and expired claims."""
        now = datetime.now(UTC)
        stale = now - timedelta(seconds=STALE_S)
        insert = _insert(self.cluster.engine.dialect.name, instances_table)
        beat = insert.values(
            instance_id=self.instance_id, started_at=now, heartbeat_at=now
        ).on_conflict_do_update(
            index_elements=[instances_table.c.instance_id], set_={"heartbeat_at": now}
        )
        dead = sa.select(instances_table.c.instance_id).where(
            instances_table.c.heartbeat_at < stale
        )
        return await self._run(
            "heartbeat",
            [
                beat,
                live_calls_table.delete().where(live_calls_table.c.instance_id.in_(dead)),
                instances_table.delete().where(instances_table.c.heartbeat_at < stale),
                claims_table.delete().where(claims_table.c.expires_at < now),
            ],
        )

    async def run(self) -> None:
        """Beat every :data:`HEARTBEAT_S` until cancelled (the instance's one registry task)."""
        while True:
            await self.heartbeat()
            await asyncio.sleep(HEARTBEAT_S)

    async def leave(self) -> None:
        """At shutdown: finish the writes under way, then remove this instance and whatever
        call it still lists."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await self.settled()
        await self._run(
            "leaving",
            [
                live_calls_table.delete().where(live_calls_table.c.instance_id == self.instance_id),
                instances_table.delete().where(instances_table.c.instance_id == self.instance_id),
            ],
        )

    async def live(self, call_uuid: str | None = None) -> list[LiveCallRow]:
        """Every live call of the instances alive (heartbeat within :data:`STALE_S`), oldest
        first; only ``call_uuid`` when it is given.

        Raises:
            StoreUnavailable: the database is down.
        """
        stale = datetime.now(UTC) - timedelta(seconds=STALE_S)
        c = self.cluster
        query = (
            sa.select(live_calls_table)
            .join(
                instances_table,
                instances_table.c.instance_id == live_calls_table.c.instance_id,
            )
            .where(instances_table.c.heartbeat_at >= stale)
            .order_by(live_calls_table.c.started_at, live_calls_table.c.call_uuid)
        )
        if call_uuid is not None:
            query = query.where(live_calls_table.c.call_uuid == call_uuid[:128])
        try:
            async with c.turns, c.engine.connect() as conn:
                rows = (await conn.execute(query)).all()
        except UNAVAILABLE as exc:
            raise StoreUnavailable(f"live calls unavailable: {exc.__class__.__name__}") from exc
        return [
            LiveCallRow(
                r.call_uuid,
                r.instance_id,
                r.front_door,
                r.direction,
                r.from_masked,
                r.to_masked,
                r.started_at,
            )
            for r in rows
        ]

    async def holder(self, call_uuid: str) -> str | None:
        """The instance (alive) holding ``call_uuid``, or None.

        Raises:
            StoreUnavailable: the database is down.
        """
        rows = await self.live(call_uuid)
        return rows[0].instance_id if rows else None

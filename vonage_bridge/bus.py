"""Messages between instances: PostgreSQL ``LISTEN``/``NOTIFY``. Shell: does I/O.

:meth:`Bus.publish` sends ``pg_notify(channel, json)`` on the store's engine; :meth:`Bus.run`
(one task per instance) holds a dedicated asyncpg connection that ``LISTEN``s to every
subscribed channel (``add_listener``) and hands each payload, parsed, to the subscribers; when
the connection is lost it reconnects (1 s, then doubling up to :data:`MAX_BACKOFF_S`).
Messages sent while an instance is disconnected are lost to it (NOTIFY is not queued for
absent listeners): hang-ups are asked again, transcript lines are for watching only.

On SQLite (one instance) there is no server to carry them: :meth:`Bus.publish` hands the
message to this instance's own subscribers, nothing leaves the process.

Channels (payload: a JSON object, under :data:`MAX_PAYLOAD_BYTES`):

- :data:`HANGUP`: ``{"call_uuid", "instance_id", "reason"}``: the instance holding the call
  (``instance_id``) hangs it up;
- :data:`TRANSCRIPT`: ``{"call_uuid", "instance_id", "role", "text", "at"}``: a live
  transcript line of some call (:func:`transcript_message`), for a console to subscribe to;
- :data:`LIVE`: ``{"type": "start", "instance_id", "call": {call_uuid, front_door,
  direction, from, to, started_at, assistant}}`` (numbers masked) or ``{"type": "end",
  "instance_id", "call_uuid", "reason"}``: a call of some instance started or ended, for the
  consoles of the others (``hub_feed``).

Sources: https://www.postgresql.org/docs/current/sql-notify.html,
https://magicstack.github.io/asyncpg/current/api/index.html#asyncpg.connection.Connection.add_listener
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from .core.events import TranscriptEntry
from .store import UNAVAILABLE, server_settings

log = logging.getLogger(__name__)

HANGUP = "vb_hangup"
TRANSCRIPT = "vb_transcript"
LIVE = "vb_live"
MAX_PAYLOAD_BYTES = 7000
"""NOTIFY payloads must stay under 8000 bytes; transcript text is cut to fit."""
MAX_BACKOFF_S = 10.0
CONNECT_TIMEOUT_S = 5.0

Subscriber = Callable[[dict[str, Any]], None]


def transcript_message(call_uuid: str, instance_id: str, entry: TranscriptEntry) -> dict[str, Any]:
    """The :data:`TRANSCRIPT` payload of one line (text cut to 2000 characters)."""
    return {
        "call_uuid": call_uuid,
        "instance_id": instance_id,
        "role": entry.role,
        "text": entry.text[:2000],
        "at": None if entry.at is None else entry.at.astimezone(UTC).isoformat(),
    }


def asyncpg_params(database_url: str) -> tuple[str, dict[str, str]]:
    """``DATABASE_URL`` as an asyncpg DSN and its ``server_settings`` (libpq's ``options``,
    which asyncpg does not take, see ``store.open_engine``)."""
    url = make_url(database_url)
    options = url.query.get("options")
    settings: dict[str, str] = {}
    if options is not None:
        settings = server_settings(options if isinstance(options, str) else " ".join(options))
        url = url.difference_update_query(["options"])
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return dsn, settings


class Bus:
    """Publish and subscribe between instances (see the module docstring).

    Args:
        engine: the store's engine (publishing).
        database_url: ``DATABASE_URL`` (the listening connection); None on SQLite.
    """

    def __init__(self, engine: AsyncEngine, database_url: str | None) -> None:
        self.engine = engine
        self.database_url = database_url
        self.subscribers: dict[str, list[Subscriber]] = {}
        self._sending: set[asyncio.Task[Any]] = set()
        self._conn: Any = None  # the listening asyncpg connection, while connected
        self.connected = asyncio.Event()
        """Set while the listening connection is up (always, on SQLite)."""
        self.lost = asyncio.Event()
        """Set when the listening connection was lost, until it is up again."""
        if database_url is None:
            self.connected.set()

    def subscribe(self, channel: str, subscriber: Subscriber) -> None:
        """Call ``subscriber(payload)`` for each message on ``channel`` from now on (a new
        channel is listened to at once when :meth:`run` is connected, else when it
        connects); it must not block (start a task for I/O)."""
        new = channel not in self.subscribers
        self.subscribers.setdefault(channel, []).append(subscriber)
        conn = self._conn
        if new and conn is not None and not conn.is_closed():
            task = asyncio.create_task(conn.add_listener(channel, self._on_notify))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def publish(self, channel: str, payload: dict[str, Any]) -> bool:
        """Send ``payload`` to every instance listening on ``channel`` (this one included);
        False if the database failed (logged)."""
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        if len(text.encode()) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"{channel} payload over {MAX_PAYLOAD_BYTES} bytes")
        if self.database_url is None:
            self._deliver(channel, text)
            return True
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    sa.text("SELECT pg_notify(:channel, :payload)"),
                    {"channel": channel, "payload": text},
                )
        except UNAVAILABLE as exc:
            log.warning("publishing on %s failed: %s", channel, exc.__class__.__name__)
            return False
        return True

    def _deliver(self, channel: str, text: str) -> None:
        try:
            payload = json.loads(text)
        except ValueError:
            log.warning("ignoring a %s message that is not JSON", channel)
            return
        if not isinstance(payload, dict):
            return
        for subscriber in self.subscribers.get(channel, ()):
            try:
                subscriber(payload)
            except Exception:
                log.exception("%s subscriber failed", channel)

    async def run(self) -> None:
        """Listen until cancelled, reconnecting when the connection is lost (PostgreSQL);
        returns at once on SQLite."""
        if self.database_url is None:
            return
        dsn, settings = asyncpg_params(self.database_url)
        backoff = 1.0
        while True:
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(
                    dsn, server_settings=settings or None, timeout=CONNECT_TIMEOUT_S
                )
            except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
                log.warning(
                    "bus: cannot listen (%s); retrying in %.0f s", exc.__class__.__name__, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            try:
                conn.add_termination_listener(lambda _c, ev=lost: ev.set())
                for channel in self.subscribers:
                    await conn.add_listener(channel, self._on_notify)
                self._conn = conn
                self.lost.clear()
                self.connected.set()
                backoff = 1.0
                log.info("bus: listening on %s", ", ".join(self.subscribers) or "nothing")
                await lost.wait()
                log.warning("bus: listening connection lost; reconnecting")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("bus: listening failed (%s); reconnecting", exc.__class__.__name__)
            finally:
                self._conn = None
                self.connected.clear()
                self.lost.set()
                if not conn.is_closed():
                    conn.terminate()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _on_notify(self, _conn: object, _pid: int, channel: str, payload: object) -> None:
        self._deliver(channel, str(payload))

    def publish_soon(self, channel: str, payload: dict[str, Any]) -> None:
        """:meth:`publish` in the background (never holds a call up); failures are logged."""
        task = asyncio.create_task(self.publish(channel, payload), name=f"publish-{channel}")
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)


def transcript_publisher(bus: Bus, instance_id: str) -> Callable[[str, TranscriptEntry], None]:
    """``publish(call_uuid, entry)``: a live transcript line on :data:`TRANSCRIPT`, sent in
    the background (the calls' ``CallDeps.on_transcript``)."""

    def publish(call_uuid: str, entry: TranscriptEntry) -> None:
        """Publish ``entry`` of call ``call_uuid`` in the background."""
        bus.publish_soon(TRANSCRIPT, transcript_message(call_uuid, instance_id, entry))

    return publish

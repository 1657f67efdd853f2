"""The SQL call store against SQLite in tmp_path: insert, get, page, ordering, timestamps."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vonage_bridge.config import Settings
from vonage_bridge.errors import ConfigError
from vonage_bridge.store import (
    FRONT_DOOR_OPENAI_SIP,
    FRONT_DOOR_TWILIO,
    FRONT_DOOR_VONAGE,
    FRONT_DOORS,
    CallFilter,
    CallRecord,
    SqlCallStore,
    TranscriptEntry,
    async_url,
)

T0 = datetime(2026, 11, 23, 10, 0, 0, 123456, tzinfo=UTC)


def record(n: int, **overrides: object) -> CallRecord:
    fields: dict[str, object] = {
        "call_uuid": f"uuid-{n}",
        "conversation_uuid": f"CON-{n}",
        "direction": "inbound",
        "from_number": "447700900000",
        "to_number": "447700900001",
        "started_at": T0 + timedelta(seconds=n),
        "ended_at": T0 + timedelta(seconds=n, microseconds=654321),
        "duration_s": 0.531,
        "end_reason": "caller hung up (close 1000)",
        "transcript": (),
    }
    fields.update(overrides)
    return CallRecord(**fields)  # type: ignore[arg-type]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlCallStore]:
    s = await SqlCallStore.open(f"sqlite:///{tmp_path / 'calls.db'}")
    yield s
    await s.close()


async def test_record_round_trips_with_microseconds_and_ordered_transcript(
    store: SqlCallStore,
) -> None:
    entries = tuple(
        TranscriptEntry(role, text, T0 + timedelta(microseconds=i))
        for i, (role, text) in enumerate(
            [("caller", "hello"), ("assistant", "hi there"), ("dtmf", "5"), ("caller", "bye")]
        )
    ) + (TranscriptEntry("tool_result", '{"ok": true}', None),)
    original = record(1, transcript=entries)
    await store.add(original)
    got = await store.get("uuid-1")
    assert got == original
    assert got is not None and got.started_at.microsecond == 123456
    assert got.ended_at.tzinfo is not None
    assert [e.text for e in got.transcript] == ["hello", "hi there", "5", "bye", '{"ok": true}']


async def test_get_unknown_call_is_none(store: SqlCallStore) -> None:
    assert await store.get("nope") is None


async def test_add_again_keeps_the_first_record_and_says_so_once(
    store: SqlCallStore, caplog: pytest.LogCaptureFixture
) -> None:
    first = record(1, transcript=(TranscriptEntry("caller", "a"),))
    assert await store.add(first) is True
    later = record(1, end_reason="second", from_number="447700900999", to_number="447700900998")
    with caplog.at_level(logging.INFO, logger="vonage_bridge.store"):
        assert await store.add(later) is False
    assert await store.get("uuid-1") == first
    lines = [r for r in caplog.records if r.name == "vonage_bridge.store"]
    assert [r.levelno for r in lines] == [logging.WARNING]
    message = lines[0].getMessage()
    assert "uuid-1" in message and "already" in message
    assert "447700900" not in message  # no numbers


async def test_the_same_record_added_at_once_is_written_once(store: SqlCallStore) -> None:
    first = record(1, transcript=(TranscriptEntry("caller", "a"), TranscriptEntry("dtmf", "5")))
    written = await asyncio.gather(*(store.add(first) for _ in range(3)))
    assert sorted(written) == [False, False, True]
    assert await store.get("uuid-1") == first


async def test_page_is_newest_first_with_next_offset(store: SqlCallStore) -> None:
    for n in (3, 1, 4, 2, 5):
        await store.add(record(n, transcript=(TranscriptEntry("caller", "x"),)))
    first = await store.page(limit=2, offset=0)
    assert [r.call_uuid for r in first.records] == ["uuid-5", "uuid-4"]
    assert first.next_offset == 2
    assert first.records[0].transcript == ()  # pages leave transcripts out
    last = await store.page(limit=2, offset=4)
    assert [r.call_uuid for r in last.records] == ["uuid-1"]
    assert last.next_offset is None
    assert (await store.page(limit=10, offset=50)).records == []


def test_to_json_uses_iso_utc_with_microseconds() -> None:
    body = record(0, transcript=(TranscriptEntry("caller", "hi"),)).to_json()
    assert body["started_at"] == "2026-11-23T10:00:00.123456+00:00"
    assert body["from"] == "447700900000"
    assert body["transcript"] == [{"role": "caller", "text": "hi", "at": None}]


@pytest.mark.parametrize(
    ("now", "at"),
    [
        (1_790_000_000.5, datetime(2026, 9, 21, 14, 13, 20, 500000, tzinfo=UTC)),  # epoch s
        (0.0, None),  # CallSession.now never set
        (12.5, None),  # a loop time is not a wall time: dropped, not guessed
    ],
)
def test_transcript_entry_stamped_keeps_only_wall_clock_times(
    now: float, at: datetime | None
) -> None:
    entry = TranscriptEntry.stamped("dtmf", "1", now)
    assert entry == TranscriptEntry("dtmf", "1", at)
    assert entry.to_json()["at"] == (None if at is None else at.isoformat(timespec="microseconds"))


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///calls.db", "sqlite+aiosqlite:///calls.db"),
        ("postgresql://u:p@h:5432/d", "postgresql+asyncpg://u:p@h:5432/d"),
        ("postgres://u@h/d", "postgresql+asyncpg://u@h/d"),
    ],
)
def test_async_url_picks_the_async_driver(given: str, expected: str) -> None:
    assert async_url(given) == expected


def test_async_url_refuses_other_databases() -> None:
    with pytest.raises(ValueError):
        async_url("mysql://u@h/d")


def test_database_url_errors_name_the_variable_and_hide_passwords(tmp_path: Path) -> None:
    base = {
        "SERVER_URL": "bridge.example.com",
        "OPENAI_API_KEY": "sk-test",
        "ALLOW_UNSIGNED_WEBHOOKS": "true",
    }
    assert Settings.from_env(base).store.database_url == "sqlite:///calls.db"
    ok = Settings.from_env({**base, "DATABASE_URL": "postgresql://u:pw@db.internal/calls"})
    assert ok.store.is_postgresql and "pw" not in repr(ok)
    for bad in (
        f"sqlite:///{tmp_path}/missing/calls.db",
        "sqlite://calls.db",
        "mysql://u@h/d",
        "postgresql://u:hunter2@h/",
    ):
        with pytest.raises(ConfigError) as info:
            Settings.from_env({**base, "DATABASE_URL": bad})
        assert "DATABASE_URL" in str(info.value)
        assert "hunter2" not in str(info.value)


# ------------------------------------------------------------------ front doors


def test_front_door_defaults_to_vonage_and_is_in_the_json() -> None:
    assert FRONT_DOORS == ("vonage", "twilio", "openai-sip", "browser")
    assert all(len(door) <= 16 for door in FRONT_DOORS)  # the column's width
    assert record(0).front_door == FRONT_DOOR_VONAGE
    body = record(0, front_door=FRONT_DOOR_TWILIO).to_json(with_transcript=False)
    assert body["front_door"] == "twilio"
    assert "transcript" not in body


async def test_front_door_round_trips(store: SqlCallStore) -> None:
    for n, door in enumerate(FRONT_DOORS):
        original = record(n, front_door=door, transcript=(TranscriptEntry("caller", "hi", T0),))
        await store.add(original)
        assert await store.get(f"uuid-{n}") == original
    page = await store.page(limit=10, offset=0)
    assert [r.front_door for r in page.records] == ["browser", "openai-sip", "twilio", "vonage"]


async def test_page_filters_by_front_door_and_pages_only_those(store: SqlCallStore) -> None:
    doors = [FRONT_DOOR_TWILIO, FRONT_DOOR_VONAGE, FRONT_DOOR_TWILIO, FRONT_DOOR_OPENAI_SIP]
    doors += [FRONT_DOOR_TWILIO]
    for n, door in enumerate(doors):
        await store.add(record(n, front_door=door))
    first = await store.page(limit=2, offset=0, front_door=FRONT_DOOR_TWILIO)
    assert [r.call_uuid for r in first.records] == ["uuid-4", "uuid-2"]
    assert first.next_offset == 2
    last = await store.page(limit=2, offset=2, front_door=FRONT_DOOR_TWILIO)
    assert [r.call_uuid for r in last.records] == ["uuid-0"]
    assert last.next_offset is None
    sip = await store.page(limit=10, offset=0, front_door=FRONT_DOOR_OPENAI_SIP)
    assert [(r.call_uuid, r.front_door) for r in sip.records] == [("uuid-3", "openai-sip")]
    assert len((await store.page(limit=10, offset=0, front_door=None)).records) == 5


async def test_add_refuses_an_unknown_front_door(store: SqlCallStore) -> None:
    with pytest.raises(ValueError, match="front_door"):
        await store.add(record(1, front_door="Twilio"))
    assert await store.get("uuid-1") is None


# The ``calls`` table as the version before front doors created it (SQLAlchemy's SQLite DDL).
OLD_SQLITE_SCHEMA = """
CREATE TABLE calls (
    call_uuid VARCHAR(128) NOT NULL,
    conversation_uuid VARCHAR(128),
    direction VARCHAR(16) NOT NULL,
    from_number VARCHAR(64),
    to_number VARCHAR(64),
    started_at DATETIME NOT NULL,
    ended_at DATETIME NOT NULL,
    duration_s FLOAT NOT NULL,
    end_reason TEXT NOT NULL,
    PRIMARY KEY (call_uuid)
);
CREATE INDEX ix_calls_started_at ON calls (started_at);
CREATE TABLE transcript_entries (
    call_uuid VARCHAR(128) NOT NULL,
    seq INTEGER NOT NULL,
    role VARCHAR(32) NOT NULL,
    text TEXT NOT NULL,
    at DATETIME,
    PRIMARY KEY (call_uuid, seq),
    FOREIGN KEY(call_uuid) REFERENCES calls (call_uuid) ON DELETE CASCADE
);
INSERT INTO calls VALUES ('old-1', 'CON-old', 'inbound', '447700900000', '447700900001',
    '2026-11-22 09:00:00.000001', '2026-11-22 09:01:00.500000', 60.5, 'caller hung up');
INSERT INTO transcript_entries VALUES ('old-1', 0, 'caller', 'hello', '2026-11-22 09:00:01.000000');
"""


async def test_previous_version_database_gets_the_front_door_column(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(OLD_SQLITE_SCHEMA)
        db.commit()
    caplog.set_level(logging.INFO, logger="vonage_bridge")

    store = await SqlCallStore.open(f"sqlite:///{path}")
    try:
        old = await store.get("old-1")
        assert old is not None
        assert old.front_door == FRONT_DOOR_VONAGE
        assert (old.direction, old.duration_s, old.end_reason) == (
            "inbound",
            60.5,
            "caller hung up",
        )
        assert old.started_at == datetime(2026, 11, 22, 9, 0, 0, 1, tzinfo=UTC)
        assert old.transcript == (
            TranscriptEntry("caller", "hello", datetime(2026, 11, 22, 9, 0, 1, tzinfo=UTC)),
        )
        new = record(1, front_door=FRONT_DOOR_TWILIO)
        await store.add(new)
        assert await store.get("uuid-1") == new
        twilio = await store.page(limit=10, offset=0, front_door=FRONT_DOOR_TWILIO)
        assert [r.call_uuid for r in twilio.records] == ["uuid-1"]
        vonage = await store.page(limit=10, offset=0, front_door=FRONT_DOOR_VONAGE)
        assert [r.call_uuid for r in vonage.records] == ["old-1"]
    finally:
        await store.close()
    upgraded = [r for r in caplog.records if "added column calls.front_door" in r.getMessage()]
    assert len(upgraded) == 1

    again = await SqlCallStore.open(f"sqlite:///{path}")  # already upgraded: nothing to do
    try:
        assert len((await again.page(limit=10, offset=0)).records) == 2
    finally:
        await again.close()
    upgraded = [r for r in caplog.records if "added column calls.front_door" in r.getMessage()]
    assert len(upgraded) == 1
    with contextlib.closing(sqlite3.connect(path)) as db:
        columns = {row[1]: row for row in db.execute("PRAGMA table_info(calls)")}
    assert columns["front_door"][2:5] == ("VARCHAR(16)", 1, "'vonage'")  # type, NOT NULL, default


# --- outbound columns: metadata and amd ----------------------------------------------------


async def test_metadata_and_amd_round_trip_and_are_in_the_json(store: SqlCallStore) -> None:
    meta: dict[str, object] = {"crm_id": 42, "tags": ["vip", "é"], "nested": {"a": None}}
    await store.add(record(1, metadata=meta, amd="machine"))
    await store.add(record(2))
    got = await store.get("uuid-1")
    assert got is not None and got.metadata == meta and got.amd == "machine"
    plain = await store.get("uuid-2")
    assert plain is not None and plain.metadata is None and plain.amd is None
    page = await store.page(limit=10, offset=0)
    listed = {r.call_uuid: r.to_json(with_transcript=False) for r in page.records}
    assert listed["uuid-1"]["metadata"] == meta and listed["uuid-1"]["amd"] == "machine"
    assert listed["uuid-2"]["metadata"] is None and listed["uuid-2"]["amd"] is None


async def test_a_front_door_era_database_gets_the_outbound_columns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "front-door-era.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(OLD_SQLITE_SCHEMA)
        db.execute("ALTER TABLE calls ADD COLUMN front_door VARCHAR(16) NOT NULL DEFAULT 'vonage'")
        db.commit()
    caplog.set_level(logging.INFO, logger="vonage_bridge")
    store = await SqlCallStore.open(f"sqlite:///{path}")
    try:
        old = await store.get("old-1")
        assert old is not None and old.metadata is None and old.amd is None
        await store.add(record(1, metadata={"k": "v"}, amd="human"))
        new = await store.get("uuid-1")
        assert new is not None and (new.metadata, new.amd) == ({"k": "v"}, "human")
    finally:
        await store.close()
    added = sorted(
        r.getMessage().rsplit(" ", 1)[1] for r in caplog.records if "added column" in r.getMessage()
    )
    assert added == sorted(
        ["calls.amd", "calls.assistant", "calls.assistant_version", "calls.call_metadata"]  # 0003
        + ["calls.usage", "calls.cost_usd", "calls.recording"]  # 0004
        + ["calls.figures"]  # 0005
        + ["outbound_calls.amd"]  # 0007 (0006 made the table without it)
    )


async def test_previous_version_database_gets_the_assistant_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(OLD_SQLITE_SCHEMA)
        db.commit()
    store = await SqlCallStore.open(f"sqlite:///{path}")
    try:
        old = await store.get("old-1")
        assert old is not None and (old.assistant, old.assistant_version) == (None, None)
        new = record(1, assistant="sales", assistant_version=3)
        await store.add(new)
        assert await store.get("uuid-1") == new
        body = new.to_json()
        assert (body["assistant"], body["assistant_version"]) == ("sales", 3)
    finally:
        await store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        columns = {row[1]: row for row in db.execute("PRAGMA table_info(calls)")}
    assert columns["assistant"][2:4] == ("VARCHAR(64)", 0)  # type, nullable
    assert columns["assistant_version"][2:4] == ("INTEGER", 0)


# ------------------------------------------------------------------ filters (console history)


async def _filtered(store: SqlCallStore, **kw: object) -> list[str]:
    page = await store.page(limit=10, offset=0, where=CallFilter(**kw))  # type: ignore[arg-type]
    return [r.call_uuid for r in page.records]


async def test_page_filters_by_direction_number_dates_reason_and_words(
    store: SqlCallStore,
) -> None:
    await store.add(record(0, transcript=(TranscriptEntry("caller", "My PARCEL is late", T0),)))
    await store.add(
        record(
            1,
            direction="outbound",
            from_number="14155550100",
            end_reason="server shutting down",
            started_at=T0 + timedelta(days=2),
            transcript=(TranscriptEntry("assistant", "100% sure_thing", T0),),
        )
    )
    assert await _filtered(store) == ["uuid-1", "uuid-0"]
    assert await _filtered(store, direction="outbound") == ["uuid-1"]
    assert await _filtered(store, number="5550100") == ["uuid-1"]
    assert await _filtered(store, number="900001") == ["uuid-1", "uuid-0"]  # the to number
    assert await _filtered(store, since=T0 + timedelta(days=1)) == ["uuid-1"]
    assert await _filtered(store, until=T0 + timedelta(days=1)) == ["uuid-0"]
    assert await _filtered(store, end_reason="SHUTTING") == ["uuid-1"]
    assert await _filtered(store, words=("parcel", "late")) == ["uuid-0"]
    assert await _filtered(store, words=("parcel", "early")) == []
    # LIKE wildcards are taken literally
    assert await _filtered(store, words=("100%",)) == ["uuid-1"]
    assert await _filtered(store, words=("l_t",)) == []  # "_" would match "lat" in "late"
    assert await _filtered(store, words=("e_t",)) == ["uuid-1"]
    assert await _filtered(store, words=("%",)) == ["uuid-1"]

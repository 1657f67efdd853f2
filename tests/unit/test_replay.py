"""``core.replay.SeenIds``: bounded, expiring memory of ids (webhook ids, JWTs, spent media
tokens, started Twilio streams); time passed in."""

from __future__ import annotations

import pytest

from vonage_bridge.core.replay import SeenIds


def test_seen_ids_deduplicate_with_bounded_memory_and_ttl() -> None:
    seen = SeenIds(capacity=3, ttl_s=60)
    assert not seen.check_and_add("a", 0)
    assert seen.check_and_add("a", 1)
    for i, name in enumerate("bcd"):
        seen.check_and_add(name, 2 + i)
    assert len(seen) == 3
    assert not seen.check_and_add("a", 10)  # evicted by capacity
    assert not seen.check_and_add("zz", 100)  # everything else expired
    assert len(seen) == 1


def test_an_id_is_remembered_until_its_own_expiry() -> None:
    seen = SeenIds(capacity=10, ttl_s=1)
    assert not seen.check_and_add("jti-1", 100, expires_at=460)
    assert seen.check_and_add("jti-1", 459, expires_at=460)
    assert seen.check_and_add("jti-1", 460, expires_at=460)
    assert not seen.check_and_add("jti-1", 461, expires_at=460)  # expired: new again


def test_an_expired_id_behind_a_live_one_is_not_seen() -> None:
    seen = SeenIds(capacity=10)
    seen.check_and_add("long", 0, expires_at=1000)
    seen.check_and_add("short", 0, expires_at=10)
    assert not seen.check_and_add("short", 11)
    assert len(seen) == 2  # kept until the cap or the old end expires: memory stays bounded


def test_a_flood_of_ids_stays_within_the_cap() -> None:
    seen = SeenIds(capacity=100, ttl_s=3600)
    for i in range(10_000):
        seen.check_and_add(f"id-{i}", i / 1000)
    assert len(seen) == 100
    assert seen.check_and_add("id-9999", 10)
    assert not seen.check_and_add("id-0", 10)  # the oldest went first


def test_seen_only_reads_and_each_key_keeps_its_own_expiry() -> None:
    ids = SeenIds(capacity=10)
    assert not ids.seen("a", 0.0)
    assert not ids.check_and_add("a", 0.0, expires_at=100.0)  # seen() did not remember it
    assert not ids.check_and_add("b", 1.0, expires_at=50.0)
    assert ids.seen("a", 100.0) and not ids.seen("a", 100.5)
    assert ids.seen("b", 50.0) and not ids.seen("b", 60.0)
    assert not ids.check_and_add("b", 60.0, expires_at=200.0)  # expired: new again
    assert ids.seen("b", 150.0)
    assert not ids.check_and_add("c", 101.0, expires_at=300.0)
    assert len(ids) == 2  # "a" expired and was dropped from the oldest end
    assert ids.check_and_add("c", 102.0, expires_at=500.0)  # seen again: the later expiry
    assert ids.seen("c", 400.0) and not ids.seen("c", 500.5)


def test_any_hashable_key_is_an_id() -> None:
    ids = SeenIds(capacity=10)
    assert not ids.check_and_add(("call-1", "token"), 0.0, expires_at=10.0)
    assert ids.seen(("call-1", "token"), 10.0)
    assert not ids.seen(("call-2", "token"), 1.0)


@pytest.mark.parametrize(("capacity", "ttl_s"), [(0, 1.0), (1, 0.0), (1, -1.0)])
def test_bad_bounds_are_refused(capacity: int, ttl_s: float) -> None:
    with pytest.raises(ValueError):
        SeenIds(capacity, ttl_s)

"""The console's hub across instances (``hub``'s remote calls, ``hub_feed``): what the other
instances publish becomes the same SSE events, this instance's calls are published masked."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from vonage_bridge import bus as bus_mod
from vonage_bridge.bus import Bus
from vonage_bridge.cluster import LiveCallRow, LiveRegistry
from vonage_bridge.core.events import TranscriptEntry
from vonage_bridge.hub import CallHub, LiveView
from vonage_bridge.hub_feed import HubFeed

T0 = datetime(2026, 11, 25, 9, 0, 0, tzinfo=UTC)
ME, OTHER = "host-1-aaaa", "host-2-bbbb"


class FakeBus:
    def __init__(self) -> None:
        self.subscribers: dict[str, list[Any]] = {}
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def subscribe(self, channel: str, subscriber: Any) -> None:
        self.subscribers.setdefault(channel, []).append(subscriber)

    def publish_soon(self, channel: str, payload: dict[str, Any]) -> None:
        self.sent.append((channel, payload))

    def deliver(self, channel: str, payload: dict[str, Any]) -> None:
        for subscriber in self.subscribers.get(channel, []):
            subscriber(payload)


class FakeRegistry:
    instance_id = ME

    def __init__(self) -> None:
        self.rows: list[LiveCallRow] = []

    async def live(self) -> list[LiveCallRow]:
        return self.rows


def feed() -> tuple[HubFeed, CallHub, FakeBus, FakeRegistry]:
    hub, bus, registry = CallHub(), FakeBus(), FakeRegistry()
    f = HubFeed(hub, cast(Bus, bus), cast(LiveRegistry, registry))
    f.connect()
    return f, hub, bus, registry


def start(call_uuid: str, instance_id: str = OTHER) -> dict[str, Any]:
    call = {
        "call_uuid": call_uuid,
        "front_door": "vonage",
        "direction": "inbound",
        "from": "***0001",
        "to": "***0002",
        "started_at": T0.isoformat(),
        "assistant": None,
    }
    return {"type": "start", "instance_id": instance_id, "call": call}


def line(call_uuid: str, text: str, instance_id: str = OTHER) -> dict[str, Any]:
    return {
        "call_uuid": call_uuid,
        "instance_id": instance_id,
        "role": "caller",
        "text": text,
        "at": T0.isoformat(),
    }


def test_calls_of_other_instances_become_hub_events_and_ours_are_ignored() -> None:
    _, hub, bus, _ = feed()
    queue = hub.subscribe()
    bus.deliver(bus_mod.LIVE, start("c-ours", instance_id=ME))  # our own, already known
    bus.deliver(bus_mod.LIVE, start("c-1"))
    bus.deliver(bus_mod.TRANSCRIPT, line("c-1", "Hello"))
    bus.deliver(bus_mod.TRANSCRIPT, line("c-unknown", "lost"))  # never started: ignored
    bus.deliver(bus_mod.LIVE, {"type": "start", "instance_id": OTHER, "call": "junk"})
    events = [queue.get_nowait() for _ in range(queue.qsize())]
    assert [e["type"] for e in events] == ["start", "line"]
    assert events[0]["call"]["instance_id"] == OTHER
    assert events[1]["entry"] == TranscriptEntry("caller", "Hello", T0).to_json()
    assert [v.call_uuid for v in hub.every_call()] == ["c-1"]
    assert [e.text for e in hub.remote["c-1"].transcript] == ["Hello"]

    bus.deliver(
        bus_mod.LIVE, {"type": "end", "instance_id": OTHER, "call_uuid": "c-1", "reason": "bye"}
    )
    assert queue.get_nowait() == {"type": "end", "call_uuid": "c-1", "reason": "bye"}
    assert hub.every_call() == []


def test_our_calls_are_published_masked_with_their_end() -> None:
    _, hub, bus, _ = feed()
    view = LiveView("c-2", "twilio", "outbound", "+14155550100", "+818012345678", started_at=T0)
    hub.started(view)
    hub.line("c-2", TranscriptEntry("assistant", "Hi", T0))  # lines go by on_transcript
    hub.ended("c-2", "caller hung up")
    assert bus.sent == [
        (
            bus_mod.LIVE,
            {
                "type": "start",
                "instance_id": ME,
                "call": {
                    "call_uuid": "c-2",
                    "front_door": "twilio",
                    "direction": "outbound",
                    "from": "***0100",
                    "to": "***5678",
                    "started_at": T0.isoformat(),
                    "assistant": None,
                },
            },
        ),
        (
            bus_mod.LIVE,
            {"type": "end", "instance_id": ME, "call_uuid": "c-2", "reason": "caller hung up"},
        ),
    ]


async def test_refresh_syncs_with_the_registry_and_keeps_the_lines() -> None:
    f, hub, bus, registry = feed()
    bus.deliver(bus_mod.LIVE, start("c-1"))
    bus.deliver(bus_mod.TRANSCRIPT, line("c-1", "Hello"))
    bus.deliver(bus_mod.LIVE, start("c-dead"))  # its instance died: no end ever came
    row = LiveCallRow("c-1", OTHER, "vonage", "inbound", "***0001", "***0002", T0)
    mine = LiveCallRow("c-mine", ME, "vonage", "inbound", None, None, T0)
    later = LiveCallRow("c-3", OTHER, "openai-sip", "inbound", None, None, T0)
    registry.rows = [row, mine, later]
    queue = hub.subscribe()
    await f.refresh()
    events = [queue.get_nowait() for _ in range(queue.qsize())]
    assert [(e["type"], e.get("call_uuid") or e["call"]["call_uuid"]) for e in events] == [
        ("end", "c-dead"),
        ("start", "c-3"),
    ]
    assert sorted(hub.remote) == ["c-1", "c-3"]  # never this instance's own
    assert [e.text for e in hub.remote["c-1"].transcript] == ["Hello"]

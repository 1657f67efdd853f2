"""The outbound registry's own rules (``outbound.OutboundCalls``): the per-call persona, the
bound and expiry of what it remembers, and what it ignores."""

from __future__ import annotations

from typing import Any

import pytest
from support import StartCall

from vonage_bridge import outbound
from vonage_bridge.core.call_context import CallContext
from vonage_bridge.outbound import OUTBOUND, OutboundCall, OutboundCalls


def entry(call_id: str, **kwargs: Any) -> OutboundCall:
    return OutboundCall(call_id, "vonage", "818012345678", "815031023332", CallContext(), **kwargs)


async def test_settings_for_changes_only_the_persona_of_that_call(start_call: StartCall) -> None:
    call = await start_call()
    calls = call.bridge.app[OUTBOUND]
    settings = call.bridge.settings
    calls.add(entry("plain"))
    ctx = CallContext(instructions="Ask about {topic}.", variables={"topic": "billing"})
    calls.add(OutboundCall("ctx", "vonage", "1", "2", ctx))
    assert calls.settings_for("plain", settings) is settings
    assert calls.settings_for("inbound", settings) is settings
    changed = calls.settings_for("ctx", settings)
    assert changed.call.system_message.endswith("\n\nAsk about billing.")
    assert changed.call.system_message.startswith(settings.call.system_message.rstrip())
    assert changed.openai == settings.openai and changed.vonage == settings.vonage


async def test_entries_are_bounded_and_expire(
    start_call: StartCall, monkeypatch: pytest.MonkeyPatch
) -> None:
    call = await start_call()
    calls: OutboundCalls = call.bridge.app[OUTBOUND]
    monkeypatch.setattr(outbound, "MAX_ENTRIES", 3)
    for n in range(5):
        calls.add(entry(f"c{n}"))
    assert len(calls) == 3 and calls.get("c0") is None and calls.get("c4") is not None
    old = entry("old")
    old.placed_mono -= outbound.ENTRY_TTL_S + 1
    calls._calls = {"old": old}
    calls.add(entry("new"))
    assert calls.get("old") is None and calls.get("new") is not None


async def test_unknown_calls_and_statuses_after_the_last_outcome_are_ignored(
    start_call: StartCall,
) -> None:
    call = await start_call()
    calls: OutboundCalls = call.bridge.app[OUTBOUND]
    calls.note("nobody", "busy")  # not an outbound call of ours: nothing happens
    await calls.drain()
    e = entry("c1")
    calls.add(e)
    calls.note("c1", "ringing")
    calls.note("c1", "ringing")
    calls.note("c1", "busy", detail="x")
    calls.note("c1", "answered")  # after the last outcome
    await calls.drain()
    assert e.reported == {"ringing", "busy"} and e.finished and not e.answered
    assert calls.get("c1") is None

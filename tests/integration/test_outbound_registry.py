"""The outbound registry's own rules (``outbound.OutboundCalls``): the per-call context, the
bound and expiry of what it remembers, and what it ignores."""

from __future__ import annotations

from typing import Any

import pytest
from support import StartCall

from vonage_bridge import outbound
from vonage_bridge.core.assistant import call_instructions_for
from vonage_bridge.core.call_context import ConnectContext
from vonage_bridge.outbound import OUTBOUND, OutboundCall, OutboundCalls
from vonage_bridge.web.keys import ASSISTANTS


def entry(call_id: str, **kwargs: Any) -> OutboundCall:
    return OutboundCall(
        call_id, "vonage", "818012345678", "815031023332", ConnectContext(), **kwargs
    )


async def test_context_for_adds_only_that_calls_fields(start_call: StartCall) -> None:
    call = await start_call()
    calls = call.bridge.app[OUTBOUND]
    book = call.bridge.app[ASSISTANTS]
    calls.add(entry("plain"))
    asked = ConnectContext(
        instructions="Ask about {topic}.", variables={"topic": "billing"}, metadata={"k": 1}
    )
    calls.add(OutboundCall("ctx", "vonage", "1", "2", asked))
    inbound = await calls.context_for("inbound", book, None)
    assert (inbound.instructions, dict(inbound.variables)) == (None, {})
    plain = await calls.context_for("plain", book, None)
    assert plain.assistant == inbound.assistant and plain.instructions is None
    ctx = await calls.context_for("ctx", book, None)
    assert ctx.assistant == inbound.assistant  # no name given: our number's (the default)
    assert ctx.instructions == "Ask about {topic}." and dict(ctx.metadata) == {"k": 1}
    text = call_instructions_for(ctx, caller=None, called=None)
    assert text.endswith("\n\nAsk about billing.")


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

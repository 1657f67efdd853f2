"""The warm session's ``session.update`` is the one the call would send itself."""

from __future__ import annotations

import pytest

from vonage_bridge.audio.formats import PCM16_24K, PCMU_8K
from vonage_bridge.config import Settings
from vonage_bridge.core.call_data import CallInfo
from vonage_bridge.core.session import CallSession
from vonage_bridge.realtime.prewarm import session_update_for
from vonage_bridge.tools import build_registry
from vonage_bridge.twilio.routes import twilio_door
from vonage_bridge.vonage.routes import vonage_door

INFO = CallInfo("call-1", "conv-1", caller="447700900000", called="447700900001")


@pytest.mark.parametrize("caller_rate_hz", [16_000, 8_000])
def test_vonage_warm_update_equals_the_calls_own(settings: Settings, caller_rate_hz: int) -> None:
    """The answer URL uses PCM16 at 24 kHz, whatever rate websocket:connected then gives."""
    tools = build_registry(
        transfer_number="+447700900999", rest_configured=True, tools_module=None
    ).declarations()
    assert tools  # the comparison covers the tools too
    door = vonage_door(caller_rate_hz, settings.call.resample_quality)
    session = CallSession(
        INFO,
        openai=settings.openai,
        call=settings.call,
        path=door.path,
        commands=door.commands,
        tools=tools,
    )
    assert session_update_for(INFO, settings, tools, PCM16_24K) == session.realtime_opened()


def test_twilio_warm_update_equals_the_calls_own(settings: Settings) -> None:
    door = twilio_door("MZ123")
    session = CallSession(
        INFO, openai=settings.openai, call=settings.call, path=door.path, commands=door.commands
    )
    assert session_update_for(INFO, settings, [], PCMU_8K) == session.realtime_opened()


def test_warm_update_names_the_caller(settings: Settings) -> None:
    update = session_update_for(INFO, settings, [], PCM16_24K)
    assert "447700900000" in update
    other = CallInfo("call-1", caller="447700900002", called="447700900001")
    assert session_update_for(other, settings, [], PCM16_24K) != update

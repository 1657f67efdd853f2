"""Loopback fixtures: the real bridge app, a fake Realtime server, a fake Vonage caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from support import Call, StartCall

from vonage_bridge.sim.harness import RunningBridge, sim_env
from vonage_bridge.sim.realtime import FakeRealtimeOptions, FakeRealtimeServer


@pytest.fixture
async def start_call() -> AsyncIterator[StartCall]:
    """Factory: ``await start_call(options=FakeRealtimeOptions(...), **env_overrides)``."""
    cleanups: list[Any] = []

    async def start(options: FakeRealtimeOptions | None = None, **env: str) -> Call:
        fake = FakeRealtimeServer(options=options)
        await fake.start()
        cleanups.append(fake)
        bridge = RunningBridge(sim_env(fake.base_url, **env))
        await bridge.start()
        cleanups.append(bridge)
        http = aiohttp.ClientSession()
        cleanups.append(http)
        return Call(bridge, fake, http)

    yield start
    for thing in reversed(cleanups):
        await thing.close()

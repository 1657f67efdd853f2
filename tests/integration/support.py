"""Shared pieces of the loopback tests (imported by conftest and the test modules)."""

from __future__ import annotations

import os
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp

from vonage_bridge.sim.harness import RunningBridge
from vonage_bridge.sim.realtime import FakeRealtimeServer
from vonage_bridge.sim.vonage import FakeVonageCaller

SECOND = float(os.environ.get("VB_TEST_TIMEOUT_FACTOR", "1")) * 1.0
"""Timeout unit: scale with VB_TEST_TIMEOUT_FACTOR on a slow machine (nothing asserts speed)."""


class Call:
    """One wired-up call: bridge + fake Realtime + HTTP client."""

    def __init__(self, bridge: RunningBridge, fake: FakeRealtimeServer, http: Any) -> None:
        self.bridge = bridge
        self.fake = fake
        self.http: aiohttp.ClientSession = http

    def caller(self, path: str = "/incoming-call", **kwargs: Any) -> FakeVonageCaller:
        return FakeVonageCaller(self.http, f"{self.bridge.url}{path}", **kwargs)


StartCall = Callable[..., Coroutine[Any, Any, Call]]

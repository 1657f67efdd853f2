"""``GET /health`` counts every live call, whichever front door it came through."""

from __future__ import annotations

import asyncio

import aiohttp
import test_sip_call
from support import SECOND, StartCall
from test_sip_call import StartSip, post_call
from test_vonage_call import connected

from vonage_bridge.sim.harness import RunningBridge
from vonage_bridge.web.keys import SIP

start_sip = test_sip_call.start_sip  # the SIP fixture, shared


async def live_calls(bridge: RunningBridge, http: aiohttp.ClientSession) -> int:
    async with http.get(f"{bridge.url}/health") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["status"] == "ok"
    calls = body["calls"]
    assert isinstance(calls, int)
    return calls


async def test_health_counts_live_sip_calls(start_sip: StartSip) -> None:
    bridge, fake, http = await start_sip()
    assert await live_calls(bridge, http) == 0
    await post_call(bridge, http, "rtc_live_1")
    await post_call(bridge, http, "rtc_live_2")
    sidebands = [await fake.wait_for_sideband(5 * SECOND) for _ in range(2)]
    for sideband in sidebands:
        await sideband.next_event(5 * SECOND)  # the greeting: the call is live
    assert await live_calls(bridge, http) == 2

    tasks = list(bridge.app[SIP].calls.values())
    for sideband in sidebands:
        await sideband.close()
    async with asyncio.timeout(5 * SECOND):
        await asyncio.wait(tasks)
    assert await live_calls(bridge, http) == 0


async def test_health_counts_live_media_calls(start_call: StartCall) -> None:
    call = await start_call()
    caller, rt = await connected(call)
    await rt.wait_for_event("session.update", timeout=5 * SECOND)
    assert await live_calls(call.bridge, call.http) == 1
    await caller.hang_up()

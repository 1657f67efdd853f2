"""Graceful drain (``web.lifecycle``), on loopback: no new calls while draining, live calls
run to their end, and those left when ``DRAIN_TIMEOUT_S`` runs out hear a goodbye and are
hung up over REST, each with its record."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from support import SECOND, Call, StartCall
from test_outbound import APP_ID, vonage_env
from test_scale_out import ROOT, Instance, free_port, start_instance, until

from vonage_bridge.bridge import DRAIN_GOODBYE_INSTRUCTIONS
from vonage_bridge.calls import DRAIN_REASON, SHUTDOWN_REASON
from vonage_bridge.sim.harness import sim_env
from vonage_bridge.sim.realtime import FakeRealtimeServer, FakeRealtimeSession
from vonage_bridge.sim.vonage import FakeVonageCaller
from vonage_bridge.sim.vonage_api import FakeVoiceApi, application_test_key
from vonage_bridge.store import CallRecord
from vonage_bridge.web.keys import CALLS, STORE
from vonage_bridge.web.lifecycle import (
    CALL_STARTING_PATHS,
    POLITE_END_S,
    SHUTDOWN_DEADLINE_S,
    drain,
    is_draining,
)

FLY_TOML = Path(__file__).resolve().parents[2] / "fly.toml"


@pytest.fixture
async def voice_api() -> AsyncIterator[FakeVoiceApi]:
    api = FakeVoiceApi(application_test_key().public_key(), APP_ID)
    await api.start()
    yield api
    await api.close()


async def connected(call: Call) -> tuple[FakeVonageCaller, FakeRealtimeSession]:
    caller = call.caller()
    await caller.answer()
    await caller.connect()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    await rt.wait_for_event("session.update", timeout=5 * SECOND)
    return caller, rt


def keep_records(call: Call) -> list[CallRecord]:
    records: list[CallRecord] = []
    store = call.bridge.app[STORE]
    add = store.add

    async def keep(record: CallRecord) -> bool:
        records.append(record)
        return await add(record)

    store.add = keep  # type: ignore[method-assign]
    return records


async def get(call: Call, path: str) -> tuple[int, Any]:
    async with call.http.get(call.bridge.url + path) as resp:
        return resp.status, await resp.json()


async def test_draining_refuses_new_calls_and_lets_live_ones_end(
    start_call: StartCall, voice_api: FakeVoiceApi
) -> None:
    call = await start_call(**vonage_env(voice_api))
    records = keep_records(call)
    live, _ = await connected(call)
    late = call.caller()  # answered before the drain; its media socket arrives after
    await late.answer()
    await call.fake.wait_for_session(timeout=5 * SECOND)  # its warm session, before the drain
    sessions_before = len(call.fake.sessions)
    draining = asyncio.create_task(drain(call.bridge.app, 60.0))
    try:
        await asyncio.sleep(0)  # the drain task starts: draining is set at once
        assert is_draining(call.bridge.app)
        status, body = await get(call, "/health")
        assert (status, body["status"], body["calls"]) == (503, "draining", 1)
        newcomer = call.caller()
        with pytest.raises(Exception, match="503"):
            await newcomer.answer()
        with pytest.raises(Exception, match="503"):
            await late.connect()
        assert len(call.fake.sessions) == sessions_before  # no Realtime session for them
        assert list(call.bridge.app[CALLS]) == [live.call_uuid]
        assert not draining.done()
        # The live call still works while the instance drains: audio both ways.
        await live.stream_silence(200)
        assert not draining.done()
        await live.hang_up()
        await asyncio.wait_for(draining, timeout=5 * SECOND)  # the last call ended
    finally:
        draining.cancel()
    assert [(r.call_uuid, r.end_reason) for r in records] == [
        (live.call_uuid, records[0].end_reason)
    ]
    assert records[0].end_reason.startswith("caller hung up")
    assert voice_api.hangups == []  # the caller hung up: nothing to end over REST


async def test_calls_left_after_the_drain_timeout_hear_a_goodbye_and_are_hung_up(
    start_call: StartCall, voice_api: FakeVoiceApi
) -> None:
    call = await start_call(**vonage_env(voice_api))
    records = keep_records(call)
    callers = [await connected(call) for _ in range(2)]
    draining = asyncio.create_task(drain(call.bridge.app, 0.2))
    try:
        for _, rt in callers:
            create = await rt.wait_for_event("response.create", timeout=5 * SECOND)
            assert create["response"]["instructions"] == DRAIN_GOODBYE_INSTRUCTIONS
        for caller, _ in callers:
            await caller.wait_closed(timeout=(POLITE_END_S + 2) * SECOND)
            assert caller.close_code == 1001
            assert caller.bytes_received > 0  # the goodbye was played to them
            await voice_api.wait_hangup(caller.call_uuid, timeout=5 * SECOND)
        await asyncio.wait_for(draining, timeout=5 * SECOND)
    finally:
        draining.cancel()
    assert sorted((r.call_uuid, r.end_reason) for r in records) == sorted(
        (c.call_uuid, DRAIN_REASON) for c, _ in callers
    )
    assert not call.bridge.app[CALLS]


def test_fly_kill_timeout_covers_the_drain_the_goodbye_and_the_shutdown() -> None:
    fly = tomllib.loads(FLY_TOML.read_text())
    assert fly["kill_signal"] == "SIGTERM"
    kill_timeout = fly["kill_timeout"]
    assert kill_timeout.endswith("s")
    assert 240.0 + POLITE_END_S + SHUTDOWN_DEADLINE_S + 5.0 <= float(kill_timeout[:-1])
    assert fly["deploy"]["strategy"] == "rolling"


async def test_sigterm_drains_and_a_second_sigterm_ends_every_call_at_once(
    tmp_path: Path,
) -> None:
    """The real process: the first SIGTERM drains (503, the call goes on), the second ends
    the call with 1001 and the process exits 0 with the call's record written."""
    fake = FakeRealtimeServer()
    await fake.start()
    env = sim_env(
        fake.base_url,
        SYSTEM_MESSAGE_PATH=str(ROOT / "system-message.txt"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'calls.db'}",
        LOG_FORMAT="text",
        PYTHONPATH=str(ROOT),
    )
    port = free_port()
    env["SERVER_URL"] = f"http://127.0.0.1:{port}"
    inst: Instance | None = None
    try:
        inst = await start_instance("solo", env, tmp_path, port=port)
        async with aiohttp.ClientSession() as http:
            caller = FakeVonageCaller(http, f"{inst.url}/incoming-call")
            await caller.answer()
            await caller.connect()
            await fake.wait_for_session(timeout=5 * SECOND)
            inst.proc.send_signal(signal.SIGTERM)

            async def draining() -> bool:
                async with http.get(inst.url + "/health") as resp:
                    return resp.status == 503

            await until(draining, 5 * SECOND, "/health to answer 503")
            assert not caller.closed.is_set()  # the call goes on while draining
            inst.proc.send_signal(signal.SIGTERM)
            await caller.wait_closed(timeout=15 * SECOND)
            assert caller.close_code == 1001
            status = await asyncio.wait_for(inst.proc.wait(), timeout=15 * SECOND)
            assert status == 0
        assert any("second signal: ending every live call now" in x for x in inst.lines)
        with contextlib.closing(sqlite3.connect(tmp_path / "calls.db")) as db:
            reasons = [r[0] for r in db.execute("SELECT end_reason FROM calls")]
        assert reasons == [SHUTDOWN_REASON]
    finally:
        if inst is not None and inst.proc.returncode is None:
            inst.proc.kill()
            await inst.proc.wait()
        if inst is not None and inst.reader is not None:
            await asyncio.gather(inst.reader, return_exceptions=True)
        await fake.close()


def test_the_drain_guard_covers_every_route_that_starts_a_call() -> None:
    from vonage_bridge.twilio import routes as twilio
    from vonage_bridge.vonage import dial
    from vonage_bridge.vonage import routes as vonage
    from vonage_bridge.vonage.applications import ANSWER_PATH

    starting = {
        ANSWER_PATH,
        vonage.OUTBOUND_ANSWER_PATH,
        vonage.MEDIA_PATH,
        twilio.ANSWER_PATH,
        twilio.MEDIA_PATH,
        dial.CONNECT_PATH,
        "/openai/webhook",
        "/webhook",
    }
    assert starting == CALL_STARTING_PATHS

"""The warm session's reader (``realtime.prewarm.read_until_updated``): reads up to
``session.updated`` as it arrives, keeps every event for the call, observes the connect time
once, and gives up on a silent or closed socket. A stub socket stands in for Realtime."""

from __future__ import annotations

import asyncio
import json
from typing import cast

import aiohttp
import pytest
from aiohttp import WSMessage, WSMsgType

from vonage_bridge.errors import RealtimeConnectError
from vonage_bridge.metrics import METRICS
from vonage_bridge.realtime.prewarm import read_until_updated

COUNT = "vonage_bridge_realtime_connect_seconds_count"


class StubSocket:
    """``receive`` answers the queued messages, then waits (``receive(timeout)`` as aiohttp)."""

    def __init__(self, *messages: WSMessage) -> None:
        self.queue: asyncio.Queue[WSMessage] = asyncio.Queue()
        for message in messages:
            self.queue.put_nowait(message)
        self.close_code: int | None = None

    async def receive(self, timeout: float | None = None) -> WSMessage:
        async with asyncio.timeout(timeout):
            return await self.queue.get()


def text(event_type: str, **fields: object) -> WSMessage:
    return WSMessage(WSMsgType.TEXT, json.dumps({"type": event_type, **fields}), None)


def socket(stub: StubSocket) -> aiohttp.ClientWebSocketResponse:
    return cast(aiohttp.ClientWebSocketResponse, stub)


def observed() -> float:
    return METRICS.registry.get_sample_value(COUNT) or 0.0


async def test_reads_to_session_updated_keeps_every_event_and_observes_once() -> None:
    stub = StubSocket(
        text("session.created", event_id="e1", session={}),
        WSMessage(WSMsgType.BINARY, b"\x00", None),  # dropped
        text("session.updated", event_id="e2", session={}),
        text("input_audio_buffer.speech_started", event_id="e3", audio_start_ms=0, item_id="i"),
    )
    early: list[str] = []
    before = observed()
    started = asyncio.get_running_loop().time() - 0.25
    assert await read_until_updated(socket(stub), early, started, timeout_s=1.0) is True
    assert [json.loads(e)["type"] for e in early] == ["session.created", "session.updated"]
    assert observed() == before + 1
    assert stub.queue.qsize() == 1  # what follows is left for the call to read


async def test_an_error_first_stops_the_reader_unmeasured() -> None:
    refusal = {"type": "invalid_request_error", "code": "invalid_value", "message": "no"}
    stub = StubSocket(text("session.created", session={}), text("error", error=refusal))
    early: list[str] = []
    before = observed()
    now = asyncio.get_running_loop().time()
    assert await read_until_updated(socket(stub), early, now, timeout_s=1.0) is False
    assert [json.loads(e)["type"] for e in early] == ["session.created", "error"]
    assert observed() == before


async def test_a_silent_socket_is_given_up_after_the_timeout() -> None:
    stub = StubSocket(text("session.created", session={}))
    early: list[str] = []
    before = observed()
    now = asyncio.get_running_loop().time()
    with pytest.raises(RealtimeConnectError, match=r"no session.updated within 0.05 s"):
        await read_until_updated(socket(stub), early, now, timeout_s=0.05)
    assert len(early) == 1 and observed() == before


async def test_a_socket_closed_before_session_updated_is_a_connect_error() -> None:
    stub = StubSocket(WSMessage(WSMsgType.CLOSED, None, None))
    stub.close_code = 1011
    now = asyncio.get_running_loop().time()
    with pytest.raises(RealtimeConnectError, match=r"before session.updated \(close 1011\)"):
        await read_until_updated(socket(stub), [], now, timeout_s=1.0)

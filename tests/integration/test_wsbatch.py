"""``wsbatch.BatchSender``: a batch of messages in one transport write, read back by aiohttp's
own client exactly as if each had been sent with ``send_bytes`` / ``send_str``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from vonage_bridge.wsbatch import BatchSender, frame_header

TIMEOUT_S = 5.0
FRAME = 640


class CountingTransport:
    """Stands in for the server socket's transport: counts writes, passes them on."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.inner.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@asynccontextmanager
async def server_socket(
    *, compress: int = 0
) -> AsyncIterator[tuple[web.WebSocketResponse, aiohttp.ClientWebSocketResponse]]:
    """A loopback WebSocket: (the server's end, prepared; the client's end)."""
    ready: asyncio.Queue[web.WebSocketResponse] = asyncio.Queue()
    done = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ready.put(ws)
        await done.wait()
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(f"http://127.0.0.1:{port}/ws", compress=compress) as client:
                async with asyncio.timeout(TIMEOUT_S):
                    server = await ready.get()
                try:
                    yield server, client
                finally:
                    # Both ends close at once, each reading the other's close frame: closing
                    # only the client would wait out its close timeout (10 s) for a server
                    # handler that never reads.
                    async with asyncio.timeout(TIMEOUT_S):
                        await asyncio.gather(server.close(), client.close())
    finally:
        done.set()
        await runner.cleanup()


async def received(client: aiohttp.ClientWebSocketResponse, n: int) -> list[tuple[WSMsgType, Any]]:
    out = []
    async with asyncio.timeout(TIMEOUT_S):
        for _ in range(n):
            msg = await client.receive()
            out.append((msg.type, msg.data))
    return out


def frames(n: int, size: int = FRAME) -> list[bytes]:
    return [bytes([i + 1]) * size for i in range(n)]


async def test_a_batch_is_one_write_and_arrives_as_separate_messages() -> None:
    async with server_socket() as (server, client):
        sender = BatchSender(server, FRAME)
        assert sender.ready
        writer = server._writer
        assert writer is not None
        counting = CountingTransport(writer.transport)
        writer.transport = counting  # type: ignore[assignment]
        batch = frames(5)
        sender.write(batch, "notify é", None)
        assert counting.writes == 1
        assert await received(client, 6) == [
            *((WSMsgType.BINARY, f) for f in batch),
            (WSMsgType.TEXT, "notify é"),
        ]


async def test_added_batches_go_out_in_one_write_in_order() -> None:
    async with server_socket() as (server, client):
        sender = BatchSender(server, FRAME)
        writer = server._writer
        assert writer is not None
        counting = CountingTransport(writer.transport)
        writer.transport = counting  # type: ignore[assignment]
        first, second = frames(5), frames(2)
        sender.add(first, "mark 100")
        sender.add(second, None)
        sender.add([], "mark 140")
        assert counting.writes == 0
        sender.flush()
        sender.flush()  # nothing queued: nothing written
        assert counting.writes == 1
        assert await received(client, 9) == [
            *((WSMsgType.BINARY, f) for f in first),
            (WSMsgType.TEXT, "mark 100"),
            *((WSMsgType.BINARY, f) for f in second),
            (WSMsgType.TEXT, "mark 140"),
        ]


@pytest.mark.parametrize("size", [0, 1, 125, 126, 639, 65535, 65536, 70_000])
async def test_every_length_form_is_read_back(size: int) -> None:
    long_text = "x" * size
    async with server_socket() as (server, client):
        sender = BatchSender(server, FRAME)
        sender.write([b"\x07" * size, b"\x01" * FRAME], long_text)
        assert await received(client, 3) == [
            (WSMsgType.BINARY, b"\x07" * size),
            (WSMsgType.BINARY, b"\x01" * FRAME),
            (WSMsgType.TEXT, long_text),
        ]


async def test_texts_only_in_order() -> None:
    async with server_socket() as (server, client):
        sender = BatchSender(server, FRAME)
        sender.write([], '{"event":"media"}', '{"event":"mark"}')
        assert await received(client, 2) == [
            (WSMsgType.TEXT, '{"event":"media"}'),
            (WSMsgType.TEXT, '{"event":"mark"}'),
        ]


async def test_compressed_socket_is_not_batched() -> None:
    async with server_socket(compress=15) as (server, _client):
        assert server.compress  # permessage-deflate negotiated
        assert not BatchSender(server, FRAME).ready


async def test_slow_peer_is_not_batched() -> None:
    async with server_socket() as (server, _client):
        sender = BatchSender(server, FRAME)
        writer = server._writer
        assert writer is not None
        writer.protocol.pause_writing()  # what the transport does above its high-water mark
        try:
            assert not sender.ready
        finally:
            writer.protocol.resume_writing()
        assert sender.ready


async def test_closing_socket_refuses_like_aiohttp() -> None:
    async with server_socket() as (server, client):
        sender = BatchSender(server, FRAME)
        async with asyncio.timeout(TIMEOUT_S):  # the client reads the close and answers it
            await asyncio.gather(server.close(), client.receive())
        with pytest.raises(aiohttp.ClientConnectionResetError):
            sender.write(frames(1))


@pytest.mark.parametrize(
    ("first", "length", "expected"),
    [
        (0x82, 0, b"\x82\x00"),
        (0x81, 125, b"\x81\x7d"),
        (0x82, 126, b"\x82\x7e\x00\x7e"),
        (0x82, 640, b"\x82\x7e\x02\x80"),
        (0x81, 65535, b"\x81\x7e\xff\xff"),
        (0x82, 65536, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    ],
)
def test_frame_header(first: int, length: int, expected: bytes) -> None:
    assert frame_header(first, length) == expected


def test_frame_header_refuses_negative_length() -> None:
    make: Callable[[int, int], bytes] = frame_header
    with pytest.raises(ValueError, match="length"):
        make(0x82, -1)

"""The floor on picows: the naive relay's messages with pre-built contents, on another library.

``bench/naive_relay.py --floor`` measures what aiohttp's WebSocket layer, the event loop and
the kernel cost for the messages a relay exchanges. This is the same floor with the WebSocket
layer swapped for picows (https://github.com/tarasko/picows, Cython: each frame is handed to a
synchronous callback, no future or task switch per message, masking in C): the media sockets
on a picows server of their own (``--media-port``; picows cannot share aiohttp's listener, so
the NCCO and the TwiML point there), the Realtime socket a picows client, the answer URLs on
aiohttp as before. Same pre-built appends (silence, or a loud square wave for a caller frame
that is not silent), same delta counting, same pacing task per call with one timer and one
write per frame, same tail padding. What it says: how far a faster WebSocket library would
move the floor. It is a measuring stick, like the naive relay, not a design.

Needs picows (``pip install picows``; not a dependency of the project). Run by
``bench/load.py --floor-picows``; alone:
``python bench/picows_floor.py --port 8081 --openai-base-url http://127.0.0.1:9000/v1``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections import deque
from typing import Any
from urllib.parse import urlencode

try:
    import picows
    from picows import WSListener, WSMsgType, WSTransport
except ImportError:  # a one-line reason, not a traceback
    sys.exit("bench/picows_floor.py needs picows: .venv/bin/pip install picows")
import uvloop
from aiohttp import web
from naive_relay import (  # this directory (bench/) is the script's sys.path[0]
    FRAME_S,
    PCM_24K,
    PCMU,
    TWILIO_FRAME_BYTES,
    Config,
    FloorReplies,
    floor_contents,
    make_app,
    realtime_url,
    session_update,
)


class _Call(FloorReplies, WSListener):  # type: ignore[misc]
    """One media socket (Vonage or Twilio) and its Realtime socket, all in callbacks."""

    def __init__(self, config: Config, vonage: bool) -> None:
        super().__init__()
        self.config = config
        self.vonage = vonage
        rate = config.vonage_rate_hz
        contents = floor_contents(vonage, rate * 2 // 50 if vonage else TWILIO_FRAME_BYTES)
        self.silent = contents.frame
        self.rt_frame_bytes = contents.rt_frame_bytes
        self.appends = (contents.quiet_append.encode(), contents.loud_append.encode())
        self.quiet_payload = contents.quiet_payload
        self.media = b""  # Twilio: one pre-built media message, once the stream SID is known
        self.clear = b'{"action": "clear"}'  # Vonage's; Twilio's once the SID is known
        self.caller: WSTransport | None = None
        self.rt: WSTransport | None = None
        self.frames: deque[bytes] = deque()
        self.pending_rt = 0
        self.cut = False
        self.wake = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.early = 0  # caller frames read before the Realtime socket was open

    # -- the caller's socket
    def on_ws_connected(self, transport: WSTransport) -> None:
        self.caller = transport

    def on_ws_frame(self, transport: WSTransport, frame: Any) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.BINARY and self.vonage:
            rt = self.rt
            if rt is not None:
                same = frame.get_payload_as_memoryview() == self.silent
                rt.send(WSMsgType.TEXT, self.appends[0 if same else 1])
            else:
                self.early += 1  # sent once the Realtime socket is open (the naive relay's
                # frames wait in the kernel meanwhile)
        elif kind is WSMsgType.TEXT:
            data = frame.get_payload_as_ascii_text()
            if self.vonage:  # websocket:connected (the fake's calls are told apart by number)
                if self.rt is None and not self.tasks:
                    connected = json.loads(data)
                    self.start(str(connected.get("from", "")), str(connected.get("to", "")))
                return
            if '"media"' in data[:40]:  # Twilio sends "event" first
                rt = self.rt
                if rt is not None:
                    same = self.quiet_payload in data
                    rt.send(WSMsgType.TEXT, self.appends[0 if same else 1])
                else:
                    self.early += 1
            elif '"start"' in data:
                start = json.loads(data)["start"]
                sid = start["streamSid"]
                media = {"event": "media", "streamSid": sid, "media": {"payload": "P"}}
                self.media = json.dumps(media).replace('"P"', f'"{self.quiet_payload}"').encode()
                self.clear = json.dumps({"event": "clear", "streamSid": sid}).encode()
                params = start.get("customParameters", {})
                self.start(params.get("from", ""), params.get("to", ""))
            elif '"stop"' in data:
                transport.send_close(picows.WSCloseCode.OK)
                transport.disconnect()
        elif kind is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        for task in self.tasks:
            task.cancel()
        if self.rt is not None:
            self.rt.disconnect()

    def start(self, caller: str, called: str) -> None:
        self.tasks.append(asyncio.create_task(self.open_realtime(caller, called)))

    async def open_realtime(self, caller: str, called: str) -> None:
        config = self.config
        url = f"{config.realtime_url}?{urlencode({'model': config.model})}"
        headers = {"Authorization": f"Bearer {config.api_key}"}
        rt, _ = await picows.ws_connect(lambda: _Realtime(self), url, extra_headers=headers)
        fmt = PCM_24K if self.vonage else PCMU
        rt.send(WSMsgType.TEXT, session_update(config, caller, called, fmt).encode())
        for _ in range(self.early):
            rt.send(WSMsgType.TEXT, self.appends[0])
        self.rt = rt
        self.tasks.append(asyncio.create_task(self.pace()))

    def barge_in(self) -> None:
        if self.drop_replies() and self.caller is not None:
            self.caller.send(WSMsgType.TEXT, self.clear)

    async def pace(self) -> None:
        """As ``naive_relay.pace``: absolute 20 ms deadlines, a lead of 2 frames."""
        loop = asyncio.get_running_loop()
        lead_s = self.config.lead_frames * FRAME_S
        deadline = 0.0
        caller = self.caller
        assert caller is not None
        kind = WSMsgType.BINARY if self.vonage else WSMsgType.TEXT
        while True:
            if not self.frames:
                self.wake.clear()
                await self.wake.wait()
                deadline = max(deadline, loop.time() - lead_s)
                continue
            frame = self.frames.popleft()
            caller.send(kind, frame if self.vonage else self.media)
            deadline += FRAME_S
            await asyncio.sleep(deadline - loop.time())


class _Realtime(WSListener):  # type: ignore[misc]
    """The Realtime socket of one call: events recognised by a substring of their head."""

    def __init__(self, call: _Call) -> None:
        super().__init__()
        self.call = call

    def on_ws_frame(self, transport: WSTransport, frame: Any) -> None:
        if frame.msg_type is not WSMsgType.TEXT:
            if frame.msg_type is WSMsgType.CLOSE:
                transport.disconnect()
            return
        if self.call.realtime_text(frame.get_payload_as_ascii_text()):
            self.call.barge_in()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        caller = self.call.caller
        if caller is not None and not caller.is_disconnected:
            caller.send_close(picows.WSCloseCode.GOING_AWAY, b"Realtime closed")
            caller.disconnect()


async def serve(config: Config, host: str, port: int, media_port: int) -> None:
    """The answer URLs on ``host``:``port`` (aiohttp) and the media sockets on
    ``host``:``media_port`` (picows; 404 for another path) until cancelled."""

    def listener(request: Any) -> _Call | None:
        path = request.path.split(b"?")[0]
        if path == b"/vonage/ws":
            return _Call(config, vonage=True)
        if path == b"/twilio/media-stream":
            return _Call(config, vonage=False)
        return None

    media = await picows.ws_create_server(listener, host, media_port)
    # the naive relay's answer URLs, whose NCCO and TwiML point at config.public_ws
    runner = web.AppRunner(make_app(config))
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    try:
        await asyncio.Event().wait()
    finally:
        media.close()
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Parse the naive relay's arguments (plus ``--media-port``) and serve on uvloop; 0 on
    SIGINT."""
    parser = argparse.ArgumentParser(description="the floor on picows, for bench/load.py")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--media-port", type=int, default=0, help="default: --port + 1")
    parser.add_argument("--openai-base-url", default="https://api.openai.com/v1")
    parser.add_argument("--api-key", default="sk-sim")
    parser.add_argument("--model", default="gpt-realtime")
    parser.add_argument("--quality", default="LQ", help="ignored (no resampling)")
    parser.add_argument("--lead-frames", type=int, default=2)
    parser.add_argument("--vonage-rate", type=int, choices=(16_000, 24_000), default=16_000)
    args = parser.parse_args(argv)
    media_port = args.media_port or args.port + 1
    config = Config(
        public_ws=f"ws://{args.host}:{media_port}",  # the picows server
        realtime_url=realtime_url(args.openai_base_url),
        api_key=args.api_key,
        model=args.model,
        quality=args.quality,
        lead_frames=args.lead_frames,
        persona="You are a friendly voice assistant.",
        vonage_rate_hz=args.vonage_rate,
        floor=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve(config, args.host, args.port, media_port))
    return 0


if __name__ == "__main__":
    sys.exit(main())

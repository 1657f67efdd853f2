"""Fake OpenAI SIP connector for the tests: call-control endpoints, the sideband socket, and
a sender of correctly signed ``realtime.call.incoming`` webhooks. Entry ring (I/O).

- ``POST /v1/realtime/calls/{call_id}/{accept|reject|refer|hangup}`` are recorded in
  ``requests`` (and on a queue); ``accept_status`` makes accept answer e.g. 404 (the caller
  hung up) or 500. ``hangup`` and ``refer`` close that call's sideband socket, like the real call
  ending.
- ``GET /v1/realtime?call_id=...`` upgrades to a sideband socket (Bearer key checked): each
  client event is put on the session's ``received`` queue; the test sends server events
  with ``send``.

Source: https://platform.openai.com/docs/guides/realtime-sip (paths, bodies);
https://www.standardwebhooks.com/ (signatures).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web
from standardwebhooks import Webhook

from .server import LoopbackServer

JsonObject = dict[str, Any]
TEST_WEBHOOK_SECRET = "whsec_" + "c2ltdWxhdGlvbi13ZWJob29rLXNlY3JldC0xMjM0NTY3OA=="


@dataclass
class SipRequest:
    """One call-control request: ``action`` (accept, reject, refer, hangup), the call and
    its JSON body (None when empty)."""

    action: str
    call_id: str
    body: JsonObject | None
    authorization: str | None


@dataclass
class FakeSideband:
    """One sideband socket of the fake."""

    call_id: str
    ws: web.WebSocketResponse
    received: asyncio.Queue[JsonObject] = field(default_factory=asyncio.Queue)
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, event: JsonObject) -> None:
        await self.ws.send_str(json.dumps(event))

    async def next_event(self, timeout: float = 5.0) -> JsonObject:
        async with asyncio.timeout(timeout):
            return await self.received.get()

    async def close(self) -> None:
        await self.ws.close()


class FakeOpenAISip(LoopbackServer):
    """The fake, listening on 127.0.0.1; ``base_url`` is its ``OPENAI_BASE_URL``.

    Closing it closes every sideband socket, then stops listening.

    Attributes:
        api_key: the accepted ``Authorization: Bearer`` key.
        accept_status: the status ``accept`` answers (200, or e.g. 404 or 500 to fail it).
        requests: every call-control request, in order.
        request_queue: the same requests, for ``next_request``.
        sidebands: the open sideband sockets by ``call_id``.
    """

    shutdown_timeout_s = 2.0

    def __init__(self, *, api_key: str = "sk-sim") -> None:
        self._init_server()
        self.api_key = api_key
        self.accept_status = 200
        self.requests: list[SipRequest] = []
        self.request_queue: asyncio.Queue[SipRequest] = asyncio.Queue()
        self.sidebands: dict[str, FakeSideband] = {}
        self._new_sidebands: asyncio.Queue[FakeSideband] = asyncio.Queue()
        self.app.router.add_post("/v1/realtime/calls/{call_id}/{action}", self._control)
        self.app.router.add_get("/v1/realtime", self._sideband)

    async def _before_cleanup(self) -> None:
        for sideband in list(self.sidebands.values()):
            await sideband.close()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, once started.

        Raises:
            RuntimeError: the server has not been started.
        """
        return f"{self.origin}/v1"

    async def next_request(self, timeout: float = 5.0) -> SipRequest:
        async with asyncio.timeout(timeout):
            return await self.request_queue.get()

    async def wait_for_sideband(self, timeout: float = 5.0) -> FakeSideband:
        async with asyncio.timeout(timeout):
            return await self._new_sidebands.get()

    async def _control(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        call_id = request.match_info["call_id"]
        raw = await request.read()
        body = json.loads(raw) if raw.strip() else None
        rec = SipRequest(action, call_id, body, request.headers.get("Authorization"))
        self.requests.append(rec)
        self.request_queue.put_nowait(rec)
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": {"message": "bad key"}}, status=401)
        if action not in ("accept", "reject", "refer", "hangup"):
            return web.json_response({"error": {"message": "unknown action"}}, status=404)
        if action == "accept" and self.accept_status != 200:
            message = "call not found" if self.accept_status == 404 else "simulated failure"
            return web.json_response({"error": {"message": message}}, status=self.accept_status)
        if action in ("hangup", "refer") and call_id in self.sidebands:
            await self.sidebands[call_id].close()
        return web.Response(status=200)

    async def _sideband(self, request: web.Request) -> web.StreamResponse:
        call_id = request.query.get("call_id", "")
        if request.headers.get("Authorization") != f"Bearer {self.api_key}" or not call_id:
            return web.json_response({"error": {"message": "refused"}}, status=401)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sideband = FakeSideband(call_id, ws)
        self.sidebands[call_id] = sideband
        self._new_sidebands.put_nowait(sideband)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    sideband.received.put_nowait(json.loads(msg.data))
        finally:
            sideband.closed.set()
            self.sidebands.pop(call_id, None)
        return ws


def incoming_call_body(
    call_id: str,
    *,
    from_uri: str = "<sip:+818012345678@pstn.example.com>;tag=1",
    to_uri: str = "<sip:+815031023332@sip.api.openai.com>",
) -> bytes:
    """A ``realtime.call.incoming`` webhook body (OpenAI realtime SIP guide, as above)."""
    event = {
        "object": "event",
        "id": f"evt_{uuid.uuid4().hex[:12]}",
        "type": "realtime.call.incoming",
        "created_at": int(datetime.now(UTC).timestamp()),
        "data": {
            "call_id": call_id,
            "sip_headers": [{"name": "From", "value": from_uri}, {"name": "To", "value": to_uri}],
        },
    }
    return json.dumps(event).encode()


def signed_headers(
    secret: str, body: bytes, *, msg_id: str | None = None, at: datetime | None = None
) -> dict[str, str]:
    """Standard Webhooks headers for ``body`` signed with ``secret`` at ``at`` (now)."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, at, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": "OpenAI/1.0",
    }


async def send_webhook(
    http: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, JsonObject]:
    """POST a webhook; its status and JSON answer."""
    async with http.post(url, data=body, headers=headers) as resp:
        return resp.status, await resp.json()

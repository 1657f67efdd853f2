"""``/console/phone/ws``: the browser phone, a fourth front door (``browser``) on the call
engine. Entry: the console's session guards it; the call runs like a Vonage media socket.

The page (``static/phone.js``) opens the socket after ``getUserMedia`` and sends 20 ms
frames of L16 at 16 kHz; replies come back the same way, with ``clear`` on barge-in and
playback markers the page echoes once played (``browser.wire``). The call is live like any
other (``/console/live``, shutdown, hang-up by closing the socket), has a transcript and
writes a record with ``front_door = "browser"``; there is no carrier, so no REST hang-up.

Refused before the upgrade: 401 without a console session, 403 when the ``Origin`` header
names another site (cross-site WebSocket hijacking; the ``SameSite=Strict`` cookie already
stops most of it).

Sources: RFC 6455 section 10.2 (Origin), https://developer.mozilla.org/en-US/docs/Web/API/MediaDevices/getUserMedia
"""

from __future__ import annotations

import logging
import secrets
from urllib.parse import urlsplit

from aiohttp import web

from ..audio.path import ResamplingPath
from ..browser.wire import BROWSER_COMMANDS, SAMPLE_RATE_HZ, parse_text
from ..core.call_data import CallInfo
from ..core.frontdoor import FrontDoor
from ..logs import call_context
from ..media_call import MediaCall, serve_media_call
from ..store import FRONT_DOOR_BROWSER
from ..tools import ToolContext
from ..web.keys import SETTINGS, call_deps
from .auth import require_api

log = logging.getLogger(__name__)

PHONE_WS_PATH = "/console/phone/ws"
MAX_MESSAGE_BYTES = 64 * 1024
CALLED = "assistant"
"""The record's ``to`` for a browser call (there is no number)."""


def browser_door(resample_quality: str) -> FrontDoor:
    """The browser phone's door: L16 16 kHz binary frames resampled to and from 24 kHz PCM16;
    ``clear`` and ``mark`` as JSON text (``browser.wire``)."""
    return FrontDoor(
        FRONT_DOOR_BROWSER,
        ResamplingPath(SAMPLE_RATE_HZ, resample_quality),
        BROWSER_COMMANDS,
        parse_text,
    )


def same_origin(request: web.Request) -> bool:
    """No ``Origin`` header (not a browser), or one naming this host."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.host


async def phone_socket(request: web.Request) -> web.StreamResponse:
    """One browser-phone call, from the upgrade to its record."""
    session = await require_api(request)
    if not same_origin(request):
        raise web.HTTPForbidden(text="cross-site WebSocket refused")
    ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, heartbeat=30.0)
    if not ws.can_prepare(request).ok:
        raise web.HTTPBadRequest(text="expected a WebSocket upgrade")
    call_id = f"browser-{secrets.token_hex(8)}"
    settings = request.app[SETTINGS]
    caller = f"console:{session.operator}"[:64]
    with call_context(call_id):
        await ws.prepare(request)
        log.info("browser phone call by operator %r", session.operator)

        async def opening() -> MediaCall:
            """The browser call as the engine takes it: L16 16 kHz, inbound, no carrier control."""
            info = CallInfo(call_id, None, caller=caller, called=CALLED)
            ctx = ToolContext(call_id, caller, front_door=FRONT_DOOR_BROWSER, called=CALLED)
            return MediaCall(browser_door(settings.call.resample_quality), info, "inbound", ctx)

        await serve_media_call(ws, call_id, opening, deps=call_deps(request.app))
    return ws

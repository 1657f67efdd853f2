"""Every typed ``web.AppKey`` of the application, in one place."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from ..calls import CallHangUp, VoiceApi
from ..config import Settings
from ..media_token import MediaTokenSigner


@dataclass(slots=True)
class LiveCall:
    """A call with an open media socket: hung up over REST (when Vonage credentials are set)
    and closed with 1001 on shutdown."""

    call_uuid: str
    ws: web.WebSocketResponse
    task: asyncio.Task[object]
    hang_up: CallHangUp | None = None


SETTINGS = web.AppKey("settings", Settings)
HTTP = web.AppKey("http", aiohttp.ClientSession)
SIGNER = web.AppKey("media_token_signer", MediaTokenSigner)
CALLS = web.AppKey("calls", dict[str, LiveCall])
VOICE_API = web.AppKey("voice_api", VoiceApi)
"""Present only when Vonage REST credentials are configured (``Settings.vonage``)."""

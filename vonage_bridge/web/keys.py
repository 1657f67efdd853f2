"""Every typed ``web.AppKey`` of the application, in one place; :func:`call_deps` reads the
ones every call needs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from standardwebhooks import Webhook

from ..assistants.book import Assistants
from ..bus import Bus, transcript_publisher
from ..calls import CallDeps, LiveCall
from ..cluster import Cluster, LiveRegistry
from ..config import Settings
from ..core.events import TranscriptEntry
from ..core.media_token import MediaTokenSigner
from ..core.replay import SeenIds
from ..hub import CallHub
from ..realtime.prewarm import WarmSessions
from ..store import CallStore
from ..tools import ToolRegistry
from ..twilio.rest import TwilioApi
from ..vonage.voice_api import VoiceApi
from .guards import WebhookGuards

SETTINGS = web.AppKey("settings", Settings)
HTTP = web.AppKey("http", aiohttp.ClientSession)
SIGNER = web.AppKey("media_token_signer", MediaTokenSigner)
CALLS = web.AppKey("calls", dict[str, LiveCall])
VOICE_API = web.AppKey("voice_api", VoiceApi)
"""Present only when Vonage REST credentials are configured (``Settings.vonage``)."""
TWILIO_API = web.AppKey("twilio_api", TwilioApi)
"""Present only when the Twilio front door has an auth token (``Settings.twilio.verify``)."""
STORE = web.AppKey("store", CallStore)
"""The call-record store; absent when PostgreSQL was unreachable at start-up (``GET /calls``
then answers 503 and calls are not recorded)."""
TOOLS = web.AppKey("tools", ToolRegistry)
"""The tools the model may call (built-ins plus ``TOOLS_MODULE``), built at start-up."""
GUARDS = web.AppKey("webhook_guards", WebhookGuards)
"""Replay memory of the signed webhooks and the unsigned-call limit, per instance."""
WARM_SESSIONS = web.AppKey("warm_sessions", WarmSessions)
"""Realtime sessions opened by the answer URLs, waiting for their media sockets."""
ASSISTANTS = web.AppKey("assistants", Assistants)
"""Which assistant answers a call (the default, and the stored ones once the database is
open)."""
HUB = web.AppKey("call_hub", CallHub)
"""Live calls publish here; the operator console's live page subscribes."""

CLUSTER = web.AppKey("cluster", Cluster)
"""Once-only claims shared by the instances (``cluster``); absent without a store."""
REGISTRY = web.AppKey("live_registry", LiveRegistry)
"""The live calls of every instance (``cluster``); absent without a store."""
BUS = web.AppKey("bus", Bus)
"""LISTEN/NOTIFY between instances (``bus``); absent without a store."""


@dataclass(slots=True)
class SipState:
    """The OpenAI SIP front door (``openai_sip/routes.py``), present with ``OPENAI_WEBHOOK_SECRET``.

    Attributes:
        verifier: the Standard Webhooks verifier of ``OPENAI_WEBHOOK_SECRET``.
        seen: recent ``webhook-id`` values (OpenAI retries deliveries).
        calls: call id -> the task accepting and steering that call (counts for
            ``SIP_MAX_CALLS``).
        tasks: every background task (accepts, rejects, calls), cancelled on shutdown.
        polite: call id -> ``end_politely(reason)`` of that live call (the drain's goodbye,
            ``openai_sip.sideband.SipEnding``).
    """

    verifier: Webhook
    seen: SeenIds
    calls: dict[str, asyncio.Task[None]]
    tasks: set[asyncio.Task[None]]
    polite: dict[str, Callable[[str], None]] = field(default_factory=dict)


SIP = web.AppKey("sip", SipState)


def call_deps(app: web.Application) -> CallDeps:
    """What the call engine needs from ``app`` (the store only when records are on)."""
    return CallDeps(
        settings=app[SETTINGS],
        http=app[HTTP],
        tools=app[TOOLS],
        store=app.get(STORE),
        calls=app[CALLS],
        assistants=app[ASSISTANTS],
        hub=app.get(HUB),
        registry=app.get(REGISTRY),
        on_transcript=_transcripts(app),
    )


def _transcripts(app: web.Application) -> Callable[[str, TranscriptEntry], None] | None:
    bus, registry = app.get(BUS), app.get(REGISTRY)
    if bus is None or registry is None:
        return None
    return transcript_publisher(bus, registry.instance_id)

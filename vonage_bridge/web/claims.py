"""The media sockets' once-only checks across instances (``cluster.Cluster.claim_once``), for
the front-door routes: each instance's own memory (``core.media_token``, the Twilio streams
started) answers first, then the shared table, so a token spent or a stream started on one
instance is refused on every other. Without a store there is no shared table: the instance's
own memory decides alone, as with one instance.
"""

from __future__ import annotations

import time

from aiohttp import web

from ..cluster import MEDIA_TOKEN, TWILIO_STREAM
from ..errors import Forbidden
from .keys import CLUSTER


async def spend_shared(app: web.Application, call_uuid: str, exp: str, token: str) -> None:
    """Spend a media token (already checked and spent on this instance) on every instance,
    until it expires (``exp``: Unix seconds, as minted).

    Raises:
        Forbidden: ``media_token_used``: another instance spent it first.
    """
    cluster = app.get(CLUSTER)
    if cluster is None:
        return
    ttl_s = max(float(exp) - time.time(), 1.0)
    if not await cluster.claim_once(MEDIA_TOKEN, f"{call_uuid}.{token}", ttl_s):
        raise Forbidden("media token already used", code="media_token_used")


async def first_stream(app: web.Application, call_sid: str, ttl_s: float) -> bool:
    """Whether no instance started a Twilio stream for ``call_sid`` in the last ``ttl_s``
    seconds (it is claimed for this one now)."""
    cluster = app.get(CLUSTER)
    return cluster is None or await cluster.claim_once(TWILIO_STREAM, call_sid, ttl_s)

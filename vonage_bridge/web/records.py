"""Writing a finished call's record, shared by the media-socket front doors (Vonage, Twilio).

Source: style.md 7.4 step 4 (the record is written after both sockets closed, off the audio
path).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from aiohttp import web

from ..bridge import CallSummary
from ..core.session import CallSession
from ..store import CallRecord, transcript_entries
from .keys import STORE

log = logging.getLogger(__name__)

RECORD_WRITE_TIMEOUT_S = 5.0
"""Bound on writing a call record (a slow database must not hold a handler for long)."""


async def write_call_record(
    app: web.Application,
    session: CallSession,
    summary: CallSummary | None,
    *,
    direction: str,
    started_at: datetime,
    front_door: str,
) -> None:
    """Write the call's record; a failure is logged, never raised.

    Args:
        app: the application (its ``STORE``; nothing is written when there is none).
        session: the call's session (identity; transcript when ``summary`` is None).
        summary: what ``run_call`` returned, or None when it raised (e.g. the handler was
            cancelled): the record then takes the session's transcript so far.
        direction: ``inbound`` or ``outbound``.
        started_at: when the media socket opened (aware UTC).
        front_door: ``store.FRONT_DOOR_VONAGE`` or ``store.FRONT_DOOR_TWILIO``.
    """
    store = app.get(STORE)
    if store is None:
        return
    info = session.info
    ended_at = datetime.now(UTC)
    record = CallRecord(
        call_uuid=info.call_uuid,
        conversation_uuid=info.conversation_uuid,
        direction=direction,
        front_door=front_door,
        from_number=info.caller,
        to_number=info.called,
        started_at=started_at,
        ended_at=ended_at,
        duration_s=(
            summary.duration_s
            if summary is not None
            else round((ended_at - started_at).total_seconds(), 3)
        ),
        end_reason=summary.end_reason if summary is not None else "call handler stopped",
        transcript=transcript_entries(
            summary.transcript if summary is not None else session.stats.transcript
        ),
    )
    try:
        async with asyncio.timeout(RECORD_WRITE_TIMEOUT_S):
            await store.add(record)
    except Exception:
        log.exception("call record of %s not written", info.call_uuid)

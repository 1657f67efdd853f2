"""``GET /calls/{call_uuid}/recording``, the retention sweep and the start-up lines of
recording and cost.

- ``GET /calls/{call_uuid}/recording``: guarded like ``GET /calls`` (``X-API-Key`` equal to
  ``CONNECT_API_KEY``), or a live operator console session (its cookie, ``console.auth``;
  the console's ``<audio>`` player fetches the file with it). 200 ``audio/wav`` (the call's
  stereo WAV: left caller, right assistant), with HTTP range requests
  (``Range: bytes=...`` -> 206, ``Accept-Ranges``); 404 ``recording_not_found`` when the
  call has no finished recording (never recorded, still running, deleted by retention).
  Without an ``X-API-Key`` header and with a live console session the key is not asked for
  (``CONNECT_API_KEY`` may be unset); otherwise 401/403/503 as ``GET /calls``.
- :func:`recording_retention` (a ``cleanup_ctx``): deletes recordings older than
  ``RECORDING_RETENTION_DAYS`` at start-up and every day after, in a worker thread.
- :func:`recording_report`: the start-up lines (recording on or off, where; the price table,
  and a WARNING for a configured model without a price: its calls get ``cost_usd`` null).

Sources: HTTP range requests (RFC 9110, section 14; served by aiohttp's ``FileResponse``,
https://docs.aiohttp.org/en/stable/web_reference.html#fileresponse).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from aiohttp import web

from ..config import Settings
from ..console.auth import SESSION_COOKIE, current_session
from ..prices import unpriced_models
from ..recording.retention import DAY_S, delete_old_recordings
from ..recording.wav import SUFFIX, file_stem
from .auth import require_api_key
from .keys import SETTINGS

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


@routes.get("/calls/{call_uuid}/recording")
async def get_recording(request: web.Request) -> web.StreamResponse:
    """The call's recording as ``audio/wav`` (ranges supported), or 404."""
    if not await _console_session(request):
        require_api_key(request, feature="GET /calls", disabled_code="calls_api_disabled")
    settings = request.app[SETTINGS].recording
    call_uuid = request.match_info["call_uuid"][:128]
    path = settings.recordings_dir / (file_stem(call_uuid) + SUFFIX)
    if not path.is_file():
        return web.json_response(
            {"error": {"code": "recording_not_found", "message": "no recording of this call"}},
            status=404,
        )
    return web.FileResponse(path, headers={"Content-Type": "audio/wav"})


async def _console_session(request: web.Request) -> bool:
    """Whether the request, without an ``X-API-Key`` header, carries a live console
    session (no operator database counts as no session: the key is then asked for)."""
    if "X-API-Key" in request.headers or SESSION_COOKIE not in request.cookies:
        return False
    try:
        return await current_session(request) is not None
    except web.HTTPServiceUnavailable:  # no operator database
        return False


async def _sweep(settings: Settings) -> None:
    rec = settings.recording
    deleted = await asyncio.to_thread(
        delete_old_recordings, rec.recordings_dir, rec.retention_days, time.time()
    )
    if deleted:
        log.info(
            "deleted %d recording(s) older than %d days (RECORDING_RETENTION_DAYS)",
            len(deleted),
            rec.retention_days,
        )


async def _sweep_daily(settings: Settings) -> None:
    while True:
        await asyncio.sleep(DAY_S)
        try:
            await _sweep(settings)
        except Exception:  # a failed sweep is retried the next day
            log.exception("recording retention sweep failed")


async def recording_retention(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: delete old recordings at start-up, then daily until the app stops
    (``RECORDING_RETENTION_DAYS=0``: never)."""
    settings = app[SETTINGS]
    if settings.recording.retention_days <= 0:
        yield
        return
    await _sweep(settings)
    task = asyncio.create_task(_sweep_daily(settings), name="recording-retention")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def recording_report(settings: Settings) -> None:
    """Log the start-up lines of recording and cost."""
    rec = settings.recording
    if rec.record_calls:
        log.info(
            "recording every call (RECORD_CALLS) to %s, kept %s",
            rec.recordings_dir.resolve(),
            f"{rec.retention_days} days" if rec.retention_days else "forever",
        )
    else:
        log.info("call recording off (RECORD_CALLS not set; an assistant may still ask for it)")
    prices = settings.cost.prices
    openai = settings.openai
    log.info("call cost from prices: %s", prices.source)
    for model in unpriced_models(prices, openai.model, openai.transcription_model):
        log.warning(
            "no price for model %s (PRICES_FILE): calls record their usage but cost_usd null",
            model,
        )

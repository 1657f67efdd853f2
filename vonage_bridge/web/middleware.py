"""Errors become JSON ``{"error": {"code", "message"}}`` responses; no traceback leaks.

Source: style.md 7.5 and 7.7.
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from ..errors import BridgeError

log = logging.getLogger(__name__)


def error_response(status: int, code: str, message: str) -> web.Response:
    """A JSON error body with ``status``."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn :class:`BridgeError` and aiohttp's HTTP errors into JSON; log anything else."""
    try:
        return await handler(request)
    except BridgeError as exc:
        if exc.http_status >= 500:
            log.error("%s %s: %s", request.method, request.path, exc.message)
        else:
            log.warning("%s %s -> %d %s", request.method, request.path, exc.http_status, exc.code)
        return error_response(exc.http_status, exc.code, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        resp = error_response(exc.status, code, exc.reason)
        for name in ("Allow",):
            if name in exc.headers:
                resp.headers[name] = exc.headers[name]
        return resp
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error (see server log)")

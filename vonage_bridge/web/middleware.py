"""Errors become JSON ``{"error": {"code", "message"}}`` responses; no traceback leaks.

What the caller gets, and what is logged (one line per request, with the call id when the
handler set one):

- a :class:`~vonage_bridge.errors.BridgeError`: its ``http_status`` and ``code``. A 4xx is
  the client's mistake: INFO, no traceback. A 5xx: ERROR, its message only;
- a body that cannot be read (``Content-Encoding`` it does not decode to, broken chunked
  framing: aiohttp's ``RequestPayloadError``): 400 ``unreadable_body``, INFO;
- aiohttp's own HTTP errors (``web.HTTPException``: 404, 405, 413...): their status and
  headers untouched, the body as JSON (INFO for a 4xx); a redirect or other non-error is
  re-raised as it is;
- anything else is our bug: 500 ``internal_error`` saying nothing about it, and the traceback
  in the log only (ERROR).

Every 4xx answered on a front door's webhook or media route is also counted in
``vonage_bridge_webhooks_rejected_total`` (:func:`count_rejection`; the routes that answer a
refusal without raising count theirs with it too).

Sources: aiohttp middlewares and exceptions
(https://docs.aiohttp.org/en/stable/web_advanced.html#middlewares,
https://docs.aiohttp.org/en/stable/web_exceptions.html); RFC 9110 section 15.5.1 (400).
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler

from ..errors import BridgeError
from ..logs import call_context, client_error_reason
from ..metrics import METRICS, REJECT_INPUT, reject_reason

log = logging.getLogger(__name__)

CALL_ID = web.RequestKey("call_id", str)
"""Request key: the call id a handler found in the request (``claim_call``), for the log line."""


def claim_call(request: web.Request, call_id: str | None) -> None:
    """Name the call a request is about (at most 64 characters), so that the one line the
    middleware logs for its refusal carries it; the handler then logs nothing itself."""
    request[CALL_ID] = (call_id or "-")[:64]


_NOT_COPIED = frozenset({"content-type", "content-length", "content-encoding"})
"""Headers of an ``HTTPException`` that describe its own body, which the JSON one replaces."""


def count_refusal(request: web.Request, reason: str) -> None:
    """Count ``request``'s refusal in ``vonage_bridge_webhooks_rejected_total``, labelled by
    its route's path (only the front doors' routes count) and ``reason`` (one of
    ``metrics.REJECT_REASONS``)."""
    route = request.match_info.route.resource
    METRICS.webhook_rejected(route.canonical if route is not None else None, reason)


def count_rejection(request: web.Request, exc: BridgeError) -> None:
    """:func:`count_refusal` for a refusal with ``exc`` (a 4xx), its reason from its code
    (``metrics.reject_reason``)."""
    count_refusal(request, reject_reason(exc))


def error_response(status: int, code: str, message: str) -> web.Response:
    """A JSON error body with ``status``."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn :class:`BridgeError`, unreadable bodies and aiohttp's HTTP errors into JSON;
    anything else into a bare 500 (traceback logged, never sent)."""
    try:
        return await handler(request)
    except BridgeError as exc:
        status = exc.http_status
        level = logging.ERROR if status >= 500 else logging.INFO
        if status < 500:
            count_rejection(request, exc)
        with call_context(request.get(CALL_ID, "-")):
            log.log(
                level,
                "%s %s -> %d %s: %s",
                request.method,
                request.path,
                status,
                exc.code,
                exc.message,
            )
        return error_response(status, exc.code, exc.message)
    except web.RequestPayloadError as exc:
        reason = client_error_reason(exc)
        count_refusal(request, REJECT_INPUT)
        log.info("%s %s -> 400 unreadable_body: %s", request.method, request.path, reason)
        return error_response(400, "unreadable_body", f"request body could not be read: {reason}")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        if exc.status < 500:
            count_refusal(request, REJECT_INPUT)
            log.info("%s %s -> %d %s", request.method, request.path, exc.status, code)
        else:
            log.error("%s %s -> %d %s", request.method, request.path, exc.status, code)
        resp = error_response(exc.status, code, exc.reason)
        for name, value in exc.headers.items():
            if name.lower() not in _NOT_COPIED:
                resp.headers.add(name, value)
        return resp
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error (see server log)")

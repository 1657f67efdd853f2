"""The console's one Jinja2 environment (templates in ``templates/``, autoescaped) and the
headers every console page gets. Source: https://jinja.palletsprojects.com/en/stable/api/"""

from __future__ import annotations

from typing import Any

import jinja2
from aiohttp import web

from .accounts import ConsoleSession

PREFIX = "/console"
SESSION = web.RequestKey("console_session", ConsoleSession)
"""The request's console session, once checked (``auth.current_session``)."""
ROLE_LABELS = {
    "caller": "Caller",
    "assistant": "Assistant",
    "dtmf": "Key press",
    "tool_call": "Tool call",
    "tool_result": "Tool result",
    "barge_in": "Barge-in",
}
"""Transcript roles (``core.events.TranscriptEntry.role``) as the pages name them."""
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; media-src 'self' blob:; frame-ancestors 'none'",
}
"""No cache keeps a page, no other site frames it, no inline script runs (CSP)."""

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("vonage_bridge.console", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)
_env.globals["ROLE_LABELS"] = ROLE_LABELS
_env.globals["PREFIX"] = PREFIX


def render(request: web.Request, template: str, *, status: int = 200, **ctx: Any) -> web.Response:
    """``template`` rendered with ``ctx`` plus ``session`` (or None) and ``path``, as HTML.

    Raises:
        jinja2.TemplateError: a template bug (a 500 through the error middleware).
    """
    html = _env.get_template(template).render(
        session=request.get(SESSION), path=request.path, **ctx
    )
    return web.Response(text=html, status=status, content_type="text/html", headers=PAGE_HEADERS)

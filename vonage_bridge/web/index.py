"""``GET /``: a small index for a person who opens the server's URL in a browser, and
``GET /README.md``, the README it links to.

JSON by default: ``{"service": "vonage-bridge", "version", "links": {"health": "/health",
"readme": {section title: "/README.md#anchor", ...}}}``; a minimal HTML page instead when the
request's ``Accept`` prefers ``text/html`` (a browser). Nothing secret and no call data: the
same facts as ``/health`` without the call count. The README is the repository's file when
the package runs from a checkout, else the copy in the installed package's metadata (its
long description); 404 when neither is there.
Source: content negotiation, RFC 9110 section 12.5.1 (https://www.rfc-editor.org/rfc/rfc9110).
"""

from __future__ import annotations

import html
import importlib.metadata
from functools import cache
from pathlib import Path

from aiohttp import web

from .. import __version__

routes = web.RouteTableDef()

SERVICE = "vonage-bridge"
README_SECTIONS = (
    ("Quick start", "quick-start"),
    ("Try it (no accounts needed)", "try-it-no-accounts-needed"),
    ("Fakes you can run by hand", "fakes-you-can-run-by-hand"),
    ("Checking a set-up: vonage-bridge doctor", "checking-a-set-up-vonage-bridge-doctor"),
    ("Variables", "variables"),
    ("Security", "security"),
    ("Call records", "call-records"),
    ("Deploying to Fly.io", "deploying-to-flyio"),
    ("Coming from websocket-openai (Node)", "coming-from-websocket-openai-node"),
)
"""README sections the index links to: (title, GitHub-style anchor)."""


def index_document() -> dict[str, object]:
    """The JSON index (also the content of the HTML page)."""
    readme = {title: f"/README.md#{anchor}" for title, anchor in README_SECTIONS}
    return {
        "service": SERVICE,
        "version": __version__,
        "links": {"health": "/health", "readme": readme},
    }


def _wants_html(request: web.Request) -> bool:
    """Whether ``Accept`` names ``text/html`` before any JSON type (browsers do)."""
    accept = request.headers.get("Accept", "")
    html_at, json_at = accept.find("text/html"), accept.find("json")
    return html_at >= 0 and (json_at < 0 or html_at < json_at)


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    """The index, JSON or minimal HTML (see the module docstring)."""
    if not _wants_html(request):
        return web.json_response(index_document())
    items = "".join(
        f'<li><a href="/README.md#{html.escape(anchor)}">{html.escape(title)}</a></li>'
        for title, anchor in README_SECTIONS
    )
    page = (
        f"<!doctype html><title>{SERVICE}</title><h1>{SERVICE} {html.escape(__version__)}</h1>"
        f'<p>Health check: <a href="/health">/health</a></p><p>README:</p><ul>{items}</ul>'
    )
    return web.Response(text=page, content_type="text/html")


@cache
def readme_text() -> str | None:
    """The README (see the module docstring), or None."""
    checkout = Path(__file__).resolve().parents[2] / "README.md"
    if checkout.is_file():
        return checkout.read_text(encoding="utf-8")
    try:
        meta = importlib.metadata.metadata(SERVICE)
    except importlib.metadata.PackageNotFoundError:
        return None
    text = meta.json.get("description")  # the long description (Core metadata)
    return text if isinstance(text, str) and text.strip() else None


@routes.get("/README.md")
async def readme(_: web.Request) -> web.Response:
    """The README as Markdown text, or 404."""
    text = readme_text()
    if text is None:
        raise web.HTTPNotFound(text="the README is not installed with this package")
    return web.Response(text=text, content_type="text/markdown")

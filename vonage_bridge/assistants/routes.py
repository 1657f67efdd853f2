"""The assistants API: ``GET /assistants``, ``GET/PUT/DELETE /assistants/{name}``. Entry.

Guarded like ``POST /connect``: ``X-API-Key`` must equal ``CONNECT_API_KEY`` (401
``api_key_missing``, 403 ``api_key_invalid``, 503 ``assistants_api_disabled`` when it is
unset). Bodies and answers are the assistant's JSON (``core.assistant.Assistant``) with its
``version``:

- ``GET /assistants``: 200 ``{"assistants": [...]}``, by name; the built-in ``default``
  (version 0) is listed unless a stored one replaces it.
- ``GET /assistants/{name}``: 200, or 404 ``assistant_not_found``.
- ``PUT /assistants/{name}``: create (201) or replace (200; the version goes up by one when
  something changed). 400 ``invalid_json`` (not a JSON object), 400 ``invalid_assistant``
  naming each bad field in ``message`` and in ``fields`` (``[{"field", "message"}]``):
  unknown fields, bad values, a ``name`` other than the path's, a tool the service does not
  have; 409 ``number_taken`` when a number is bound to another assistant.
- ``DELETE /assistants/{name}``: 204, or 404. Deleting ``default`` removes the stored one
  (the built-in comes back).
- 503 ``assistants_unavailable``: the database could not be reached at start-up, or is down.

A change applies to the next call (each call reads the database). Source for the status
codes: RFC 9110 section 15.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from ..core.assistant import DEFAULT_NAME, NAME_PATTERN, Assistant, field_problems
from ..errors import Conflict, FeatureDisabled, NotFound
from ..web.auth import require_api_key
from ..web.body import read_json_object
from ..web.keys import ASSISTANTS, SETTINGS, TOOLS
from .book import Assistants
from .store import SqlAssistantStore

log = logging.getLogger(__name__)
routes = web.RouteTableDef()

MAX_BODY_BYTES = 1_000_000
FEATURE = "the assistants API"


def _book(request: web.Request) -> Assistants:
    require_api_key(request, feature=FEATURE, disabled_code="assistants_api_disabled")
    return request.app[ASSISTANTS]


def _store(book: Assistants) -> SqlAssistantStore:
    if book.store is None:
        raise FeatureDisabled(
            "assistants are unavailable: the database could not be reached at start-up",
            code="assistants_unavailable",
        )
    return book.store


def _name(request: web.Request) -> str:
    name = request.match_info["name"]
    if not re.fullmatch(NAME_PATTERN, name):
        raise NotFound(f"no assistant named {name[:64]!r}", code="assistant_not_found")
    return name


def known_tools(app: web.Application) -> set[str]:
    """The tool names an assistant may list: the service's tools, and ``transfer_call``
    when ``TRANSFER_NUMBER`` is set (OpenAI SIP refers without a REST API)."""
    names = set(app[TOOLS].names)
    if app[SETTINGS].call.transfer_number:
        names.add("transfer_call")
    return names


def validate(body: dict[str, Any], name: str, tools: set[str]) -> Assistant | list[tuple[str, str]]:
    """``body`` as the assistant ``name``, or the ``(field, problem)`` list that refuses it."""
    problems: list[tuple[str, str]] = []
    given = body.get("name", name)
    if given != name:
        problems.append(("name", f"must be {name!r}, the name in the path"))
    try:
        assistant = Assistant.model_validate({**body, "name": name, "version": 0})
    except ValidationError as exc:
        return problems + field_problems(exc)
    for i, tool in enumerate(assistant.tools or ()):
        if tool not in tools:
            known = ", ".join(sorted(tools)) or "none"
            problems.append((f"tools.{i}", f"unknown tool {tool!r} (this service has: {known})"))
    return problems or assistant


def _refusal(problems: list[tuple[str, str]]) -> web.Response:
    message = "; ".join(f"{f}: {p}" for f, p in problems)
    # the fields only: a problem may quote a phone number (never logged in full)
    log.info("assistant refused (400): bad %s", ", ".join(f for f, _ in problems)[:300])
    return web.json_response(
        {
            "error": {
                "code": "invalid_assistant",
                "message": message,
                "fields": [{"field": f, "message": p} for f, p in problems],
            }
        },
        status=400,
    )


async def _json_object(request: web.Request) -> dict[str, Any]:
    return await read_json_object(request, max_bytes=MAX_BODY_BYTES, shape="(an assistant)")


@routes.get("/assistants")
async def list_assistants(request: web.Request) -> web.Response:
    """Every assistant, by name (the built-in default unless a stored one replaces it)."""
    book = _book(request)
    stored = await _store(book).all()
    if not any(a.name == DEFAULT_NAME for a in stored):
        stored.append(book.default)
    stored.sort(key=lambda a: a.name)
    return web.json_response({"assistants": [a.public_json() for a in stored]})


@routes.get("/assistants/{name}")
async def get_assistant(request: web.Request) -> web.Response:
    """One assistant."""
    book = _book(request)
    name = _name(request)
    found = await _store(book).get(name)
    if found is None and name == DEFAULT_NAME:
        found = book.default
    if found is None:
        raise NotFound(f"no assistant named {name!r}", code="assistant_not_found")
    return web.json_response(found.public_json())


@routes.put("/assistants/{name}")
async def put_assistant(request: web.Request) -> web.Response:
    """Create or replace one assistant (201 / 200)."""
    book = _book(request)
    name = request.match_info["name"]
    store = _store(book)
    body = await _json_object(request)
    checked = validate(body, name, known_tools(request.app))
    if not isinstance(checked, Assistant):
        return _refusal(checked)
    try:
        stored, created = await store.put(checked)
    except Conflict as exc:  # answered here: the message names a number, kept out of the log
        log.info("PUT /assistants/%s -> 409 %s", name, exc.code)
        return web.json_response(
            {"error": {"code": exc.code, "message": exc.message}}, status=exc.http_status
        )
    log.info(
        "assistant %s %s (version %d, %d number(s))",
        name,
        "created" if created else "stored",
        stored.version,
        len(stored.numbers),
    )
    return web.json_response(stored.public_json(), status=201 if created else 200)


@routes.delete("/assistants/{name}")
async def delete_assistant(request: web.Request) -> web.Response:
    """Delete one assistant and its numbers (204)."""
    book = _book(request)
    name = _name(request)
    if not await _store(book).delete(name):
        raise NotFound(f"no assistant named {name!r}", code="assistant_not_found")
    log.info("assistant %s deleted", name)
    return web.Response(status=204)

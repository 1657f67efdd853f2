"""The console's Assistants pages: list, create, edit (numbers bound too), delete.

=========================================  ====================================================
``GET /console/assistants``                every assistant (the built-in ``default`` unless
                                           a stored one replaces it), by name
``GET /console/assistants/new``            the form of a new assistant
``GET /console/assistants/{name}``         the form of one assistant
``POST /console/assistants``               store the form (create, or replace ``name``);
                                           400 with the refused fields next to the form
``POST /console/assistants/{name}/delete`` delete a stored assistant, 303 to the list
=========================================  ====================================================

The form has a field for the name, one for the bound numbers (one E.164 number a line) and a
JSON text area for the rest of the assistant's shape (``core.assistant.Assistant``: the JSON
of ``PUT /assistants/{name}`` without ``name``, ``numbers`` and ``version``). It is checked
by the JSON API's own code (``assistants.routes.validate``, ``SqlAssistantStore.put``), so a
body is refused for the same reasons with the same messages (``field: problem``); a stored
change applies to the next call. Every POST needs the session's CSRF token (403 without).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from aiohttp import web

from ..assistants.book import Assistants
from ..assistants.routes import known_tools, validate
from ..core.assistant import DEFAULT_NAME, NAME_PATTERN, Assistant
from ..core.jsonbody import JsonTooDeep, loads_bounded
from ..errors import Conflict, StoreUnavailable
from ..web.keys import ASSISTANTS
from .auth import require_form, require_page
from .render import PREFIX, render

log = logging.getLogger(__name__)

NOT_IN_BODY = ("name", "numbers", "version")
"""Fields of the assistant's JSON that the form has apart (``version`` is read-only)."""
MAX_FORM_CHARS = 1_000_000
"""The JSON API's body limit, for the form's JSON text."""

NO_DATABASE = "the database could not be reached at start-up"
"""Why the pages are unavailable when the store never opened."""

Problems = list[tuple[str, str]]


def _book(request: web.Request) -> Assistants:
    return request.app[ASSISTANTS]


def _unavailable(request: web.Request, message: str) -> web.Response:
    return render(request, "assistants_unavailable.html", status=503, message=message)


def body_text(assistant: Assistant) -> str:
    """The assistant's JSON without ``name``, ``numbers`` and ``version``, indented."""
    doc = {k: v for k, v in assistant.public_json().items() if k not in NOT_IN_BODY}
    return json.dumps(doc, indent=2, ensure_ascii=False)


async def list_all(book: Assistants) -> list[Assistant]:
    """Every assistant, by name: the stored ones and the built-in default unless a stored
    one replaces it (as ``GET /assistants`` lists them).

    Raises:
        StoreUnavailable: the database was unreachable at start-up, or is down.
    """
    if book.store is None:
        raise StoreUnavailable(
            "assistants are unavailable: the database could not be reached at start-up",
            code="assistants_unavailable",
        )
    stored = await book.store.all()
    if not any(a.name == DEFAULT_NAME for a in stored):
        stored.append(book.default)
    stored.sort(key=lambda a: a.name)
    return stored


def form_body(name: str, numbers: str, text: str) -> dict[str, Any] | Problems:
    """The form as the JSON API's body, or the problems that keep it from being one.

    Args:
        name: the assistant's name (checked by the assistant's own validation).
        numbers: bound numbers, one a line (blank lines ignored); each checked as the API's
            ``numbers`` are.
        text: a JSON object, the rest of the assistant (empty: every default).
    """
    text = text.strip()
    if len(text) > MAX_FORM_CHARS:
        return [("(body)", f"body is larger than {MAX_FORM_CHARS} bytes")]
    try:
        doc = loads_bounded(text) if text else {}
    except JsonTooDeep as exc:
        return [("(body)", exc.message)]
    except ValueError as exc:
        return [("(body)", f"body is not JSON ({exc})")]
    if not isinstance(doc, dict):
        return [("(body)", "body must be a JSON object (an assistant)")]
    problems: Problems = []
    for key in ("name", "numbers"):
        if key in doc:
            problems.append((key, f"set in the {key.capitalize()} field, not in the JSON"))
    if problems:
        return problems
    doc.pop("version", None)  # read-only, ignored as by the API
    lines = [line.strip() for line in numbers.splitlines()]
    return {**doc, "name": name, "numbers": [n for n in lines if n]}


# ------------------------------------------------------------------ pages


async def index(request: web.Request) -> web.Response:
    """The list of assistants."""
    session = await require_page(request)
    try:
        assistants = await list_all(_book(request))
    except StoreUnavailable as exc:
        return _unavailable(request, exc.message)
    saved = (request.query.get("saved") or "")[:64]
    return render(
        request,
        "assistants.html",
        assistants=assistants,
        csrf=session.csrf,
        default=DEFAULT_NAME,
        saved=saved if re.fullmatch(NAME_PATTERN, saved) else None,
    )


async def new_form(request: web.Request) -> web.Response:
    """An empty form, its JSON the built-in default's settings without its instructions."""
    session = await require_page(request)
    template = _book(request).default.model_copy(update={"instructions": "You are ..."})
    return _form(request, session.csrf, name="", numbers="", text=body_text(template), new=True)


async def edit_form(request: web.Request) -> web.Response:
    """One assistant's form (the built-in default's too: storing it replaces the built-in)."""
    session = await require_page(request)
    name = request.match_info["name"]
    book = _book(request)
    if book.store is None:
        return _unavailable(request, NO_DATABASE)
    found: Assistant | None = None
    if re.fullmatch(NAME_PATTERN, name):
        try:
            found = await book.store.get(name)
        except StoreUnavailable as exc:
            return _unavailable(request, exc.message)
        if found is None and name == DEFAULT_NAME:
            found = book.default
    if found is None:
        return render(request, "assistant_not_found.html", status=404, name=name[:64])
    return _form(
        request,
        session.csrf,
        name=found.name,
        numbers="\n".join(found.numbers),
        text=body_text(found),
        new=False,
        version=found.version,
    )


async def save(request: web.Request) -> web.Response:
    """Store the form: 303 to the list, or the form again with the refused fields (400),
    a number bound elsewhere (409) or the database down (503)."""
    session, form = await require_form(request)
    name = str(form.get("name") or "").strip()
    numbers = str(form.get("numbers") or "")
    text = str(form.get("body") or "")
    new = form.get("new") == "1"
    book = _book(request)
    store = book.store
    if store is None:
        return _unavailable(request, NO_DATABASE)

    def again(status: int, problems: Problems) -> web.Response:
        """The form again with what was posted, ``problems`` shown, answered with ``status``."""
        return _form(
            request,
            session.csrf,
            name=name,
            numbers=numbers,
            text=text,
            new=new,
            problems=problems,
            status=status,
        )

    body = form_body(name, numbers, text)
    if isinstance(body, list):
        return again(400, body)
    checked = validate(body, name, known_tools(request.app))
    if not isinstance(checked, Assistant):
        log.info("console: assistant refused (400): bad %s", ", ".join(f for f, _ in checked)[:300])
        return again(400, checked)
    try:
        if new and await store.get(name) is not None:
            return again(409, [("name", f"an assistant named {name!r} exists: edit it instead")])
        stored, created = await store.put(checked)
    except Conflict as exc:  # the message names a number: kept out of the log
        log.info("console: assistant %s refused (409 %s)", name, exc.code)
        return again(exc.http_status, [("numbers", exc.message.removeprefix("numbers: "))])
    except StoreUnavailable as exc:
        return _unavailable(request, exc.message)
    log.info(
        "console: assistant %s %s by operator %r (version %d, %d number(s))",
        name,
        "created" if created else "stored",
        session.operator,
        stored.version,
        len(stored.numbers),
    )
    raise web.HTTPSeeOther(f"{PREFIX}/assistants?saved={name}")


async def delete(request: web.Request) -> web.Response:
    """Delete a stored assistant and its numbers; 303 to the list either way."""
    session, _ = await require_form(request)
    name = request.match_info["name"]
    store = _book(request).store
    if store is None:
        return _unavailable(request, NO_DATABASE)
    try:
        gone = re.fullmatch(NAME_PATTERN, name) is not None and await store.delete(name)
    except StoreUnavailable as exc:
        return _unavailable(request, exc.message)
    if gone:
        log.info("console: assistant %s deleted by operator %r", name, session.operator)
    raise web.HTTPSeeOther(f"{PREFIX}/assistants")


def _form(
    request: web.Request,
    csrf: str,
    *,
    name: str,
    numbers: str,
    text: str,
    new: bool,
    version: int | None = None,
    problems: Problems | None = None,
    status: int = 200,
) -> web.Response:
    return render(
        request,
        "assistant_form.html",
        status=status,
        csrf=csrf,
        name=name,
        numbers=numbers,
        text=text,
        new=new,
        version=version,
        problems=problems or [],
        message="; ".join(f"{f}: {p}" for f, p in problems or ()),
    )

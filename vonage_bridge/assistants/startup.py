"""The assistants at start-up: their tables opened beside the call records, and
``ASSISTANTS_FILE`` upserted (``make_app``'s cleanup context, after the call store). Shell.

The file's assistants are written as if each were ``PUT`` (a version goes up only when
something changed); assistants stored by the API and absent from the file stay. A file the
database refuses (a number bound to another assistant, a tool the service lacks) stops
start-up with one :class:`~..errors.ConfigError` line naming the file and the field. Without a
database (PostgreSQL unreachable at start-up) every call gets the default assistant and the
file is not loaded (one ERROR line).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from ..core.assistant import Assistant
from ..errors import ConfigError, Conflict
from ..store import SqlCallStore
from ..web.keys import ASSISTANTS, SETTINGS, STORE
from .routes import known_tools
from .store import SqlAssistantStore

log = logging.getLogger(__name__)


async def assistants_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the assistants' tables on the call store's database and upsert the file.

    Raises:
        ConfigError: the file holds an assistant the database or the service refuses, or
            the SQLite database cannot hold the tables.
    """
    book = app[ASSISTANTS]
    settings = app[SETTINGS]
    path = settings.assistants.assistants_file
    store = app.get(STORE)
    if isinstance(store, SqlCallStore):
        try:
            book.store = await SqlAssistantStore.open(store.engine, store.turns)
        except Exception as exc:
            if store.dialect == "sqlite":
                problem = f"DATABASE_URL: cannot create the assistants' tables: {exc!r}"
                raise ConfigError([problem]) from exc
            log.error("assistants OFF (%s): every call gets the default", type(exc).__name__)
    if book.store is None:
        if path:
            log.error("ASSISTANTS_FILE=%r not loaded: the database is unavailable", path)
    else:
        await _upsert_file(app, book.store, path, settings.assistants.assistants)
        count = len(await book.store.all())
        log.info("assistants: %d stored%s", count, f" (ASSISTANTS_FILE={path})" if path else "")
    try:
        yield
    finally:
        book.store = None


async def _upsert_file(
    app: web.Application,
    store: SqlAssistantStore,
    path: str | None,
    assistants: tuple[Assistant, ...],
) -> None:
    tools = known_tools(app)
    for i, assistant in enumerate(assistants):
        where = f"ASSISTANTS_FILE={path!r}: assistants[{i}] ({assistant.name})"
        for j, tool in enumerate(assistant.tools or ()):
            if tool not in tools:
                known = ", ".join(sorted(tools)) or "none"
                raise ConfigError([f"{where}: tools.{j}: unknown tool {tool!r} (known: {known})"])
        try:
            stored, created = await store.put(assistant)
        except Conflict as exc:
            raise ConfigError([f"{where}: {exc.message}"]) from None
        if created:
            log.info("assistant %s created from ASSISTANTS_FILE", stored.name)

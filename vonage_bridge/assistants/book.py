"""Which assistant answers a call: :class:`Assistants` (``web.keys.ASSISTANTS``). Shell.

An inbound call is answered by the assistant bound to the number it dialled (Vonage ``to``,
Twilio ``To``, the SIP ``To`` / Request-URI), else by the default: a stored assistant named
``default`` if there is one, else the one built from the settings. The database is read for
every call (a change applies to the next call); when it is down or slow the call gets the
built-in default (one WARNING line), never an error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from ..core.assistant import DEFAULT_NAME, Assistant, CallContext
from ..errors import NotFound, StoreUnavailable
from ..phone import e164_digits
from .store import SqlAssistantStore

log = logging.getLogger(__name__)

LOOKUP_TIMEOUT_S = 2.0
"""Bound on finding a call's assistant in the database (the caller is waiting)."""


def e164(number: str | None) -> str | None:
    """A dialled number as stored (``+`` and digits): ``447700900001``, ``+447700900001``
    and ``+44 7700 900001`` alike; None for anything else (a SIP user name, anonymous)."""
    if not number:
        return None
    try:
        return "+" + e164_digits(number.replace(" ", "").replace("-", ""))
    except ValueError:
        return None


class Assistants:
    """The default assistant and, when the database is up, the stored ones.

    Args:
        default: the assistant built from the settings (``core.assistant.default_assistant``).
        store: the stored assistants; None (no database) leaves only ``default``.
    """

    def __init__(self, default: Assistant, store: SqlAssistantStore | None = None) -> None:
        self.default = default
        self.store = store

    async def resolve(self, name: str | None = None, to_number: str | None = None) -> Assistant:
        """The assistant called ``name``; without a name, the one bound to ``to_number``;
        else the default.

        Args:
            name: an assistant's name (``POST /connect``'s ``assistant``), or None.
            to_number: the number the caller dialled, in any of the carriers' forms.
        Raises:
            NotFound: ``assistant_not_found``, no assistant called ``name``.
            StoreUnavailable: ``name`` was given and the database is down (an inbound call,
                without a name, gets the built-in default instead).
        """
        store = self.store
        if name is not None:
            found = await self._lookup(store.get(name)) if store is not None else None
            if found is not None:
                return found
            if name == DEFAULT_NAME:
                return self.default
            raise NotFound(f"no assistant named {name[:64]!r}", code="assistant_not_found")
        if store is None:
            return self.default
        try:
            number = e164(to_number)
            if number is not None:
                bound = await self._lookup(store.for_number(number))
                if bound is not None:
                    return bound
            stored_default = await self._lookup(store.get(DEFAULT_NAME))
        except StoreUnavailable as exc:
            log.warning("assistants unavailable (%s): the call gets the built-in default", exc)
            return self.default
        return stored_default or self.default

    async def context(self, our_number: str | None) -> CallContext:
        """The context of a call without one of its own: the assistant bound to
        ``our_number`` (the number dialled, inbound), else the default; never raises."""
        return CallContext(await self.resolve(None, our_number))

    @staticmethod
    async def _lookup(query: Coroutine[Any, Any, Assistant | None]) -> Assistant | None:
        try:
            async with asyncio.timeout(LOOKUP_TIMEOUT_S):
                return await query
        except TimeoutError:
            raise StoreUnavailable(
                f"assistants unavailable: no answer within {LOOKUP_TIMEOUT_S:g} s",
                code="assistants_unavailable",
            ) from None

"""OpenAI SIP call control: accept, reject, refer, hang up. Shell: does I/O through
:func:`..rest.request_json` against ``OPENAI_BASE_URL``. The sideband socket of an accepted
call is ``sideband.py``.

Every request is ``POST {OPENAI_BASE_URL}/realtime/calls/{call_id}/{action}`` with Bearer
auth; OpenAI answers 200 with an empty body, or 404 when the call no longer exists.

Errors::

    CallGone         OpenAI answered 404: the caller hung up or the call already ended
    UpstreamError    any other non-2xx answer, or OpenAI could not be reached
    UpstreamTimeout  no answer within REST_TIMEOUT_S (an UpstreamError)

Source: OpenAI Realtime SIP guide (https://platform.openai.com/docs/guides/realtime-sip);
API reference (https://platform.openai.com/docs/api-reference/realtime).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import aiohttp

from ..config import OpenAISettings
from ..errors import CallGone, UpstreamError
from ..rest import JsonReply, request_json

log = logging.getLogger(__name__)

REST_TIMEOUT_S = 10.0
"""Whole-request bound of each call control request."""

REFUSED_TEXT_CHARS = 300
"""How much of an error body goes into the message."""


class SipControl:
    """``POST {OPENAI_BASE_URL}/realtime/calls/{call_id}/{accept|reject|refer|hangup}``."""

    def __init__(self, http: aiohttp.ClientSession, openai: OpenAISettings) -> None:
        self.http = http
        self.openai = openai

    async def _post(self, call_id: str, action: str, body: dict[str, Any] | None) -> None:
        await request_json(
            self.http,
            "POST",
            f"{self.openai.base_url}/realtime/calls/{call_id}/{action}",
            what=f"SIP {action}",
            service="OpenAI",
            timeout_s=REST_TIMEOUT_S,
            headers={
                "Authorization": f"Bearer {self.openai.api_key.get_secret_value()}",
                "Accept": "*/*",
            },
            json=body,
            refused=partial(_refused, call_id, action),
        )

    async def accept(self, call_id: str, session: dict[str, Any]) -> None:
        """Answer the ringing call with a GA session config (``"type": "realtime"``, model,
        instructions, audio, tools).

        Raises: CallGone (the caller hung up), UpstreamError (refused, timeout, network).
        """
        await self._post(call_id, "accept", session)

    async def reject(self, call_id: str, status_code: int) -> None:
        """Decline the ringing call with a SIP status (486 busy, 603 decline).

        Raises: CallGone (404), UpstreamError (refused, timeout, network).
        """
        await self._post(call_id, "reject", {"status_code": status_code})

    async def refer(self, call_id: str, target_uri: str) -> None:
        """Transfer the call: SIP REFER to ``target_uri`` (``tel:+…`` or ``sip:…``).

        Raises: CallGone (404), UpstreamError (refused, timeout, network).
        """
        await self._post(call_id, "refer", {"target_uri": target_uri})

    async def hangup(self, call_id: str) -> None:
        """End the call. Raises: CallGone (already ended), UpstreamError."""
        await self._post(call_id, "hangup", None)


def _refused(call_id: str, action: str, reply: JsonReply) -> CallGone | UpstreamError:
    if reply.status == 404:
        return CallGone(f"{action}: call {call_id} not found (404)")
    text = reply.text[:REFUSED_TEXT_CHARS]
    return UpstreamError(f"SIP {action} refused: HTTP {reply.status} {text}")

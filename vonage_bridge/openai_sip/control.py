"""OpenAI SIP call control: accept, reject, refer, hang up. Shell: does I/O with aiohttp
against ``OPENAI_BASE_URL``. The sideband socket of an accepted call is ``sideband.py``.

Source: protocols.md B4 (call control, sideband), B1-B3 (events).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from ..config import OpenAISettings
from ..errors import UpstreamError

log = logging.getLogger(__name__)

REST_TIMEOUT_S = 10.0


class CallGone(Exception):
    """OpenAI answered 404: the call no longer exists (the caller hung up)."""


class SipControl:
    """``POST {OPENAI_BASE_URL}/realtime/calls/{call_id}/{accept|reject|refer|hangup}``."""

    def __init__(self, http: aiohttp.ClientSession, openai: OpenAISettings) -> None:
        self.http = http
        self.openai = openai

    async def _post(self, call_id: str, action: str, body: dict[str, Any] | None) -> None:
        url = f"{self.openai.base_url}/realtime/calls/{call_id}/{action}"
        headers = {
            "Authorization": f"Bearer {self.openai.api_key.get_secret_value()}",
            "Accept": "*/*",
        }
        try:
            async with (
                asyncio.timeout(REST_TIMEOUT_S),
                self.http.post(url, json=body, headers=headers) as resp,
            ):
                if resp.status == 404:
                    raise CallGone(f"{action}: call {call_id} not found (404)")
                if resp.status >= 300:
                    text = (await resp.text())[:300]
                    raise UpstreamError(f"SIP {action} refused: HTTP {resp.status} {text}")
        except TimeoutError:
            raise UpstreamError(f"SIP {action}: no answer within {REST_TIMEOUT_S:g} s") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"SIP {action}: {exc.__class__.__name__}: {exc}") from exc

    async def accept(self, call_id: str, session: dict[str, Any]) -> None:
        """Raises: CallGone (the caller hung up), UpstreamError."""
        await self._post(call_id, "accept", session)

    async def reject(self, call_id: str, status_code: int) -> None:
        """Decline the ringing call with a SIP status (486 busy, 603 decline) [B4].

        Raises: CallGone (404), UpstreamError (refused, timeout, network).
        """
        await self._post(call_id, "reject", {"status_code": status_code})

    async def refer(self, call_id: str, target_uri: str) -> None:
        """Transfer the call: SIP REFER to ``target_uri`` (``tel:+…`` or ``sip:…``) [B4].

        Raises: CallGone (404), UpstreamError (refused, timeout, network).
        """
        await self._post(call_id, "refer", {"target_uri": target_uri})

    async def hangup(self, call_id: str) -> None:
        """End the call [B4]. Raises: CallGone (already ended), UpstreamError."""
        await self._post(call_id, "hangup", None)

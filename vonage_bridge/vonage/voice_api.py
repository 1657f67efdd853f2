"""Vonage Voice API calls resource: dial (``POST /v1/calls``) and hang up
(``PUT /v1/calls/{uuid}``). Shell: does I/O.

Requests go through the app's shared ``aiohttp.ClientSession`` with an RS256 application JWT
signed by the key object loaded once at start-up (``app_jwt``). The Vonage SDK is not used
here: it is synchronous (requests; it would need a thread per call), always builds
``https://{host}`` URLs, so it cannot reach a plain-``http`` loopback fake, and it re-parses
the PEM key for every request (~72 ms CPU). See dependencies.md section 2.

Every request is bounded by ``VONAGE_API_TIMEOUT_S``.

Source: protocols.md A4 [V-SPEC voice.yml]; A3 "Ending the call" [V-WSG].
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from ..config import VonageSettings
from ..errors import UpstreamTimeout, VonageApiError
from .app_jwt import application_jwt

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CreatedCall:
    """Vonage's 201 answer to ``POST /v1/calls``. [V-SPEC]"""

    uuid: str
    status: str
    direction: str | None
    conversation_uuid: str | None


class VoiceApi:
    """The two Voice REST requests the bridge makes.

    Args:
        http: the app's shared client session.
        vonage: settings with an application id and a private key (``missing_for_rest`` is
            empty).
    Raises:
        ValueError: if ``vonage`` lacks the application id or the key.
    """

    def __init__(self, http: aiohttp.ClientSession, vonage: VonageSettings) -> None:
        if vonage.application_id is None or vonage.private_key is None:
            raise ValueError(f"Vonage REST is not configured: {vonage.missing_for_rest}")
        self._http = http
        self._application_id = vonage.application_id
        self._key = vonage.private_key
        self._base = vonage.api_url
        self._timeout = aiohttp.ClientTimeout(total=vonage.api_timeout_s)
        self.timeout_s = vonage.api_timeout_s

    def _headers(self) -> dict[str, str]:
        token = application_jwt(self._application_id, self._key, time.time())
        return {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    async def create_call(
        self, *, to: str, from_: str, answer_url: str, event_url: str
    ) -> CreatedCall:
        """Place an outbound call to a phone; Vonage fetches ``answer_url`` when it is answered.

        Args:
            to: callee, E.164 digits (no ``+``).
            from_: caller id, E.164 digits, one of the account's numbers.
            answer_url: our answer URL (GET), so the callee is bridged like an inbound caller.
            event_url: our event URL (POST).
        Returns:
            The created call.
        Raises:
            VonageApiError: Vonage answered 4xx/5xx (its ``title`` and ``detail`` in the
                message), sent an unusable body, or could not be reached.
            UpstreamTimeout: no answer within ``VONAGE_API_TIMEOUT_S``.
        Source: protocols.md A4 "Create call".
        """
        body = {
            "to": [{"type": "phone", "number": to}],
            "from": {"type": "phone", "number": from_},
            "answer_url": [answer_url],
            "answer_method": "GET",
            "event_url": [event_url],
            "event_method": "POST",
        }
        status, data = await self._request("POST", "/v1/calls", body, "create call")
        if status != 201 or not isinstance(data, dict) or not isinstance(data.get("uuid"), str):
            raise VonageApiError(
                f"Vonage create call: unexpected answer (HTTP {status})", status=status
            )
        return CreatedCall(
            uuid=data["uuid"],
            status=str(data.get("status", "")),
            direction=_str_or_none(data.get("direction")),
            conversation_uuid=_str_or_none(data.get("conversation_uuid")),
        )

    async def hang_up(self, call_uuid: str) -> None:
        """End a call: ``PUT /v1/calls/{uuid}`` ``{"action": "hangup"}`` (204).

        Raises:
            VonageApiError: Vonage refused, failed or could not be reached.
            UpstreamTimeout: no answer within ``VONAGE_API_TIMEOUT_S``.
        Source: protocols.md A4 "Modify call".
        """
        path = f"/v1/calls/{quote(call_uuid, safe='')}"
        await self._request("PUT", path, {"action": "hangup"}, "hang up")

    async def transfer(self, call_uuid: str, ncco: list[dict[str, Any]]) -> None:
        """Transfer a call to an inline NCCO: ``PUT /v1/calls/{uuid}``
        ``{"action": "transfer", "destination": {"type": "ncco", "ncco": [...]}}`` (204).

        Raises:
            VonageApiError: Vonage refused, failed or could not be reached.
            UpstreamTimeout: no answer within ``VONAGE_API_TIMEOUT_S``.
        Source: protocols.md A4 "Modify call".
        """
        path = f"/v1/calls/{quote(call_uuid, safe='')}"
        body = {"action": "transfer", "destination": {"type": "ncco", "ncco": ncco}}
        await self._request("PUT", path, body, "transfer")

    async def _request(
        self, method: str, path: str, body: dict[str, Any], what: str
    ) -> tuple[int, Any]:
        url = self._base + path
        try:
            async with self._http.request(
                method, url, json=body, headers=self._headers(), timeout=self._timeout
            ) as resp:
                status = resp.status
                raw = await resp.read()
        except TimeoutError:
            raise UpstreamTimeout(f"Vonage {what}: no answer within {self.timeout_s:g} s") from None
        except aiohttp.ClientError as exc:
            raise VonageApiError(f"Vonage {what}: request failed ({exc!r})") from None
        data = _json_or_none(raw)
        if status >= 400:
            title = detail = None
            if isinstance(data, dict):
                title = _str_or_none(data.get("title"))
                detail = _str_or_none(data.get("detail"))
            text = ": ".join(x for x in (title, detail) if x) or "no error detail"
            raise VonageApiError(
                f"Vonage {what} failed (HTTP {status}): {text}",
                status=status,
                title=title,
                detail=detail,
            )
        return status, data


class CallHangUp:
    """Hangs one call up over REST, at most once; failures are logged, never raised.

    Used from a call's cleanup (``bridge.run_call``) and from server shutdown, whichever comes
    first.
    """

    __slots__ = ("_api", "call_uuid", "done")

    def __init__(self, api: VoiceApi, call_uuid: str) -> None:
        self._api = api
        self.call_uuid = call_uuid
        self.done = False

    async def __call__(self, reason: str) -> bool:
        """Hang up, the first time only. Returns False if this attempt failed (logged as a
        warning); True if Vonage accepted it or an earlier call already tried."""
        if self.done:
            return True
        self.done = True
        try:
            await self._api.hang_up(self.call_uuid)
        except (VonageApiError, UpstreamTimeout) as exc:
            log.warning("Vonage hang-up failed (%s): %s", reason, exc.message)
            return False
        log.info("hung up the call over REST (%s)", reason)
        return True

    async def hang_up(self, reason: str) -> bool:
        """``bridge.CallControl.hang_up``: the same as calling this object."""
        return await self(reason)

    async def transfer(self, number: str) -> None:
        """``bridge.CallControl.transfer``: the Voice API ``transfer`` action with an inline
        NCCO connecting the call to ``number`` (E.164 digits).

        Raises:
            VonageApiError, UpstreamTimeout: Vonage refused it or did not answer.
        """
        ncco = [{"action": "connect", "endpoint": [{"type": "phone", "number": number}]}]
        await self._api.transfer(self.call_uuid, ncco)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw.strip() else None
    except ValueError:
        return None

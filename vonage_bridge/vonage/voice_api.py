"""Vonage Voice API calls resource: dial (``POST /v1/calls``) and hang up
(``PUT /v1/calls/{uuid}``). Shell: does I/O.

Requests go through :func:`..rest.request_json` on the app's shared ``aiohttp.ClientSession``
with an RS256 application JWT signed by the key object loaded once at start-up (``app_jwt``).
The Vonage SDK is not used here: it is synchronous (requests; it would need a thread per
call), always builds ``https://{host}`` URLs, so it cannot reach a plain-``http`` loopback
fake, and it re-parses the PEM key for every request (~72 ms CPU); see ``rest.py``.

Every request is bounded by ``VONAGE_API_TIMEOUT_S``.

Source: Vonage Voice API reference (https://developer.vonage.com/en/api/voice: "Create an
outbound call", "Modify an in progress call"); Vonage WebSockets guide
(https://developer.vonage.com/en/voice/voice-api/concepts/websockets).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from ..calls import RestHangUp
from ..config import VonageSettings
from ..errors import UpstreamTimeout, VonageApiError
from ..rest import JsonReply, RestApi
from .app_jwt import application_jwt
from .ncco import transfer_ncco

AMD = {"behavior": "continue", "mode": "detect_beep", "beep_timeout": 45}
"""``advanced_machine_detection`` of an outbound call that asks for it: the call goes on
whatever answers (``continue``: we decide), and the beep is reported (``detect_beep``), waited
for at most 45 s (the smallest ``beep_timeout``).
Source: https://developer.vonage.com/en/api/voice#createCall."""


@dataclass(frozen=True, slots=True)
class CreatedCall:
    """Vonage's 201 answer to ``POST /v1/calls``."""

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
        self._application_id = vonage.application_id
        self._key = vonage.private_key
        self._base = vonage.api_url
        self.timeout_s = vonage.api_timeout_s
        self._api = RestApi(
            http, "Vonage", "the Vonage API", self.timeout_s, VonageApiError, _error_body
        )

    def _headers(self) -> dict[str, str]:
        token = application_jwt(self._application_id, self._key, time.time())
        return {"Authorization": f"Bearer {token}", "Accept": "application/json"}

    async def create_call(
        self,
        *,
        to: str,
        from_: str,
        answer_url: str,
        event_url: str,
        machine_detection: bool = False,
    ) -> CreatedCall:
        """Place an outbound call to a phone; Vonage fetches ``answer_url`` when it is answered.

        Args:
            to: callee, E.164 digits (no ``+``).
            from_: caller id, E.164 digits, one of the account's numbers.
            answer_url: our answer URL (GET), so the callee is bridged like an inbound caller.
            event_url: our event URL (POST).
            machine_detection: ask for Advanced Machine Detection (:data:`AMD`): the event
                URL then gets ``machine`` / ``human``, and ``machine`` again with
                ``sub_state: beep_start`` when the voicemail's beep is heard.
        Returns:
            The created call.
        Raises:
            VonageApiError: Vonage answered 4xx/5xx (its ``title`` and ``detail`` in the
                message), sent an unusable body, or could not be reached.
            UpstreamTimeout: no answer within ``VONAGE_API_TIMEOUT_S``.
        Source: https://developer.vonage.com/en/api/voice ("Create an outbound call").
        """
        body = {
            "to": [{"type": "phone", "number": to}],
            "from": {"type": "phone", "number": from_},
            "answer_url": [answer_url],
            "answer_method": "GET",
            "event_url": [event_url],
            "event_method": "POST",
        }
        if machine_detection:
            body["advanced_machine_detection"] = dict(AMD)
        reply = await self._request("POST", "/v1/calls", body, "create call")
        status, data = reply.status, reply.data
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
        Source: https://developer.vonage.com/en/api/voice ("Modify an in progress call").
        """
        path = f"/v1/calls/{quote(call_uuid, safe='')}"
        await self._request("PUT", path, {"action": "hangup"}, "hang up")

    async def transfer(self, call_uuid: str, ncco: list[dict[str, Any]]) -> None:
        """Transfer a call to an inline NCCO: ``PUT /v1/calls/{uuid}``
        ``{"action": "transfer", "destination": {"type": "ncco", "ncco": [...]}}`` (204).

        Raises:
            VonageApiError: Vonage refused, failed or could not be reached.
            UpstreamTimeout: no answer within ``VONAGE_API_TIMEOUT_S``.
        Source: https://developer.vonage.com/en/api/voice ("Modify an in progress call").
        """
        path = f"/v1/calls/{quote(call_uuid, safe='')}"
        body = {"action": "transfer", "destination": {"type": "ncco", "ncco": ncco}}
        await self._request("PUT", path, body, "transfer")

    async def _request(self, method: str, path: str, body: dict[str, Any], what: str) -> JsonReply:
        return await self._api.request(
            method, self._base + path, what, headers=self._headers(), json=body
        )


def _error_body(data: Any) -> tuple[str, dict[str, Any]]:
    """Vonage's RFC 7807 problem body: ``title`` and ``detail`` (``rest.RestApi.error_body``)."""
    title = detail = None
    if isinstance(data, dict):
        title = _str_or_none(data.get("title"))
        detail = _str_or_none(data.get("detail"))
    text = ": ".join(x for x in (title, detail) if x) or "no error detail"
    return text, {"title": title, "detail": detail}


class CallHangUp(RestHangUp):
    """Hangs one Vonage call up over REST, at most once; failures (a Vonage error, a
    timeout) are logged, never raised: see :class:`..calls.RestHangUp`.
    """

    __slots__ = ("_api", "call_uuid", "called")

    carrier = "Vonage"
    failures = (VonageApiError, UpstreamTimeout)
    log = logging.getLogger(__name__)

    def __init__(self, api: VoiceApi, call_uuid: str, called: str | None = None) -> None:
        super().__init__()
        self._api = api
        self.call_uuid = call_uuid
        self.called = called  # the number the caller dialled: a transfer's caller id

    async def _end(self) -> bool:
        await self._api.hang_up(self.call_uuid)
        return True

    async def transfer(self, number: str) -> None:
        """``calls.CallControl.transfer``: the Voice API ``transfer`` action with an inline
        NCCO connecting the call to ``number`` (E.164 digits), showing the number the caller
        dialled as caller id (:func:`.ncco.transfer_ncco`).

        Raises:
            VonageApiError, UpstreamTimeout: Vonage refused it or did not answer.
            pydantic.ValidationError: ``number`` is not E.164 digits.
        """
        await self._api.transfer(self.call_uuid, transfer_ncco(number, self.called))


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None

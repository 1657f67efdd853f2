"""Twilio REST API, Call resource: place an outbound call (``POST .../Calls.json`` with
our TwiML URL and status callback), hang up (``Status=completed``) and transfer (new
``Twiml``) a live call. Shell: does I/O.

The updates are ``POST {TWILIO_API_URL}/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json``
with a form body and HTTP Basic auth ``AccountSid:AuthToken``, through
:func:`..rest.request_json` on the app's shared ``aiohttp.ClientSession``. The configurable
base URL keeps the tests and the simulation on a plain-http loopback fake
(``sim/twilio_api.py``). The ``twilio`` SDK's async REST client was measured against that
fake and not adopted: see ``rest.py`` for the numbers and why.

Call SIDs are checked (``CA`` + 32 hex) before any URL is built from them, so a crafted SID
never reaches another path. Every request is bounded by ``TWILIO_API_TIMEOUT_S``.

Errors::

    InvalidRequest     400  bad_call_sid: not CA + 32 hex (nothing was sent)
    TwilioApiError     502  (an UpstreamError) Twilio answered 4xx/5xx or could not be reached;
                            .status is the HTTP status (None when unreachable), .twilio_code
                            Twilio's error code (20003 bad credentials, 20404 not found)
    UpstreamTimeout    504  no answer within TWILIO_API_TIMEOUT_S

Source: Twilio Call resource (https://www.twilio.com/docs/voice/api/call-resource, "Create a
Call": ``Url``, ``StatusCallback``, ``StatusCallbackEvent``, ``MachineDetection``; "Update a
Call": ``Status``, ``Twiml``); answering machine detection
(https://www.twilio.com/docs/voice/answering-machine-detection); TwiML ``<Stream>`` (https://www.twilio.com/docs/voice/twiml/stream)
for what ends the media stream on a ``<Dial>`` transfer.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import MultiDict

from ..calls import RestHangUp
from ..config import TwilioSettings
from ..errors import InvalidRequest, TwilioApiError, UpstreamTimeout
from ..rest import RestApi
from .twiml import dial_twiml

__all__ = [
    "API_VERSION",
    "STATUS_EVENTS",
    "TwilioCreatedCall",
    "ALREADY_ENDED_CODES",
    "CALL_SID_RE",
    "TwilioApi",
    "TwilioHangUp",
    "check_call_sid",
]

API_VERSION = "2010-04-01"
CALL_SID_RE = re.compile(r"CA[0-9a-fA-F]{32}")
"""A Twilio call SID: ``CA`` then 32 hex digits."""

ALREADY_ENDED_CODES = TwilioApiError.ALREADY_ENDED_CODES
"""Twilio error codes meaning the call is gone (20404, 21220): see :class:`TwilioApiError`."""


STATUS_EVENTS = ("initiated", "ringing", "answered", "completed")
"""``StatusCallbackEvent`` values asked for: every step Twilio reports (failures come as the
``completed`` event with ``CallStatus`` busy, no-answer, failed or canceled)."""


@dataclass(frozen=True, slots=True)
class TwilioCreatedCall:
    """Twilio's 201 answer to ``POST .../Calls.json``: the call SID and its status
    (``queued``)."""

    sid: str
    status: str


def check_call_sid(call_sid: str) -> str:
    """``call_sid`` unchanged if it is ``CA`` + 32 hex digits.

    Raises:
        InvalidRequest: ``bad_call_sid`` otherwise (the value is not echoed: it came from
            the wire).
    """
    if not isinstance(call_sid, str) or not CALL_SID_RE.fullmatch(call_sid):
        raise InvalidRequest("Twilio call SID is not CA + 32 hex digits", code="bad_call_sid")
    return call_sid


class TwilioApi:
    """The two Call resource updates the bridge makes.

    Args:
        http: the app's shared client session.
        settings: Twilio settings with an account SID and an auth token (``verify`` is True).
    Raises:
        ValueError: if ``settings`` lacks the account SID or the auth token.
    """

    def __init__(self, http: aiohttp.ClientSession, settings: TwilioSettings) -> None:
        if settings.account_sid is None or settings.auth_token is None:
            raise ValueError(
                "Twilio REST is not configured: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN needed"
            )
        self.timeout_s = settings.api_timeout_s
        self._api = RestApi(http, "Twilio", "Twilio", self.timeout_s, TwilioApiError, _error_body)
        self._headers = {
            "Accept": "application/json",
            "Authorization": aiohttp.encode_basic_auth(
                settings.account_sid, settings.auth_token.get_secret_value()
            ),
        }
        self._calls_url = f"{settings.api_url}/{API_VERSION}/Accounts/{settings.account_sid}/Calls"

    async def create_call(
        self,
        *,
        to: str,
        from_: str,
        url: str,
        status_callback: str,
        machine_detection: bool = False,
        message_end: bool = False,
    ) -> TwilioCreatedCall:
        """Place an outbound call; Twilio fetches ``url`` (POST) for its TwiML when it is
        answered and posts each step to ``status_callback``.

        Args:
            to: callee, E.164 with ``+``.
            from_: caller id, E.164 with ``+``, one of the account's numbers.
            url: our Voice webhook, so the callee is bridged like an inbound caller.
            status_callback: our status callback URL (POST, :data:`STATUS_EVENTS`).
            machine_detection: ``MachineDetection=Enable`` with ``AsyncAmd``: the verdict
                (``AnsweredBy``) is posted to ``status_callback`` too.
            message_end: with ``machine_detection``, ``MachineDetection=DetectMessageEnd``
                instead: a machine's verdict comes once its greeting has ended
                (``AnsweredBy=machine_end_beep``, ``machine_end_silence``,
                ``machine_end_other``), the moment to leave a message.
        Returns:
            The created call.
        Raises:
            TwilioApiError: Twilio refused (its code and message), failed, sent no SID, or
                could not be reached.
            UpstreamTimeout: no answer within ``TWILIO_API_TIMEOUT_S``.
        """
        form: MultiDict[str] = MultiDict(
            To=to,
            From=from_,
            Url=url,
            Method="POST",
            StatusCallback=status_callback,
            StatusCallbackMethod="POST",
        )
        for event in STATUS_EVENTS:
            form.add("StatusCallbackEvent", event)
        if machine_detection:
            form.update(
                MachineDetection="DetectMessageEnd" if message_end else "Enable",
                AsyncAmd="true",
                AsyncAmdStatusCallback=status_callback,
                AsyncAmdStatusCallbackMethod="POST",
            )
        reply = await self._api.request(
            "POST", f"{self._calls_url}.json", "create call", headers=self._headers, form=form
        )
        data = reply.data
        sid = data.get("sid") if isinstance(data, dict) else None
        if not isinstance(sid, str) or not CALL_SID_RE.fullmatch(sid):
            raise TwilioApiError(
                f"Twilio create call: unexpected answer (HTTP {reply.status})", status=reply.status
            )
        return TwilioCreatedCall(sid=sid, status=str(data.get("status", "")))

    async def hang_up(self, call_sid: str) -> bool:
        """End a live call: ``Status=completed`` (200 with the call resource).

        Returns:
            True if Twilio ended the call; False if it had already ended (404, or 400 with
            error 21220): not an error.
        Raises:
            InvalidRequest: ``call_sid`` is not a call SID (nothing was sent).
            TwilioApiError: Twilio refused (401 bad credentials, ...), failed, or could not
                be reached.
            UpstreamTimeout: no answer within ``TWILIO_API_TIMEOUT_S``.
        """
        try:
            await self._update(call_sid, {"Status": "completed"}, "hang up")
        except TwilioApiError as exc:
            if exc.call_gone:
                return False
            raise
        return True

    async def update_twiml(self, call_sid: str, twiml: str) -> None:
        """Replace what a live call is doing with ``twiml`` (``Twiml=<Response>...``), e.g.
        a ``<Dial>`` to transfer the caller; the media stream then ends.

        Args:
            call_sid: the call, ``CA`` + 32 hex.
            twiml: a whole TwiML document, ``<Response>...</Response>`` (Twilio's limit is
                4000 characters).
        Raises:
            InvalidRequest: bad ``call_sid`` or empty ``twiml`` (nothing was sent).
            TwilioApiError: Twilio refused (``call_gone`` when the call already ended),
                failed, or could not be reached.
            UpstreamTimeout: no answer within ``TWILIO_API_TIMEOUT_S``.
        """
        if not twiml.strip():
            raise InvalidRequest("TwiML for the call update is empty", code="bad_twiml")
        await self._update(call_sid, {"Twiml": twiml}, "transfer")

    async def _update(self, call_sid: str, form: dict[str, str], what: str) -> None:
        url = f"{self._calls_url}/{check_call_sid(call_sid)}.json"
        await self._api.request("POST", url, what, headers=self._headers, form=form)


def _error_body(data: Any) -> tuple[str, dict[str, Any]]:
    """Twilio's error body: ``code`` and ``message`` (``rest.RestApi.error_body``)."""
    code = message = None
    if isinstance(data, dict):
        code = data.get("code") if isinstance(data.get("code"), int) else None
        message = data.get("message") if isinstance(data.get("message"), str) else None
    text = message or "no error detail"
    if code is not None:
        text += f" (Twilio error {code})"
    return text, {"twilio_code": code, "twilio_message": message}


class TwilioHangUp(RestHangUp):
    """Hangs one Twilio call up over REST, at most once; failures (a Twilio error, a timeout,
    a malformed call SID) are logged, never raised: see :class:`..calls.RestHangUp`. A call
    that had already ended counts as hung up (logged at info).
    """

    __slots__ = ("_api", "call_sid")

    carrier = "Twilio"
    failures = (TwilioApiError, UpstreamTimeout, InvalidRequest)
    log = logging.getLogger(__name__)

    def __init__(self, api: TwilioApi, call_sid: str) -> None:
        super().__init__()
        self._api = api
        self.call_sid = call_sid

    async def _end(self) -> bool:
        return await self._api.hang_up(self.call_sid)

    async def transfer(self, number: str) -> None:
        """``calls.CallControl.transfer``: replace the call's TwiML with ``<Dial>number``.

        Raises:
            TwilioApiError, UpstreamTimeout, InvalidRequest: Twilio refused it, did not
                answer, or the call SID is not one.
        """
        await self._api.update_twiml(self.call_sid, dial_twiml(number))

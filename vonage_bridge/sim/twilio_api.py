"""Fake Twilio REST API (the Call resource's create and update) on aiohttp, bound to
127.0.0.1.

Entry ring (I/O): used by the integration tests and the simulation, never by the core.

- ``POST /2010-04-01/Accounts/{AccountSid}/Calls.json`` (Basic auth, a form with ``To``,
  ``From`` and ``Url``) records the request (:attr:`FakeTwilioApi.created`), registers the
  call as ``queued`` and answers 201 with its resource; :meth:`FakeTwilioApi.post_status`
  then posts its status callbacks (``CallStatus`` ringing, in-progress, completed, busy,
  no-answer, failed, canceled) to its ``StatusCallback``, and :meth:`FakeTwilioApi.post_amd`
  the asynchronous AMD verdict (``AnsweredBy``) to its ``AsyncAmdStatusCallback``, both signed
  with ``X-Twilio-Signature`` as Twilio signs webhooks.

- ``POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`` checks HTTP Basic auth
  (``AccountSid:AuthToken``) and a form body (``application/x-www-form-urlencoded``) with
  ``Status`` (``completed`` or ``canceled``) and/or ``Twiml`` or ``Url``; records the
  request and answers 200 with a call resource ``{"sid", "account_sid", "status", ...}``.
- Bad or missing credentials get 401 ``{"code": 20003, "message": "Authenticate", ...}``;
  a call SID that was never registered (:meth:`FakeTwilioApi.add_call`) gets 404
  ``{"code": 20404, ...}``; new TwiML for a call that has ended gets 400 ``{"code": 21220}``.
- ``GET .../IncomingPhoneNumbers.json?PhoneNumber=+E164`` lists the account's numbers (those
  added with :meth:`FakeTwilioApi.add_number`), filtered by the exact number when given;
  ``POST .../IncomingPhoneNumbers/{Sid}.json`` with ``VoiceUrl``/``VoiceMethod`` updates one
  (404 ``20404`` for another SID); both with the same Basic auth.
- Knobs (:class:`FakeTwilioApiOptions`) inject an error status or a delay (timeouts), or
  accept any well-formed call SID as a live call.

Source: Twilio Call resource "Create a Call", "Update a Call", the status callback and its
error shape (https://www.twilio.com/docs/voice/api/call-resource, /docs/errors/20003, /20404,
/21220); answering machine detection
(https://www.twilio.com/docs/voice/answering-machine-detection); webhook signatures
(https://www.twilio.com/docs/usage/webhooks/webhooks-security);
IncomingPhoneNumber resource
(https://www.twilio.com/docs/phone-numbers/api/incomingphonenumber-resource).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from .server import LoopbackServer

_BOTH = frozenset({"human", "fax", "unknown"})
AMD_VERDICTS = {
    "Enable": _BOTH | {"machine_start"},
    "DetectMessageEnd": _BOTH | {"machine_end_beep", "machine_end_silence", "machine_end_other"},
}
"""The ``AnsweredBy`` values Twilio posts for each ``MachineDetection`` mode."""

__all__ = [
    "FakeTwilioApi",
    "FakeTwilioApiOptions",
    "TwilioApiRequest",
    "new_account_sid",
    "new_call_sid",
    "twilio_error",
]

API_VERSION = "2010-04-01"
_HEX = frozenset("0123456789abcdefABCDEF")


def new_account_sid() -> str:
    """A random account SID, ``AC`` + 32 hex digits."""
    return "AC" + secrets.token_hex(16)


def new_call_sid() -> str:
    """A random call SID, ``CA`` + 32 hex digits."""
    return "CA" + secrets.token_hex(16)


def twilio_error(status: int, code: int, message: str) -> dict[str, Any]:
    """A Twilio REST error body: ``{"code", "message", "more_info", "status"}``."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


@dataclass(frozen=True, slots=True)
class TwilioApiRequest:
    """One authenticated update request: the call SID from the path and the form fields."""

    call_sid: str
    fields: dict[str, str]


@dataclass
class FakeTwilioApiOptions:
    """Knobs for the fake.

    Attributes:
        update_status: answer every authenticated update, and every ``Calls.json`` create,
            with this status (and a generic Twilio error body) instead of applying it; None
            applies it.
        update_delay_s: wait this long (s) before answering an update or a create.
        accept_any_call: treat any well-formed, unregistered call SID as a live call instead
            of answering 404.
    """

    update_status: int | None = None
    update_delay_s: float = 0.0
    accept_any_call: bool = False


@dataclass
class FakeTwilioApi(LoopbackServer):
    """The fake Twilio REST server.

    Args:
        account_sid: the account (``AC`` + 32 hex) in the path and the Basic auth user.
        auth_token: the Basic auth password.
        options: knobs; ``FakeTwilioApiOptions()`` by default.

    Attributes:
        requests: every authenticated update request with a well-formed call SID, in
            arrival order, whatever the answer (404 and injected errors included).
        refused: one reason string per request refused for its credentials.
        calls: call SID -> status (``in-progress``, ``completed``, ``canceled``).
        created: call SID -> the form fields of the ``Calls.json`` request that created it
            (a repeated field, ``StatusCallbackEvent``, as a list).
        callbacks: ``(call SID, form fields, HTTP status of the bridge's answer)`` per
            status or AMD callback posted.
    """

    account_sid: str
    auth_token: str
    options: FakeTwilioApiOptions = field(default_factory=FakeTwilioApiOptions)
    requests: list[TwilioApiRequest] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    calls: dict[str, str] = field(default_factory=dict)
    created: dict[str, dict[str, Any]] = field(default_factory=dict)
    callbacks: list[tuple[str, dict[str, str], int]] = field(default_factory=list)
    numbers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._init_server()
        self._http: aiohttp.ClientSession | None = None
        self.app.router.add_post(
            f"/{API_VERSION}/Accounts/{{account_sid}}/Calls.json", self._create
        )
        self.app.router.add_post(
            f"/{API_VERSION}/Accounts/{{account_sid}}/Calls/{{call_file}}", self._update
        )
        numbers = f"/{API_VERSION}/Accounts/{{account_sid}}/IncomingPhoneNumbers"
        self.app.router.add_get(numbers + ".json", self._list_numbers)
        self.app.router.add_post(numbers + "/{number_file}", self._update_number)

    def add_number(self, phone_number: str, voice_url: str | None = None) -> str:
        """Give the account the number ``phone_number`` (``+E164``) with a Voice URL (None:
        unset); returns its SID (``PN`` + 32 hex)."""
        sid = "PN" + secrets.token_hex(16)
        self.numbers[sid] = {
            "sid": sid,
            "account_sid": self.account_sid,
            "phone_number": phone_number,
            "friendly_name": phone_number,
            "voice_url": voice_url,
            "voice_method": "POST",
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/IncomingPhoneNumbers/{sid}.json",
        }
        return sid

    async def _list_numbers(self, request: web.Request) -> web.Response:
        if (
            not self._authenticated(request)
            or request.match_info["account_sid"] != self.account_sid
        ):
            return _json(twilio_error(401, 20003, "Authenticate"), 401, auth_challenge=True)
        wanted = request.query.get("PhoneNumber")
        found = [n for n in self.numbers.values() if wanted is None or n["phone_number"] == wanted]
        return _json({"incoming_phone_numbers": found, "page": 0, "page_size": 50}, 200)

    async def _update_number(self, request: web.Request) -> web.Response:
        if (
            not self._authenticated(request)
            or request.match_info["account_sid"] != self.account_sid
        ):
            return _json(twilio_error(401, 20003, "Authenticate"), 401, auth_challenge=True)
        sid = request.match_info["number_file"].removesuffix(".json")
        if sid not in self.numbers:
            return _json(_not_found(request.path), 404)
        form = await request.post()
        number = self.numbers[sid]
        if "VoiceUrl" in form:
            number["voice_url"] = str(form["VoiceUrl"])
        if "VoiceMethod" in form:
            number["voice_method"] = str(form["VoiceMethod"])
        return _json(number, 200)

    # --- test helpers ------------------------------------------------------------------------

    def add_call(self, call_sid: str | None = None) -> str:
        """Register a live (``in-progress``) call; a random SID when None. Returns the SID."""
        sid = call_sid or new_call_sid()
        self.calls[sid] = "in-progress"
        return sid

    def hangups(self, call_sid: str) -> list[TwilioApiRequest]:
        """The ``Status=completed`` requests recorded for ``call_sid``."""
        return [
            r
            for r in self.requests
            if r.call_sid == call_sid and r.fields.get("Status") == "completed"
        ]

    async def wait_request(self, call_sid: str, timeout: float) -> TwilioApiRequest:
        """The first recorded request for ``call_sid``, waiting up to ``timeout`` s.

        Raises:
            TimeoutError: if none arrived in time.
        """
        return await self._wait(lambda r: r.call_sid == call_sid, timeout)

    async def wait_hangup(self, call_sid: str, timeout: float) -> TwilioApiRequest:
        """The first ``Status=completed`` request for ``call_sid``, waiting up to ``timeout`` s.

        Raises:
            TimeoutError: if none arrived in time.
        """
        return await self._wait(
            lambda r: r.call_sid == call_sid and r.fields.get("Status") == "completed", timeout
        )

    async def wait_twiml(self, call_sid: str, timeout: float) -> str:
        """The ``Twiml`` of the first update of ``call_sid`` that carried one, waiting up to
        ``timeout`` s.

        Raises:
            TimeoutError: if none arrived in time.
        """
        request = await self._wait(
            lambda r: r.call_sid == call_sid and "Twiml" in r.fields, timeout
        )
        return request.fields["Twiml"]

    async def _wait(
        self, match: Callable[[TwilioApiRequest], bool], timeout: float
    ) -> TwilioApiRequest:
        return await self._wait_recorded(
            lambda: next((r for r in self.requests if match(r)), None), timeout
        )

    async def post_status(self, call_sid: str, call_status: str, *, duration_s: int = 0) -> int:
        """Post a status callback of the created call ``call_sid`` to its ``StatusCallback``
        (signed); returns the HTTP status the bridge answered.

        Args:
            call_status: ``ringing``, ``in-progress``, ``completed``, ``busy``,
                ``no-answer``, ``failed`` or ``canceled``.
            duration_s: ``CallDuration`` (sent on ``completed``).
        Raises:
            KeyError: no such call was created.
        """
        sent = self.created[call_sid]
        fields = self._callback_fields(call_sid, sent)
        fields["CallStatus"] = call_status
        fields["CallbackSource"] = "call-progress-events"
        if call_status == "completed":
            fields["CallDuration"] = str(duration_s)
        self.calls[call_sid] = call_status
        return await self._post_callback(call_sid, sent["StatusCallback"], fields)

    async def post_amd(self, call_sid: str, answered_by: str) -> int:
        """Post the asynchronous AMD verdict (``AnsweredBy``) of the created call
        ``call_sid`` to its ``AsyncAmdStatusCallback`` (signed); the bridge's HTTP status.

        As Twilio does, the verdicts depend on the call's ``MachineDetection``: ``Enable``
        answers ``machine_start`` for a machine, ``DetectMessageEnd`` waits for the end of
        its greeting and answers ``machine_end_beep``, ``machine_end_silence`` or
        ``machine_end_other``; both may answer ``human``, ``fax`` or ``unknown``.

        Raises:
            KeyError: no such call was created, or it did not ask for AMD.
            ValueError: ``answered_by`` is not a verdict of the call's ``MachineDetection``.
        """
        sent = self.created[call_sid]
        verdicts = AMD_VERDICTS.get(sent.get("MachineDetection", ""), frozenset())
        if answered_by not in verdicts:
            raise ValueError(
                f"AnsweredBy={answered_by!r} is not a verdict of "
                f"MachineDetection={sent.get('MachineDetection')!r}: {sorted(verdicts)}"
            )
        fields = self._callback_fields(call_sid, sent)
        fields.update(AnsweredBy=answered_by, MachineDetectionDuration="2100")
        return await self._post_callback(call_sid, sent["AsyncAmdStatusCallback"], fields)

    def _callback_fields(self, call_sid: str, sent: dict[str, Any]) -> dict[str, str]:
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": call_sid,
            "CallStatus": self.calls.get(call_sid, "queued"),
            "Direction": "outbound-api",
            "From": sent["From"],
            "To": sent["To"],
            "Called": sent["To"],
            "Caller": sent["From"],
            "Timestamp": formatdate(usegmt=True),
        }

    async def _post_callback(self, call_sid: str, url: str, fields: dict[str, str]) -> int:
        signature = RequestValidator(self.auth_token).compute_signature(url, fields)
        if self._http is None:
            self._http = aiohttp.ClientSession()
        headers = {"X-Twilio-Signature": signature, "User-Agent": "TwilioProxy/1.1"}
        async with self._http.post(url, data=fields, headers=headers) as resp:
            status = resp.status
        self.callbacks.append((call_sid, fields, status))
        return status

    async def _before_cleanup(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # --- handlers ----------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        if (
            not self._authenticated(request)
            or request.match_info["account_sid"] != self.account_sid
        ):
            return _json(twilio_error(401, 20003, "Authenticate"), 401, auth_challenge=True)
        if request.content_type != "application/x-www-form-urlencoded":
            return _json(twilio_error(400, 20001, "Expected a form-encoded body"), 400)
        form = await request.post()
        fields: dict[str, Any] = {k: str(v) for k, v in form.items()}
        fields["StatusCallbackEvent"] = [str(v) for v in form.getall("StatusCallbackEvent", [])]
        await self._delay(self.options.update_delay_s)
        if self.options.update_status is not None:
            status = self.options.update_status
            return _json(twilio_error(status, 20500, "Internal Server Error (injected)"), status)
        for required in ("To", "From", "Url"):
            if not fields.get(required):
                return _json(twilio_error(400, 21201, f"Missing parameter {required}"), 400)
        call_sid = new_call_sid()
        self.calls[call_sid] = "queued"
        await self._record(lambda: self.created.__setitem__(call_sid, fields))
        body = self._call_resource(call_sid)
        body.update(direction="outbound-api", to=fields["To"], **{"from": fields["From"]})
        return _json(body, 201)

    async def _update(self, request: web.Request) -> web.Response:
        path_account = request.match_info["account_sid"]
        call_file = request.match_info["call_file"]
        if not self._authenticated(request) or path_account != self.account_sid:
            # Another account's path is treated like bad credentials.
            return _json(twilio_error(401, 20003, "Authenticate"), 401, auth_challenge=True)
        call_sid = call_file.removesuffix(".json")
        if not call_file.endswith(".json") or not _is_call_sid(call_sid):
            return _json(_not_found(request.path), 404)
        if request.content_type != "application/x-www-form-urlencoded":
            return _json(twilio_error(400, 20001, "Expected a form-encoded body"), 400)
        form = await request.post()
        fields = {k: str(v) for k, v in form.items()}
        await self._delay(self.options.update_delay_s)
        await self._record(
            lambda: self.requests.append(TwilioApiRequest(call_sid=call_sid, fields=fields))
        )
        if self.options.update_status is not None:
            status = self.options.update_status
            return _json(twilio_error(status, 20500, "Internal Server Error (injected)"), status)
        if call_sid not in self.calls:
            if not self.options.accept_any_call:
                return _json(_not_found(request.path), 404)
            self.calls[call_sid] = "in-progress"
        return self._apply(call_sid, fields)

    def _apply(self, call_sid: str, fields: dict[str, str]) -> web.Response:
        new_status = fields.get("Status")
        instructions = fields.get("Twiml") or fields.get("Url")
        if new_status is None and instructions is None:
            return _json(twilio_error(400, 20001, "Missing required parameter"), 400)
        if new_status is not None and new_status not in ("completed", "canceled"):
            return _json(twilio_error(400, 21218, f"Invalid Status: {new_status}"), 400)
        current = self.calls[call_sid]
        if new_status is None and current != "in-progress":
            return _json(twilio_error(400, 21220, "Call is not in-progress. Cannot redirect."), 400)
        if new_status is not None and current == "in-progress":
            self.calls[call_sid] = new_status
        return _json(self._call_resource(call_sid), 200)

    def _call_resource(self, call_sid: str) -> dict[str, Any]:
        return {
            "sid": call_sid,
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "status": self.calls[call_sid],
            "direction": "inbound",
            "from": "+14155550100",
            "to": "+14155550199",
            "date_updated": formatdate(usegmt=True),
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{call_sid}.json",
        }

    def _authenticated(self, request: web.Request) -> bool:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            self.refused.append("no Basic Authorization header")
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            self.refused.append("Basic credentials are not base64 UTF-8")
            return False
        expected = f"{self.account_sid}:{self.auth_token}"
        if not hmac.compare_digest(decoded.encode(), expected.encode()):
            self.refused.append("wrong account SID or auth token")
            return False
        return True


def _is_call_sid(value: str) -> bool:
    return len(value) == 34 and value.startswith("CA") and set(value[2:]) <= _HEX


def _not_found(path: str) -> dict[str, Any]:
    return twilio_error(404, 20404, f"The requested resource {path} was not found")


def _json(body: dict[str, Any], status: int, *, auth_challenge: bool = False) -> web.Response:
    headers = {"WWW-Authenticate": 'Basic realm="Twilio API"'} if auth_challenge else None
    return web.json_response(body, status=status, headers=headers)

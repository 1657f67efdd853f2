"""Twilio IncomingPhoneNumbers: read and set a number's Voice URL (the set-up tools'
``change_url.py twilio`` and ``vonage-bridge doctor``; never the call path). Shell: I/O.

- find: ``GET {TWILIO_API_URL}/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json
  ?PhoneNumber=+E164`` answers ``{"incoming_phone_numbers": [{"sid": "PN...",
  "phone_number": "+1...", "voice_url", "voice_method", ...}], ...}``;
- update: ``POST .../IncomingPhoneNumbers/{Sid}.json`` with the form fields ``VoiceUrl`` and
  ``VoiceMethod=POST`` answers the updated number.

HTTP Basic auth ``AccountSid:AuthToken``. Errors: :class:`~..errors.TwilioApiError` (401 bad
credentials, a number the account does not have, other statuses, unreachable),
:class:`~..errors.UpstreamTimeout`.
Source: https://www.twilio.com/docs/phone-numbers/api/incomingphonenumber-resource
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from ..errors import TwilioApiError
from ..rest import RestApi
from .rest import API_VERSION, _error_body
from .routes import ANSWER_PATH

__all__ = ["ANSWER_PATH", "TwilioNumber", "TwilioNumbers", "VoiceUrlChange", "point_voice_url"]

VOICE_METHOD = "POST"
"""The method our Voice webhook (``POST /twilio/incoming-call``) takes."""


@dataclass(frozen=True, slots=True)
class TwilioNumber:
    """One IncomingPhoneNumber: its ``sid`` (``PN...``), ``phone_number`` (``+E164``),
    ``voice_url`` and ``voice_method`` (None when not set)."""

    sid: str
    phone_number: str
    voice_url: str | None
    voice_method: str | None

    @classmethod
    def from_json(cls, doc: Any) -> TwilioNumber:
        """Raises: TwilioApiError: the document is not a number resource."""
        if not isinstance(doc, dict) or not isinstance(doc.get("sid"), str):
            raise TwilioApiError("Twilio answered without an IncomingPhoneNumber resource")
        url, method = doc.get("voice_url"), doc.get("voice_method")
        return cls(
            sid=doc["sid"],
            phone_number=str(doc.get("phone_number", "")),
            voice_url=url if isinstance(url, str) and url else None,
            voice_method=method if isinstance(method, str) else None,
        )


class TwilioNumbers:
    """The IncomingPhoneNumbers resource of one account.

    Args:
        http: a client session.
        api_url: ``TWILIO_API_URL`` (no trailing slash).
        account_sid, auth_token: the account's credentials.
        timeout_s: whole-request bound of each request, s.
    """

    def __init__(
        self,
        http: aiohttp.ClientSession,
        *,
        api_url: str,
        account_sid: str,
        auth_token: str,
        timeout_s: float = 10.0,
    ) -> None:
        self._api = RestApi(http, "Twilio", "Twilio", timeout_s, TwilioApiError, _error_body)
        self._headers = {
            "Accept": "application/json",
            "Authorization": aiohttp.encode_basic_auth(account_sid, auth_token),
        }
        self._base = f"{api_url}/{API_VERSION}/Accounts/{account_sid}/IncomingPhoneNumbers"

    async def find(self, phone_number: str) -> TwilioNumber:
        """The account's number ``phone_number`` (E.164 digits, ``+`` optional).

        Raises:
            TwilioApiError: refused, unreachable, or the account has no such number
                (``status`` 404).
            UpstreamTimeout: no answer in time.
        """
        e164 = "+" + phone_number.lstrip("+")
        url = str(URL(f"{self._base}.json").with_query(PhoneNumber=e164))
        reply = await self._api.request("GET", url, "list numbers", headers=self._headers)
        found = reply.data.get("incoming_phone_numbers") if isinstance(reply.data, dict) else None
        for doc in found if isinstance(found, list) else []:
            if isinstance(doc, dict) and doc.get("phone_number") == e164:
                return TwilioNumber.from_json(doc)
        raise TwilioApiError(
            f"the Twilio account has no number {e164[:-4]}**** (TWILIO_PHONE_NUMBER); "
            "check the number and TWILIO_ACCOUNT_SID",
            status=404,
        )

    async def set_voice_url(self, number: TwilioNumber, voice_url: str) -> TwilioNumber:
        """Set ``number``'s Voice URL to ``voice_url`` (method POST); the updated number.

        Raises:
            TwilioApiError, UpstreamTimeout: as :meth:`find`.
        """
        url = f"{self._base}/{number.sid}.json"
        form = {"VoiceUrl": voice_url, "VoiceMethod": VOICE_METHOD}
        reply = await self._api.request(
            "POST", url, "update number", headers=self._headers, form=form
        )
        return TwilioNumber.from_json(reply.data)


@dataclass(frozen=True, slots=True)
class VoiceUrlChange:
    """What :func:`point_voice_url` did: the number before, the URL wanted, whether it was
    sent (``applied``) and whether it already pointed there (``unchanged``)."""

    before: TwilioNumber
    voice_url: str
    applied: bool
    unchanged: bool

    def describe(self) -> str:
        """A few lines for a person (the number shown without its last four digits)."""
        number = self.before.phone_number[:-4] + "****"
        old = f"{self.before.voice_method or '?'} {self.before.voice_url or '(not set)'}"
        if self.unchanged:
            return f"Twilio number {number} ({self.before.sid}): unchanged, voice URL {old}"
        verb = "updated" if self.applied else "dry run, nothing sent; would update"
        return (
            f"Twilio number {number} ({self.before.sid}): {verb}\n"
            f"  voice_url: {old}  ->  {VOICE_METHOD} {self.voice_url}"
        )


async def point_voice_url(
    numbers: TwilioNumbers, phone_number: str, voice_url: str, *, dry_run: bool = False
) -> VoiceUrlChange:
    """Point ``phone_number``'s Voice URL at ``voice_url`` (POST), unless it already is;
    with ``dry_run`` only read it.

    Raises:
        TwilioApiError, UpstreamTimeout: as :meth:`TwilioNumbers.find`.
    """
    number = await numbers.find(phone_number)
    unchanged = number.voice_url == voice_url and (number.voice_method or "").upper() == "POST"
    if not unchanged and not dry_run:
        await numbers.set_voice_url(number, voice_url)
    return VoiceUrlChange(number, voice_url, not unchanged and not dry_run, unchanged)

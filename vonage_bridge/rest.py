"""One JSON-over-HTTP request for the REST clients (Vonage Voice and Application APIs, Twilio's
Call resource, OpenAI SIP call control). Shell: does I/O.

:func:`request_json` sends one request through the app's shared ``aiohttp.ClientSession``
(a JSON or form body, the client's auth header), bounded by a whole-request timeout, and
returns a :class:`JsonReply` (status, parsed JSON, text). Failures become the exception
tree's errors::

    TimeoutError           -> UpstreamTimeout  504  "{what}: no answer from {service} within T s"
    aiohttp.ClientError    -> error(message)   502  "{what}: {service} unreachable" (no host,
                                                    no exception text: the aiohttp error is
                                                    chained as ``__cause__``, for the log)
    status not 200-299     -> refused(reply)        the client's own error (its status, its
                                                    error-body fields, its message)

Each client keeps the provider knowledge (URL, auth, error body, messages) and only the
mechanics live here. A client whose refusals all read alike (the Vonage Voice API, Twilio)
describes its API once as a :class:`RestApi`: its name, its error class and how to read its
error body. A 3xx is not success either: aiohttp has already followed redirects, so
a 3xx that reaches us is an answer we cannot use.

Why the providers' SDKs are not used for these requests:

- Vonage: the SDK is synchronous (requests), always builds ``https://{host}`` URLs (no
  plain-http loopback fake), re-parses the PEM key for every request (~72 ms CPU), and
  ``import vonage`` takes ~0.9 s.
- Twilio 9.x does have an async client (``AsyncTwilioHttpClient`` and ``update_async``), and
  ``client.api.base_url`` can point it at the plain-http loopback fake (``sim/twilio_api.py``):
  that works. Measured with ``bench/twilio_client.py`` on the 2-core development machine
  (Python 3.11.7, twilio 9.13.0, aiohttp 3.14.5):

  * import: ``twilio.rest`` + the async client + the Call resource add **~83 ms** to a
    process that already imports aiohttp and the twilio validator/TwiML modules (38 ms for
    ``twilio.rest`` alone); median of 9 fresh interpreters;
  * per request (``Calls(sid).update`` with ``Twiml``, client and fake in one process, 3
    rounds of 500 after a warm-up): **0.29-0.31 ms CPU** through this module, **0.34-0.36
    ms** through the SDK on a quiet machine (0.28-0.41 against 0.33-0.65 ms while other
    work shared it): the SDK costs ~0.05 ms more per request.

  Decision: keep aiohttp. The CPU difference is negligible for two requests per call, but
  the SDK opens its own ``ClientSession`` (outside the app's ``cleanup_ctx``; it must be
  closed apart), takes one client-wide timeout, raises ``TwilioRestException`` that would
  still need mapping onto :class:`~.errors.TwilioApiError`, and adds the import time, while
  saving ~20 lines.

Source: RFC 9110 section 15 (status classes, https://www.rfc-editor.org/rfc/rfc9110#section-15);
aiohttp client reference (https://docs.aiohttp.org/en/stable/client_reference.html);
Twilio helper library (https://www.twilio.com/docs/libraries/reference/twilio-python/).
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

import aiohttp

from .errors import BridgeError, UpstreamError, UpstreamTimeout

__all__ = ["JsonReply", "RestApi", "request_json"]

E = TypeVar("E", bound=UpstreamError)


@dataclass(frozen=True, slots=True)
class JsonReply:
    """An HTTP answer: ``status``; ``data``, the body parsed as JSON (None when it is empty
    or not JSON); ``text``, the body decoded as UTF-8 (bad bytes replaced)."""

    status: int
    data: Any
    text: str

    @property
    def ok(self) -> bool:
        """A 2xx status."""
        return 200 <= self.status < 300


async def request_json(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    what: str,
    service: str,
    timeout_s: float,
    headers: Mapping[str, str],
    refused: Callable[[JsonReply], BridgeError],
    error: Callable[[str], UpstreamError] = UpstreamError,
    json: Any = None,
    form: Mapping[str, str] | None = None,
    hint: str = "",
) -> JsonReply:
    """Send one request and return the 2xx answer.

    Args:
        http: the shared client session.
        method: ``GET``, ``POST``, ``PUT``...
        url: absolute ``http(s)://`` URL.
        what: the action, first in every message (``"Twilio hang up"``).
        service: who answers, for messages (``"Twilio"``, ``"the Vonage API"``).
        timeout_s: whole-request bound, connect to last byte.
        headers: auth and ``Accept`` headers.
        refused: builds the error for a non-2xx answer (raised as is).
        error: the :class:`~.errors.UpstreamError` class (or factory) for an unreachable
            server; called with the message ``"{what}: {service} unreachable{hint}"``. Its
            ``status`` (if any) stays None; the aiohttp error is its ``__cause__``.
        json: a JSON body (not sent when None).
        form: an ``application/x-www-form-urlencoded`` body instead.
        hint: appended to the timeout and unreachable messages (``"; check VONAGE_API_URL"``).
    Returns:
        The 2xx answer.
    Raises:
        UpstreamTimeout: no complete answer within ``timeout_s``.
        UpstreamError: ``error(...)``: DNS, refused connection, reset, bad HTTP.
        BridgeError: ``refused(reply)`` for a status outside 200-299.
        ValueError: both ``json`` and ``form`` given.
    """
    if json is not None and form is not None:
        raise ValueError("request_json: give a json body or a form body, not both")
    try:
        async with http.request(
            method,
            url,
            json=json,
            data=form,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as resp:
            status = resp.status
            raw = await resp.read()
    except TimeoutError:  # before ClientError: ServerTimeoutError is both
        raise UpstreamTimeout(
            f"{what}: no answer from {service} within {timeout_s:g} s{hint}"
        ) from None
    except aiohttp.ClientError as exc:
        # The message may reach an API caller (a 502 body): no host, no exception text. The
        # aiohttp error stays chained as ``__cause__`` for the log.
        raise error(f"{what}: {service} unreachable{hint}") from exc
    text = raw.decode("utf-8", errors="replace")
    reply = JsonReply(status, _json_or_none(text), text)
    if not reply.ok:
        raise refused(reply)
    return reply


def _json_or_none(text: str) -> Any:
    if not text.strip():
        return None
    try:
        return jsonlib.loads(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class RestApi(Generic[E]):
    """One provider's REST API as its client calls it: requests through :func:`request_json`,
    and every refusal (a non-2xx answer) turned into the provider's error the same way.

    Attributes:
        http: the app's shared client session.
        name: the provider, first in every message (``"Twilio"``: ``"Twilio hang up
            failed (HTTP 401): ..."``).
        service: who answers, for the unreachable and timeout messages (``"the Vonage
            API"``).
        timeout_s: whole-request bound of each request, s.
        error: the provider's :class:`~.errors.UpstreamError` class; called with the message
            (unreachable), or with the message, ``status=`` and the fields ``error_body``
            read (refused).
        error_body: reads the provider's error body (``JsonReply.data``, None when not JSON)
            into the text for the message and the keyword fields for ``error``.
    """

    http: aiohttp.ClientSession
    name: str
    service: str
    timeout_s: float
    error: Callable[..., E]
    error_body: Callable[[Any], tuple[str, dict[str, Any]]]

    async def request(
        self,
        method: str,
        url: str,
        what: str,
        *,
        headers: Mapping[str, str],
        json: Any = None,
        form: Mapping[str, str] | None = None,
    ) -> JsonReply:
        """Send one request (``what``: the action, e.g. ``"hang up"``) and return the 2xx
        answer.

        Raises:
            UpstreamTimeout: no complete answer within :attr:`timeout_s`.
            E: :attr:`error`, unreachable or refused (:meth:`refused`).
        """
        return await request_json(
            self.http,
            method,
            url,
            what=f"{self.name} {what}",
            service=self.service,
            timeout_s=self.timeout_s,
            headers=headers,
            json=json,
            form=form,
            error=self.error,
            refused=partial(self.refused, what),
        )

    def refused(self, what: str, reply: JsonReply) -> E:
        """The error for a non-2xx ``reply`` to ``what``: ``"{name} {what} failed (HTTP
        {status}): {text}"``, with ``status`` and the error body's fields."""
        text, fields = self.error_body(reply.data)
        return self.error(
            f"{self.name} {what} failed (HTTP {reply.status}): {text}",
            status=reply.status,
            **fields,
        )

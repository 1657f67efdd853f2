"""Exception tree of vonage-bridge. Pure: no I/O.

::

    BridgeError                    base: .code (snake_case), .http_status, .close_code
    ├── ConfigError                start-up only; lists every bad variable
    ├── RequestError         4xx   bad input from a webhook or API caller
    │   ├── Unauthorized     401   missing API key; Vonage/OpenAI signature missing or bad
    │   ├── Forbidden        403   wrong API key, bad Twilio signature, bad media token
    │   ├── InvalidRequest   400   malformed body or field
    │   │   ├── JsonTooDeep  400   JSON nested too deep to parse (also a ValueError)
    │   │   └── InvalidField 400   one field of a request body is bad; .field names it
    │   ├── NotFound         404   no such thing (an assistant)
    │   ├── Conflict         409   clashes with what is stored (a number bound elsewhere)
    │   ├── TooManyRequests  429   over a rate limit (unsigned calls a minute)
    │   └── WebhookRejected  400   an OpenAI webhook failed its signature check or is unusable
    ├── ProtocolError              a wire format was broken
    │   ├── RemoteProtocolError    Vonage/OpenAI sent something invalid -> close 1003/1007 + log
    │   └── LocalProtocolError     we tried to send something invalid (a bug) -> 1011 + log
    ├── UpstreamError        502   OpenAI/Vonage/Twilio failed or could not be reached
    │   ├── RealtimeConnectError   the Realtime socket could not be opened
    │   ├── VonageApiError   502   the Vonage Voice REST API refused or failed a request
    │   ├── ApplicationApiError 502  the Vonage Application API refused or failed a request
    │   ├── TwilioApiError   502   Twilio's REST API refused or failed a request
    │   └── UpstreamTimeout  504   an upstream request took longer than its timeout
    ├── CallGone                   OpenAI answered 404 to a SIP call control: the call ended
    └── FeatureDisabled      503   an optional feature is off (its settings are missing)
        └── StoreUnavailable 503   the call-record database is down or unusable

Pure modules raise these; only ``web/`` and ``bridge.py`` turn them into HTTP responses or
WebSocket close codes. Close codes are RFC 6455 section 7.4.1 numbers
(https://www.rfc-editor.org/rfc/rfc6455#section-7.4.1), named by ``aiohttp.WSCloseCode``: an
``IntEnum`` (data, no I/O), the one name the pure ring may take from aiohttp.
"""

from __future__ import annotations

from aiohttp import WSCloseCode


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""

    code = "bridge_error"
    http_status = 500
    close_code: WSCloseCode = WSCloseCode.INTERNAL_ERROR

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class ConfigError(BridgeError):
    """Configuration is missing or invalid; ``problems`` names every bad variable."""

    code = "config_error"

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid configuration ({len(self.problems)} problem(s)):\n{lines}")


class RequestError(BridgeError):
    """Bad input from an HTTP caller (a webhook or an API client)."""

    code = "bad_request"
    http_status = 400
    close_code = WSCloseCode.POLICY_VIOLATION


class Unauthorized(RequestError):
    """401: an API key missing, or a Vonage or OpenAI webhook signature missing, invalid or
    replayed."""

    code = "unauthorized"
    http_status = 401


class Forbidden(RequestError):
    """403: a wrong API key, a Twilio signature missing or wrong, a bad or spent media token, a
    media socket or stream refused for its call."""

    code = "forbidden"
    http_status = 403


class InvalidRequest(RequestError):
    """400: a malformed body, field or query parameter."""

    code = "invalid_request"
    http_status = 400


class InvalidField(InvalidRequest):
    """One field of a request body is bad (``POST /connect``): 400 with ``code`` and
    ``field``; the message starts with ``"{field}: "``.

    Attributes:
        field: the field's name (``to``, ``variables``...; ``body`` for unknown fields).
    """

    def __init__(self, field: str, message: str, *, code: str = "invalid_field") -> None:
        super().__init__(f"{field}: {message}", code=code)
        self.field = field


class NotFound(RequestError):
    """What the request names does not exist (``GET /assistants/{name}``)."""

    code = "not_found"
    http_status = 404


class Conflict(RequestError):
    """The request clashes with what is stored: a phone number already bound to another
    assistant (RFC 9110 section 15.5.10)."""

    code = "conflict"
    http_status = 409


class TooManyRequests(RequestError):
    """Over a rate limit; the caller may try again later (RFC 6585 section 4)."""

    code = "too_many_requests"
    http_status = 429


class JsonTooDeep(InvalidRequest, ValueError):
    """JSON nested deeper than allowed (``core.jsonbody.loads_bounded``).

    Also a ``ValueError``, so code that turns ``json.loads``'s ``ValueError`` into its own
    error (a wire module's ``RemoteProtocolError``) handles it too.
    Source: RFC 8259 section 9 (https://www.rfc-editor.org/rfc/rfc8259#section-9).
    """

    code = "json_too_deep"

    def __init__(self, max_depth: int) -> None:
        super().__init__(f"JSON nested deeper than {max_depth} levels")
        self.max_depth = max_depth


class WebhookRejected(RequestError):
    """An OpenAI webhook is not from OpenAI (bad, missing or stale Standard Webhooks
    signature) or is unusable (not a JSON event, an incoming call without a call id).

    ``reason`` (also ``message``) says which; the route answers 401 or 400 with it.
    Source: https://www.standardwebhooks.com/ (signature scheme);
    https://platform.openai.com/docs/guides/realtime-sip (``realtime.call.incoming``).
    """

    code = "webhook_rejected"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProtocolError(BridgeError):
    """A wire format was broken."""

    code = "protocol_error"


class RemoteProtocolError(ProtocolError):
    """The other side (Vonage or OpenAI) sent something that breaks its own protocol."""

    code = "remote_protocol_error"
    close_code = WSCloseCode.UNSUPPORTED_DATA


class LocalProtocolError(ProtocolError):
    """We tried to send something invalid: a bug on our side."""

    code = "local_protocol_error"
    close_code = WSCloseCode.INTERNAL_ERROR


class UpstreamError(BridgeError):
    """A service we depend on failed or timed out."""

    code = "upstream_error"
    http_status = 502
    close_code = WSCloseCode.INTERNAL_ERROR


class RealtimeConnectError(UpstreamError):
    """The OpenAI Realtime WebSocket could not be opened (bad key, 5xx, timeout, refused)."""

    code = "realtime_connect_failed"


class VonageApiError(UpstreamError):
    """The Vonage Voice REST API failed a request: ``status`` is its HTTP status (None when it
    could not be reached), ``title`` and ``detail`` come from its error body."""

    code = "vonage_api_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        title: str | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.detail = detail


class ApplicationApiError(UpstreamError):
    """The Vonage Application API refused the request, failed, or could not be reached.

    ``message`` is meant for a person: it says what went wrong and which variable to check.
    ``status`` is the HTTP status, or None for network errors.
    Source: https://developer.vonage.com/en/api/application.v2
    """

    code = "vonage_application_api_error"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TwilioApiError(UpstreamError):
    """Twilio's REST API refused or failed a request, or could not be reached.

    ``status`` is the HTTP status (None when Twilio could not be reached); ``twilio_code``
    and ``twilio_message`` come from its error body ``{"code", "message", "more_info",
    "status"}`` when it sent one.
    Source: https://www.twilio.com/docs/voice/api/call-resource
    """

    code = "twilio_api_error"

    ALREADY_ENDED_CODES = frozenset({20404, 21220})
    """Twilio error codes meaning the call is gone: 20404 "resource not found" (HTTP 404)
    and 21220 "Invalid call state" (HTTP 400, the call is no longer in progress).
    Source: https://www.twilio.com/docs/api/errors/20404 and /21220."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        twilio_code: int | None = None,
        twilio_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.twilio_code = twilio_code
        self.twilio_message = twilio_message

    @property
    def call_gone(self) -> bool:
        """Whether Twilio said the call no longer exists or is no longer in progress."""
        return self.status == 404 or self.twilio_code in self.ALREADY_ENDED_CODES


class UpstreamTimeout(UpstreamError):
    """An upstream request did not complete within its configured timeout."""

    code = "upstream_timeout"
    http_status = 504


class CallGone(BridgeError):
    """OpenAI answered 404 to a SIP call control request: the call no longer exists (the
    caller hung up, or it already ended).

    Not an :class:`UpstreamError` on purpose: it is an answer, not a failure, and callers
    handle it apart (``except UpstreamError`` does not swallow it). Raised in background
    tasks only, never turned into an HTTP answer.
    Source: https://platform.openai.com/docs/guides/realtime-sip
    """

    code = "call_gone"


class FeatureDisabled(BridgeError):
    """An optional feature was asked for but is off, because its settings are missing."""

    code = "feature_disabled"
    http_status = 503


class StoreUnavailable(FeatureDisabled):
    """The call-record database could not be reached or used (HTTP 503
    ``call_records_unavailable``)."""

    code = "call_records_unavailable"

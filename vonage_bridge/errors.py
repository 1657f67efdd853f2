"""Exception tree of vonage-bridge. Pure: no I/O.

::

    BridgeError                    base: .code (snake_case), .http_status, .close_code
    ├── ConfigError                start-up only; lists every bad variable
    ├── RequestError         4xx   bad input from a webhook or API caller
    │   ├── Unauthorized     401   missing credentials
    │   ├── Forbidden        403   wrong credentials, bad media token
    │   └── InvalidRequest   400   malformed body or field
    ├── ProtocolError              a wire format was broken
    │   ├── RemoteProtocolError    Vonage/OpenAI sent something invalid -> close 1003/1007 + log
    │   └── LocalProtocolError     we tried to send something invalid (a bug) -> 1011 + log
    ├── UpstreamError        502   OpenAI/Vonage failed or timed out
    │   ├── RealtimeConnectError   the Realtime socket could not be opened
    │   ├── VonageApiError   502   the Vonage Voice REST API refused or failed a request
    │   └── UpstreamTimeout  504   an upstream request took longer than its timeout
    └── FeatureDisabled      503   an optional feature is off (its settings are missing)

Pure modules raise these; only ``web/`` and ``bridge.py`` turn them into HTTP responses or
WebSocket close codes.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every error the bridge raises on purpose."""

    code = "bridge_error"
    http_status = 500
    close_code = 1011

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
    close_code = 1008


class Unauthorized(RequestError):
    code = "unauthorized"
    http_status = 401


class Forbidden(RequestError):
    code = "forbidden"
    http_status = 403


class InvalidRequest(RequestError):
    code = "invalid_request"
    http_status = 400


class ProtocolError(BridgeError):
    """A wire format was broken."""

    code = "protocol_error"


class RemoteProtocolError(ProtocolError):
    """The other side (Vonage or OpenAI) sent something that breaks its own protocol."""

    code = "remote_protocol_error"
    close_code = 1003


class LocalProtocolError(ProtocolError):
    """We tried to send something invalid: a bug on our side."""

    code = "local_protocol_error"
    close_code = 1011


class UpstreamError(BridgeError):
    """A service we depend on failed or timed out."""

    code = "upstream_error"
    http_status = 502
    close_code = 1011


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


class UpstreamTimeout(UpstreamError):
    """An upstream request did not complete within its configured timeout."""

    code = "upstream_timeout"
    http_status = 504


class FeatureDisabled(BridgeError):
    """An optional feature was asked for but is off, because its settings are missing."""

    code = "feature_disabled"
    http_status = 503

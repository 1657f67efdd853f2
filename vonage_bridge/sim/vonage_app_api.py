"""Fake Vonage Application API v2: ``GET|PUT /v2/applications/{id}`` on 127.0.0.1.

Entry ring (I/O): used by the integration tests of ``change_url.py``, never by the call path.

It holds one application document shaped like a real GET answer (the API spec; the SDK's
``get_application.json`` test fixture): voice and messages capabilities, ``keys.public_key``,
``privacy``, ``fallback_answer_url``, timeouts inside the webhook objects, ``signed_callbacks``,
``region``, ``id`` and ``_links``. It behaves as the spec says:

- HTTP Basic auth with the configured key and secret, else 401 with Vonage's error body
  (``type``, ``title``, ``detail``, ``instance``) [spec] ``common_errors.yml``.
- Another application id: 404 with the same body shape.
- PUT: ``Content-Type: application/json`` (else 415); ``name`` required (else 400 with
  ``invalid_parameters``). With ``strict_put_schema`` (the default) a top-level field outside
  the request schema (``name``, ``keys``, ``capabilities``, ``privacy``) is a 400 too: the
  spec's PUT body has no ``id`` or ``_links``. Whether real Vonage ignores or rejects them was
  not verified; the fake takes the strict reading so a client that resends them is caught.
- A successful PUT replaces the document (``id`` and ``_links`` kept) and answers 200 with it.

Every PUT body that passed auth is recorded in ``puts``; every request in ``requests``.
Knobs on :class:`FakeApplicationApiOptions` force an error status per method.

Sources (cited below by their bracketed names): https://developer.vonage.com/en/api/application.v2;
[spec] its OpenAPI definition, ``definitions/application.v2.yml`` in
https://github.com/Nexmo/api-specification; [vonage-application] the ``vonage-application``
2.0.2 package (https://pypi.org/project/vonage-application/).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .server import LoopbackServer

__all__ = [
    "SIM_API_KEY",
    "SIM_API_SECRET",
    "SIM_APPLICATION_ID",
    "FakeApplicationApiOptions",
    "FakeVonageApplicationApi",
    "sample_application",
]

JsonObject = dict[str, Any]

SIM_API_KEY = "abcd1234"
SIM_API_SECRET = "sim-api-secret-0123"
SIM_APPLICATION_ID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"

PUT_FIELDS = frozenset({"name", "keys", "capabilities", "privacy"})
"""Top-level fields of the PUT request body [spec] plus ``privacy`` [vonage-application]."""

_PAYLOAD = "/application#payload-validation"

_TITLES = {
    400: "Bad Request",
    401: "Invalid credentials supplied",
    404: "Not Found",
    415: "Unsupported Content-Type header",
    429: "Rate Limit Hit",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def sample_application(application_id: str = SIM_APPLICATION_ID) -> JsonObject:
    """A realistic GET answer: voice + messages capabilities, keys, privacy, timeouts."""
    return {
        "id": application_id,
        "name": "vonage-bridge (sim)",
        "keys": {
            "public_key": (
                "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAsim"
                "\n-----END PUBLIC KEY-----\n"
            )
        },
        "privacy": {"improve_ai": False},
        "capabilities": {
            "voice": {
                "webhooks": {
                    "answer_url": {
                        "address": "https://old-tunnel.example.app/answer",
                        "http_method": "GET",
                        "connect_timeout": 1000,
                        "socket_timeout": 5000,
                    },
                    "fallback_answer_url": {
                        "address": "https://fallback.example.com/answer",
                        "http_method": "GET",
                        "connect_timeout": 500,
                        "socket_timeout": 3000,
                    },
                    "event_url": {
                        "address": "https://old-tunnel.example.app/events",
                        "http_method": "POST",
                        "connect_timeout": 1000,
                        "socket_timeout": 10000,
                    },
                },
                "signed_callbacks": True,
                "conversations_ttl": 48,
                "leg_persistence_time": 7,
                "region": "eu-west",
            },
            "messages": {
                "version": "v1",
                "webhooks": {
                    "inbound_url": {
                        "address": "https://messages.example.com/inbound",
                        "http_method": "POST",
                    },
                    "status_url": {
                        "address": "https://messages.example.com/status",
                        "http_method": "POST",
                    },
                },
            },
        },
        "_links": {"self": {"href": f"/v2/applications/{application_id}"}},
    }


@dataclass(slots=True)
class FakeApplicationApiOptions:
    """Error injection; read on every request.

    Attributes:
        get_status: answer every GET with this status (and a Vonage error body) instead.
        put_status: answer every PUT with this status instead (the body is still recorded).
        strict_put_schema: 400 for PUT fields outside :data:`PUT_FIELDS` (see module doc).
    """

    get_status: int | None = None
    put_status: int | None = None
    strict_put_schema: bool = True


@dataclass(slots=True)
class _Request:
    method: str
    path: str
    status: int
    authorization: str | None = field(default=None, repr=False)


class FakeVonageApplicationApi(LoopbackServer):
    """The fake server. Usage::

        async with FakeVonageApplicationApi() as api:
            env = {"VONAGE_API_URL": api.base_url, "VONAGE_API_KEY": api.api_key, ...}
            ...
            assert api.puts[-1]["name"] == "vonage-bridge (sim)"

    Attributes:
        api_key, api_secret: the accepted Basic credentials.
        application: the current document (replaced by each successful PUT).
        options: the error knobs.
        puts: every authenticated PUT body, parsed, in order (also the rejected ones).
        requests: one :class:`_Request` (method, path, status) per request.
    """

    def __init__(
        self,
        *,
        api_key: str = SIM_API_KEY,
        api_secret: str = SIM_API_SECRET,
        application: JsonObject | None = None,
        options: FakeApplicationApiOptions | None = None,
    ) -> None:
        self._init_server()
        self.api_key = api_key
        self.api_secret = api_secret
        self.application: JsonObject = (
            application if application is not None else sample_application()
        )
        self.options = options if options is not None else FakeApplicationApiOptions()
        self.puts: list[JsonObject] = []
        self.requests: list[_Request] = []
        self.app.router.add_route("*", "/{tail:.*}", self._handle)

    @property
    def application_id(self) -> str:
        return str(self.application["id"])

    # --- handler ------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        response = await self._answer(request)
        self.requests.append(
            _Request(
                request.method,
                request.path,
                response.status,
                request.headers.get("Authorization"),
            )
        )
        return response

    async def _answer(self, request: web.Request) -> web.Response:
        if not self._authorized(request.headers.get("Authorization", "")):
            return _error(401, "You did not provide correct credentials.", "#unauthorized")
        prefix = "/v2/applications/"
        app_id = request.path[len(prefix) :] if request.path.startswith(prefix) else ""
        if not app_id or "/" in app_id or request.method not in ("GET", "PUT"):
            return _error(404, f"Resource {request.path!r} could not be found", "#not-found")
        if app_id != self.application_id:
            return _error(
                404, f"ID '{app_id}' does not exist, or you do not have access", "#not-found"
            )
        if request.method == "GET":
            if self.options.get_status is not None:
                return _error(self.options.get_status, "injected failure", "#injected")
            return web.json_response(self.application)
        return await self._put(request)

    async def _put(self, request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return _error(
                415,
                "Unsupported Content-Type header provided. Must be one of the following: "
                "'application/json'",
                "#content-type-header",
            )
        try:
            body = json.loads(await request.text())
        except ValueError:
            return _error(400, "The request body is not valid JSON", _PAYLOAD)
        if not isinstance(body, dict):
            return _error(400, "The request body must be a JSON object", _PAYLOAD)
        self.puts.append(copy.deepcopy(body))
        if self.options.put_status is not None:
            return _error(self.options.put_status, "injected failure", "#injected")
        invalid = []
        if not isinstance(body.get("name"), str) or not body["name"]:
            invalid.append({"name": "name", "reason": "is required"})
        if self.options.strict_put_schema:
            invalid.extend(
                {"name": key, "reason": "is not a recognised field"}
                for key in sorted(set(body) - PUT_FIELDS)
            )
        if invalid:
            return _error(
                400,
                "The request failed due to validation errors",
                _PAYLOAD,
                invalid_parameters=invalid,
            )
        updated = copy.deepcopy(body)
        updated["id"] = self.application_id
        updated["_links"] = copy.deepcopy(self.application.get("_links", {}))
        self.application = updated
        return web.json_response(updated)

    def _authorized(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        return decoded == f"{self.api_key}:{self.api_secret}"


def _error(status: int, detail: str, kind: str, **extra: Any) -> web.Response:
    """A Vonage-style error body; ``kind`` ends the ``type`` URL (``#not-found``).

    Source: [spec] ``common_errors.yml``, ``application.v2.yml`` InvalidPayloadError.
    """
    body: JsonObject = {
        "type": f"https://developer.nexmo.com/api-errors{kind}",
        "title": _TITLES.get(status, "Error"),
        "detail": detail,
        "instance": uuid.uuid4().hex,
        **extra,
    }
    return web.json_response(body, status=status)

"""Fake Vonage Voice REST API (calls resource) on aiohttp, bound to 127.0.0.1, plus a signer
that signs webhooks the way Vonage does.

Entry ring (I/O): used by the integration tests, never by the core.

- ``POST /v1/calls`` checks the ``Authorization: Bearer`` application JWT (RS256, verified
  with the application's public key; ``application_id`` must match and ``iat``, ``jti`` and
  ``exp`` must be present), records the body and answers 201
  ``{uuid, status: "started", direction: "outbound", conversation_uuid}``.
- ``PUT /v1/calls/{uuid}`` checks the JWT the same way, records the body and answers 204.
- A bad or missing JWT gets 401 with Vonage's error shape
  ``{"type", "title", "detail", "instance"}``.
- Knobs (:class:`FakeVoiceApiOptions`) inject an error status and body, or a delay (to
  exercise timeouts), for either request.
- :meth:`FakeVoiceApi.post_event` posts a call status event to the event URL a created call
  gave, as Vonage does (JSON, POST; ``uuid``, or ``call_uuid`` for ``machine`` / ``human``
  from Advanced Machine Detection, with ``sub_state: beep_start`` when the beep is heard;
  ``duration`` and friends on ``completed``), signed like a real one when the fake has the
  signature secret.

:func:`sign_webhook` builds the HS256 JWT Vonage puts on signed webhooks and on the media
socket's handshake (``authorization: {"type": "vonage"}``).

Sources: the Voice API reference (https://developer.vonage.com/en/api/voice; its OpenAPI
definition ``definitions/voice.yml`` in https://github.com/Nexmo/api-specification); the
application JWT's claims (https://developer.vonage.com/en/getting-started/concepts/authentication);
signed webhooks (https://developer.vonage.com/en/voice/voice-api/guides/signed-webhooks) and
their ``payload_hash``; the event webhook
(https://developer.vonage.com/en/voice/voice-api/webhook-reference#event-webhook) and its (https://api.support.vonage.com/hc/en-us/articles/19033783342876).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from .server import LoopbackServer

__all__ = [
    "FakeVoiceApi",
    "FakeVoiceApiOptions",
    "application_test_key",
    "query_json",
    "sign_webhook",
    "vonage_error",
]

logger = logging.getLogger(__name__)


@functools.cache
def application_test_key() -> RSAPrivateKey:
    """An RSA-2048 key standing in for a Vonage application's key; made once per process
    (key generation takes tens of ms). Never use it outside local fakes."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def vonage_error(status: int, title: str, detail: str) -> dict[str, str]:
    """A Vonage error body: ``{"type", "title", "detail", "instance"}`` (``voice.yml`` in
    https://github.com/Nexmo/api-specification)."""
    return {
        "type": f"https://developer.nexmo.com/api-errors#{status}",
        "title": title,
        "detail": detail,
        "instance": str(uuid.uuid4()),
    }


@dataclass
class FakeVoiceApiOptions:
    """Knobs for the fake.

    Attributes:
        create_status: answer ``POST /v1/calls`` with this status (and ``create_error`` as
            the body) instead of creating the call; None creates it.
        create_error: the error body for ``create_status``; a generic one when None.
        create_delay_s: wait this long (s) before answering ``POST /v1/calls``.
        hangup_status: answer ``PUT /v1/calls/{uuid}`` with this status instead of 204.
        hangup_delay_s: wait this long (s) before answering ``PUT /v1/calls/{uuid}``.
    """

    create_status: int | None = None
    create_error: dict[str, Any] | None = None
    create_delay_s: float = 0.0
    hangup_status: int | None = None
    hangup_delay_s: float = 0.0


@dataclass
class FakeVoiceApi(LoopbackServer):
    """The fake Voice API server.

    Args:
        public_key: the application's public key (verifies the RS256 JWTs).
        application_id: the application id the JWT's ``application_id`` must equal.
        options: knobs; ``FakeVoiceApiOptions()`` by default.
        signature_secret: signs the events :meth:`post_event` sends (as Vonage signs
            webhooks); None sends them unsigned.

    Attributes:
        created: one record per accepted or refused ``POST /v1/calls`` that passed the JWT
            check: ``{"body", "claims", "uuid", "conversation_uuid"}`` (``uuid`` None and no
            ``conversation_uuid`` when an error was injected).
        hangups: ``(call uuid, body)`` per ``PUT /v1/calls/{uuid}`` that passed the JWT check.
        refused: one reason string per request refused for its JWT.
        events: ``(call uuid, event body, HTTP status of the bridge's answer)`` per event
            :meth:`post_event` sent.
    """

    public_key: RSAPublicKey
    application_id: str
    options: FakeVoiceApiOptions = field(default_factory=FakeVoiceApiOptions)
    signature_secret: str | None = None
    created: list[dict[str, Any]] = field(default_factory=list)
    hangups: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any], int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._init_server()
        self._http: aiohttp.ClientSession | None = None
        self.app.router.add_post("/v1/calls", self._create)
        self.app.router.add_put("/v1/calls/{uuid}", self._modify)

    async def wait_hangup(self, call_uuid: str, timeout: float) -> dict[str, Any]:
        """The body of the first hang-up PUT for ``call_uuid``, waiting up to ``timeout`` s.

        Raises:
            TimeoutError: if none arrived in time.
        """
        return await self._wait_recorded(
            lambda: next((body for u, body in self.hangups if u == call_uuid), None), timeout
        )

    def created_call(self, call_uuid: str) -> dict[str, Any]:
        """The record of the created call ``call_uuid`` (see :attr:`created`).

        Raises:
            KeyError: no such call was created.
        """
        for record in self.created:
            if record["uuid"] == call_uuid:
                return record
        raise KeyError(call_uuid)

    async def post_event(
        self,
        call_uuid: str,
        status: str,
        *,
        sub_state: str | None = None,
        detail: str | None = None,
        duration_s: int = 0,
    ) -> int:
        """Post the event ``status`` of the created call ``call_uuid`` to its event URL, as
        Vonage does; returns the HTTP status the bridge answered.

        Args:
            status: ``started``, ``ringing``, ``answered``, ``machine``, ``human``,
                ``busy``, ``timeout``, ``unanswered``, ``rejected``, ``failed``,
                ``cancelled``, ``completed``...
            sub_state: ``beep_start`` on the ``machine`` event sent when the beep is heard.
            detail: the failure's ``detail`` (``unavailable``, ``declined``...).
            duration_s: ``duration`` of ``completed``.
        Raises:
            KeyError: no such call was created.
        """
        record = self.created_call(call_uuid)
        sent = record["body"]
        url = sent["event_url"][0]
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        body: dict[str, Any] = {
            "from": sent["from"]["number"],
            "to": sent["to"][0]["number"],
            "conversation_uuid": record["conversation_uuid"],
            "status": status,
            "direction": "outbound",
            "timestamp": now,
        }
        body["call_uuid" if status in ("machine", "human") else "uuid"] = call_uuid
        if sub_state is not None:
            body["sub_state"] = sub_state
        if detail is not None:
            body["detail"] = detail
        if status == "completed":
            body.update(
                duration=str(duration_s),
                start_time=now,
                end_time=now,
                rate="0.00",
                price="0.00",
                network="44123",
            )
        raw = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.signature_secret is not None:
            headers["Authorization"] = sign_webhook(self.signature_secret, raw)
        if self._http is None:
            self._http = aiohttp.ClientSession()
        async with self._http.post(url, data=raw, headers=headers) as resp:
            answered = resp.status
        self.events.append((call_uuid, body, answered))
        return answered

    async def _before_cleanup(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # --- handlers ----------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        accepted = await self._accept(request, self.options.create_delay_s)
        if isinstance(accepted, web.Response):
            return accepted
        claims, body = accepted
        record: dict[str, Any] = {"body": body, "claims": claims, "uuid": None}
        if self.options.create_status is not None:
            await self._record(lambda: self.created.append(record))
            status = self.options.create_status
            error = self.options.create_error or vonage_error(status, "Error", "injected")
            return web.json_response(error, status=status)
        record["uuid"] = call_uuid = str(uuid.uuid4())
        record["conversation_uuid"] = conversation_uuid = f"CON-{uuid.uuid4()}"
        await self._record(lambda: self.created.append(record))
        return web.json_response(
            {
                "uuid": call_uuid,
                "status": "started",
                "direction": "outbound",
                "conversation_uuid": conversation_uuid,
            },
            status=201,
        )

    async def _modify(self, request: web.Request) -> web.Response:
        accepted = await self._accept(request, self.options.hangup_delay_s)
        if isinstance(accepted, web.Response):
            return accepted
        _, body = accepted
        call_uuid = request.match_info["uuid"]
        await self._record(lambda: self.hangups.append((call_uuid, body)))
        if self.options.hangup_status is not None:
            status = self.options.hangup_status
            return web.json_response(vonage_error(status, "Error", "injected"), status=status)
        return web.Response(status=204)

    async def _accept(
        self, request: web.Request, delay_s: float
    ) -> tuple[dict[str, Any], Any] | web.Response:
        """``(JWT claims, JSON body)`` after the injected delay, or the 401 answer."""
        claims = self._check_jwt(request)
        if isinstance(claims, web.Response):
            return claims
        body = await request.json()
        await self._delay(delay_s)
        return claims, body

    def _check_jwt(self, request: web.Request) -> dict[str, Any] | web.Response:
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        try:
            if scheme != "Bearer":
                raise jwt.InvalidTokenError("no Bearer token")
            claims: dict[str, Any] = jwt.decode(
                token,
                self.public_key,
                algorithms=["RS256"],
                options={"require": ["application_id", "iat", "jti", "exp"]},
            )
            if claims["application_id"] != self.application_id:
                raise jwt.InvalidTokenError("wrong application_id")
        except jwt.InvalidTokenError as exc:
            self.refused.append(f"{exc.__class__.__name__}: {exc}")
            return web.json_response(
                vonage_error(401, "Unauthorized", "You did not provide correct credentials."),
                status=401,
            )
        return claims


def sign_webhook(
    secret: str,
    payload: bytes | None,
    *,
    iat: float | None = None,
    iss: str = "Vonage",
    payload_hash: str | None = None,
) -> str:
    """``Bearer <JWT>`` as Vonage signs a webhook: HS256 with the signature secret, claims
    ``iat``, ``jti``, ``iss``, ``api_key`` and ``payload_hash`` (hex SHA-256 of ``payload``;
    left out when ``payload`` is None, overridden by ``payload_hash``).

    Source: https://developer.vonage.com/en/voice/voice-api/guides/signed-webhooks.
    """
    claims: dict[str, Any] = {
        "iat": int(time.time() if iat is None else iat),
        "jti": str(uuid.uuid4()),
        "iss": iss,
        "api_key": "fake-api-key",
    }
    if payload_hash is not None:
        claims["payload_hash"] = payload_hash
    elif payload is not None:
        claims["payload_hash"] = hashlib.sha256(payload).hexdigest()
    return "Bearer " + jwt.encode(claims, secret, algorithm="HS256")


def query_json(params: list[tuple[str, str]]) -> bytes:
    """The payload Vonage hashes for a GET webhook: query parameters as compact JSON.

    Source: https://api.support.vonage.com/hc/en-us/articles/19033783342876.
    """
    return json.dumps(dict(params), separators=(",", ":"), ensure_ascii=False).encode()

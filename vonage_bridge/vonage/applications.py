"""Vonage Application API v2: point an application's answer and event URLs at this server.

Shell ring (I/O): used by ``change_url.py``, never by the call path.

The procedure is Vonage's own: GET the application, change the one setting, PUT the whole
document back, because PUT replaces the configuration (Vonage's signed-webhooks guide; the
Application API v2 spec). :func:`with_voice_urls` (pure) changes only the address and method of
``capabilities.voice.webhooks.answer_url`` and ``event_url``; every other field survives:
other capabilities, keys, ``fallback_answer_url``, the timeouts inside the webhook objects,
``signed_callbacks``, ``region``, ``privacy`` and any field we do not know about.

Read-only fields: the spec lists ``id`` only in ``ApplicationResponse``, not in the PUT
request body (``name``, ``keys``, ``capabilities``), the SDK's request model
(``vonage-application``) sends ``name``, ``keys``, ``capabilities`` and ``privacy``, and
``_links`` is HAL metadata of the response. So :func:`put_body` drops ``id`` and ``_links``
and keeps everything else, ``privacy`` included.

Why aiohttp (through :func:`..rest.request_json`) and not the Vonage SDK:
``vonage-http-client`` builds every URL as ``https://{api_host}{path}``, so it cannot reach a
plain-http fake on 127.0.0.1. A configurable base URL (``VONAGE_API_URL``) keeps the tests
and the simulation free of TLS certificates and private-attribute patches, and two requests
do not justify the SDK's 0.9 s import.

Errors::

    ConfigError              a VONAGE_* variable or SERVER_URL is missing or invalid
    ApplicationApiError      (an UpstreamError) 401, 404, other HTTP errors, network errors
                             and non-JSON answers; ``.status`` is the HTTP status or None
    UpstreamTimeout          no answer within REQUEST_TIMEOUT_S

Source: Application API v2 reference (https://developer.vonage.com/en/api/application.v2) and
spec (https://github.com/Nexmo/api-specification/blob/master/definitions/application.v2.yml);
signed webhooks guide (https://developer.vonage.com/en/voice/voice-api/guides/signed-webhooks);
``vonage-application`` 2.0.2 (https://pypi.org/project/vonage-application/).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from ..config import PublicUrl
from ..errors import ApplicationApiError, ConfigError
from ..rest import JsonReply, request_json

__all__ = [
    "ANSWER_PATH",
    "DEFAULT_API_URL",
    "EVENT_PATH",
    "READ_ONLY_FIELDS",
    "ApplicationApiSettings",
    "UrlChange",
    "WebhookUrl",
    "describe",
    "get_application",
    "put_application",
    "put_body",
    "update_urls",
    "voice_urls",
    "with_voice_urls",
]

JsonObject = dict[str, Any]

DEFAULT_API_URL = "https://api.nexmo.com"
"""Base of the Application API; ``/v2/applications/{id}`` is appended."""

ANSWER_PATH = "/incoming-call"
"""Our answer URL route (``vonage/routes.py``); it accepts GET and POST JSON."""

EVENT_PATH = "/event"
"""Our event URL route (``vonage/routes.py``)."""

WEBHOOK_METHOD = "POST"
"""Method set for both webhooks: the answer handler accepts a POST JSON body
(https://developer.vonage.com/en/voice/voice-api/webhook-reference)."""

READ_ONLY_FIELDS = ("id", "_links")
"""Top-level fields of a GET answer that are not part of the PUT request body (spec)."""

REQUEST_TIMEOUT_S = 15.0
"""Whole-request timeout for each GET and PUT."""

REQUIRED_VARIABLES = ("VONAGE_API_KEY", "VONAGE_API_SECRET", "VONAGE_APPLICATION_ID", "SERVER_URL")


# --- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApplicationApiSettings:
    """What ``change_url.py`` needs: API credentials, the application and our public URL.

    Kept apart from :class:`vonage_bridge.config.Settings` so that changing the URLs does not
    require ``OPENAI_API_KEY`` or any other setting of the running service.
    """

    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    application_id: str
    api_url: str
    public_url: PublicUrl

    @property
    def answer_url(self) -> str:
        """``SERVER_URL`` (as http/https) + ``/incoming-call``."""
        return self.public_url.http + ANSWER_PATH

    @property
    def event_url(self) -> str:
        """``SERVER_URL`` (as http/https) + ``/event``."""
        return self.public_url.http + EVENT_PATH

    @property
    def application_url(self) -> str:
        """``{VONAGE_API_URL}/v2/applications/{VONAGE_APPLICATION_ID}``."""
        return f"{self.api_url}/v2/applications/{quote(self.application_id, safe='')}"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ApplicationApiSettings:
        """Read ``VONAGE_API_KEY``, ``VONAGE_API_SECRET``, ``VONAGE_APPLICATION_ID``,
        ``SERVER_URL`` (required) and ``VONAGE_API_URL`` (default ``https://api.nexmo.com``).

        Raises:
            ConfigError: naming every missing or invalid variable at once.
        """
        problems: list[str] = []
        values: dict[str, str] = {}
        for name in REQUIRED_VARIABLES:
            value = env.get(name, "").strip()
            if not value:
                problems.append(f"{name} is required but not set")
            values[name] = value

        if ":" in values["VONAGE_API_KEY"]:  # Basic auth cannot carry it (RFC 7617, section 2)
            problems.append("VONAGE_API_KEY=<hidden>: must not contain ':'")

        public_url: PublicUrl | None = None
        if values["SERVER_URL"]:
            try:
                public_url = PublicUrl.parse(values["SERVER_URL"])
            except ValueError as exc:
                problems.append(f"SERVER_URL={values['SERVER_URL']!r}: {exc}")

        api_url = env.get("VONAGE_API_URL", "").strip() or DEFAULT_API_URL
        try:
            api_url = _base_url(api_url)
        except ValueError as exc:
            problems.append(f"VONAGE_API_URL={api_url!r}: {exc}")

        if problems or public_url is None:
            raise ConfigError(problems)
        return cls(
            api_key=values["VONAGE_API_KEY"],
            api_secret=values["VONAGE_API_SECRET"],
            application_id=values["VONAGE_APPLICATION_ID"],
            api_url=api_url,
            public_url=public_url,
        )


def _base_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    return value.rstrip("/")


# --- the pure part ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookUrl:
    """One webhook setting as Vonage holds it: ``{"address": ..., "http_method": ...}``."""

    address: str | None
    http_method: str | None

    def __str__(self) -> str:
        if not self.address:
            return "(not set)"
        return f"{self.http_method or '?'} {self.address}"


def voice_urls(app_doc: Mapping[str, Any]) -> tuple[WebhookUrl, WebhookUrl]:
    """The application's voice ``(answer_url, event_url)``; missing parts come back as None.

    Args:
        app_doc: an application document as GET returns it (spec: ``ApplicationResponse``).
    """
    webhooks = _dig(app_doc, "capabilities", "voice", "webhooks")
    return _webhook(webhooks.get("answer_url")), _webhook(webhooks.get("event_url"))


def with_voice_urls(app_doc: Mapping[str, Any], answer_url: str, event_url: str) -> JsonObject:
    """A deep copy of ``app_doc`` with the voice answer and event URLs set, methods POST.

    Only ``address`` and ``http_method`` of ``capabilities.voice.webhooks.answer_url`` and
    ``event_url`` change. Everything else (other capabilities, ``keys``, ``privacy``,
    ``fallback_answer_url``, ``connect_timeout``/``socket_timeout`` inside the two webhook
    objects, ``signed_callbacks``, ``region``, unknown fields) is kept as it was. Missing
    ``capabilities``/``voice``/``webhooks`` objects are created. ``app_doc`` is not modified.

    Args:
        app_doc: the application document from GET.
        answer_url: absolute URL of our answer handler (``.../incoming-call``).
        event_url: absolute URL of our event handler (``.../event``).
    Returns:
        The new document (read-only fields such as ``id`` still in it; see :func:`put_body`).
    Source: https://developer.vonage.com/en/voice/voice-api/guides/signed-webhooks (GET,
    change, PUT the whole body).
    """
    doc: JsonObject = copy.deepcopy(dict(app_doc))
    webhooks = _ensure_object(
        _ensure_object(_ensure_object(doc, "capabilities"), "voice"), "webhooks"
    )
    for name, address in (("answer_url", answer_url), ("event_url", event_url)):
        hook = _ensure_object(webhooks, name)
        hook["address"] = address
        hook["http_method"] = WEBHOOK_METHOD
    return doc


def put_body(app_doc: Mapping[str, Any]) -> JsonObject:
    """``app_doc`` without the response-only fields ``id`` and ``_links`` (a shallow copy).

    Source: https://github.com/Nexmo/api-specification/blob/master/definitions/application.v2.yml
    PUT requestBody (``name`` required; ``keys``, ``capabilities``); ``vonage-application``
    ``ApplicationOptions`` (adds ``privacy``).
    """
    return {k: v for k, v in app_doc.items() if k not in READ_ONLY_FIELDS}


def _dig(doc: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    node: Any = doc
    for key in keys:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node if isinstance(node, Mapping) else {}


def _webhook(value: Any) -> WebhookUrl:
    if not isinstance(value, Mapping):
        return WebhookUrl(None, None)
    address, method = value.get("address"), value.get("http_method")
    return WebhookUrl(
        address if isinstance(address, str) else None,
        method if isinstance(method, str) else None,
    )


def _ensure_object(parent: JsonObject, key: str) -> JsonObject:
    child = parent.get(key)
    if not isinstance(child, dict):
        child = {}
        parent[key] = child
    return child


# --- the I/O part -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UrlChange:
    """What :func:`update_urls` did (or, with ``dry_run``, would do)."""

    application_id: str
    name: str
    old_answer_url: WebhookUrl
    old_event_url: WebhookUrl
    new_answer_url: WebhookUrl
    new_event_url: WebhookUrl
    applied: bool
    body: JsonObject = field(repr=False)
    unchanged: bool = False
    """The application already pointed there: nothing was (or would be) sent."""


async def get_application(
    http: aiohttp.ClientSession, settings: ApplicationApiSettings
) -> JsonObject:
    """``GET {api_url}/v2/applications/{id}`` with Basic auth; the application document.

    Raises:
        ApplicationApiError: on 401, 404, any other non-2xx, a network error, or an answer
            that is not a JSON object with a ``name``.
        UpstreamTimeout: no answer within ``REQUEST_TIMEOUT_S`` (15 s).
    Source: https://developer.vonage.com/en/api/application.v2 (getApplication).
    """
    doc = await _request(http, settings, "GET", None)
    if not isinstance(doc.get("name"), str):
        raise ApplicationApiError(
            f"Vonage answered GET {settings.application_url} without an application name; "
            "is VONAGE_API_URL the Vonage API?",
            status=200,
        )
    return doc


async def put_application(
    http: aiohttp.ClientSession, settings: ApplicationApiSettings, body: JsonObject
) -> JsonObject:
    """``PUT {api_url}/v2/applications/{id}`` with ``body`` as JSON; the updated document.

    Raises:
        ApplicationApiError: as :func:`get_application`, plus 400 with Vonage's
            ``invalid_parameters`` in the message.
        UpstreamTimeout: no answer within ``REQUEST_TIMEOUT_S`` (15 s).
    Source: https://developer.vonage.com/en/api/application.v2 (updateApplication).
    """
    return await _request(http, settings, "PUT", body)


async def update_urls(
    settings: ApplicationApiSettings,
    *,
    dry_run: bool = False,
    http: aiohttp.ClientSession | None = None,
) -> UrlChange:
    """Point the application's voice answer URL at ``SERVER_URL/incoming-call`` and its event
    URL at ``SERVER_URL/event`` (both POST), keeping every other setting.

    Args:
        settings: from :meth:`ApplicationApiSettings.from_env`.
        dry_run: GET only; report the change without sending the PUT.
        http: a session to use; by default one is opened and closed here.
    Returns:
        The old and new URLs and the PUT body (sent, or that would be sent). When the
        application already points there (same addresses, both POST) no PUT is sent and
        ``unchanged`` is True.
    Raises:
        ApplicationApiError, UpstreamTimeout: see :func:`get_application` and
            :func:`put_application`.
    """
    if http is None:
        async with aiohttp.ClientSession() as own:
            return await update_urls(settings, dry_run=dry_run, http=own)

    current = await get_application(http, settings)
    body = put_body(with_voice_urls(current, settings.answer_url, settings.event_url))
    unchanged = voice_urls(body) == voice_urls(current)
    result = body if dry_run or unchanged else await put_application(http, settings, body)
    old_answer, old_event = voice_urls(current)
    new_answer, new_event = voice_urls(result)
    return UrlChange(
        application_id=settings.application_id,
        name=str(current["name"]),
        old_answer_url=old_answer,
        old_event_url=old_event,
        new_answer_url=new_answer,
        new_event_url=new_event,
        applied=not dry_run and not unchanged,
        body=body,
        unchanged=unchanged,
    )


def describe(change: UrlChange) -> str:
    """A few lines for a person: application, old and new URLs, and whether it was sent
    (``unchanged`` when it already pointed there)."""
    if change.unchanged:
        return "\n".join(
            [
                f"application {change.application_id} ({change.name}): unchanged, already "
                "points there",
                f"  answer_url: {change.old_answer_url}",
                f"  event_url:  {change.old_event_url}",
            ]
        )
    verb = "updated" if change.applied else "dry run, nothing sent; would update"
    return "\n".join(
        [
            f"application {change.application_id} ({change.name}): {verb}",
            f"  answer_url: {change.old_answer_url}  ->  {change.new_answer_url}",
            f"  event_url:  {change.old_event_url}  ->  {change.new_event_url}",
        ]
    )


async def _request(
    http: aiohttp.ClientSession,
    settings: ApplicationApiSettings,
    method: str,
    body: JsonObject | None,
) -> JsonObject:
    url = settings.application_url
    reply = await request_json(
        http,
        method,
        url,
        what=f"Vonage application {method}",
        service="the Vonage API",
        timeout_s=REQUEST_TIMEOUT_S,
        # HTTP Basic with the account's API key and secret, not a JWT.
        headers={
            "Accept": "application/json",
            "Authorization": aiohttp.encode_basic_auth(settings.api_key, settings.api_secret),
        },
        json=body,
        error=ApplicationApiError,
        refused=partial(_refused, settings, method),
        hint="; check VONAGE_API_URL and your network",
    )
    if not isinstance(reply.data, dict):
        raise ApplicationApiError(
            f"Vonage answered {method} {url} with HTTP {reply.status} but not a JSON object: "
            f"{reply.text[:200]!r}",
            status=reply.status,
        )
    return reply.data


def _refused(
    settings: ApplicationApiSettings, method: str, reply: JsonReply
) -> ApplicationApiError:
    """A person-facing error for a non-2xx answer: which variable to check."""
    status, reason = reply.status, _vonage_reason(reply.data)
    if status == 401:
        message = (
            f"Vonage refused the credentials (HTTP 401{reason}); check VONAGE_API_KEY and "
            "VONAGE_API_SECRET (the account's API key and secret, not the application's "
            "private key)"
        )
    elif status == 404:
        message = (
            f"Vonage has no application {settings.application_id!r} for this API key "
            f"(HTTP 404{reason}); check VONAGE_APPLICATION_ID and that VONAGE_API_KEY is the "
            "account that owns it"
        )
    else:
        message = f"Vonage answered {method} {settings.application_url} with HTTP {status}{reason}"
    return ApplicationApiError(message, status=status)


def _vonage_reason(parsed: Any) -> str:
    """``": title: detail [name: reason, ...]"`` from a Vonage error body, or ``""``.

    Source: https://github.com/Nexmo/api-specification, ``common_errors.yml`` (``type``,
    ``title``, ``detail``, ``instance``); ``application.v2.yml`` InvalidPayloadError
    (``invalid_parameters``).
    """
    if not isinstance(parsed, dict):
        return ""
    parts = [str(parsed[k]) for k in ("title", "detail") if isinstance(parsed.get(k), str)]
    invalid = parsed.get("invalid_parameters")
    if isinstance(invalid, list):
        items = [f"{p.get('name')}: {p.get('reason')}" for p in invalid if isinstance(p, Mapping)]
        if items:
            parts.append("[" + "; ".join(items) + "]")
    return (": " + ": ".join(parts)) if parts else ""

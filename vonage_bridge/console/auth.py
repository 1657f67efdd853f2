"""Who may use the operator console: login, logout, the session cookie, CSRF, login limits.

- ``GET /console/login``: the form (or, with no operator in the database, a page saying how
  to create one); ``POST /console/login``: 303 to the page asked for, or the form again with
  401 (wrong name or password: the same message either way) or 429 (too many failures);
- ``POST /console/logout``: ends the session (server-side too), 303 to the login page.

The session cookie (:data:`SESSION_COOKIE`) holds a random token; the database holds its
SHA-256 (``accounts.sessions_table``), so any instance on the same database accepts it. It
is ``HttpOnly``, ``SameSite=Strict``, ``Path=/`` (the console's recording player fetches
``GET /calls/{uuid}/recording`` with it, ``web/recordings.py``), ``Secure`` when ``SERVER_URL``
is https, and lasts ``CONSOLE_SESSION_HOURS``. Every state-changing request carries the
session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``): without it, 403. The
login form, before any session, uses a double-submit token (cookie :data:`LOGIN_CSRF_COOKIE`
equal to the form field).

Failed logins are limited per operator name and per client address (``web.client_ip``:
behind a proxy, the address ``CLIENT_IP_HEADER`` gives): :data:`MAX_FAILURES` within
:data:`FAILURE_WINDOW_S`, then 429 until the oldest failure is a minute old (per instance, in
memory). Each failure is logged at WARNING with the name and address,
never the password.

Sources: RFC 6265 section 4.1.2 (cookie attributes), the SameSite attribute
(https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/Set-Cookie#samesitesamesite-value),
OWASP's CSRF prevention cheat sheet
(https://cheatsheetseries.owasp.org/cheatsheets/Cross-Site_Request_Forgery_Prevention_Cheat_Sheet.html),
RFC 6585 section 4 (429).
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aiohttp import web

from ..store import SqlCallStore
from ..web.client_ip import client_address
from ..web.keys import SETTINGS, STORE
from .accounts import Accounts, ConsoleSession
from .render import PREFIX, SESSION, render

log = logging.getLogger(__name__)

LOGIN_PATH = f"{PREFIX}/login"
SESSION_COOKIE = "vb_console"
SESSION_COOKIE_PATH = "/"
"""The session cookie's path: the console and ``GET /calls/{uuid}/recording`` (outside it)."""
LOGIN_CSRF_COOKIE = "vb_console_login"
MAX_FAILURES = 5
FAILURE_WINDOW_S = 60.0
MAX_TRACKED = 10_000
"""Names and addresses the limiter remembers at most (the oldest are forgotten first)."""
MAX_FIELD = 1024
"""Longest login field read (name or password), characters."""


class FailureLimit:
    """Failures per key in a sliding window, time passed in (``now``: monotonic seconds)."""

    def __init__(self, limit: int = MAX_FAILURES, window_s: float = FAILURE_WINDOW_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def blocked(self, key: str, now: float) -> bool:
        """Whether ``key`` has :attr:`limit` failures within the window before ``now``."""
        times = self._seen.get(key)
        if times is None:
            return False
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._seen[key]
            return False
        return len(times) >= self.limit

    def failed(self, key: str, now: float) -> None:
        """Count a failure of ``key`` at ``now`` (monotonic s); keeps at most :attr:`limit` times
        per key and :data:`MAX_TRACKED` keys."""
        times = self._seen.setdefault(key, deque())
        self._seen.move_to_end(key)
        times.append(now)
        while len(times) > self.limit:
            times.popleft()
        while len(self._seen) > MAX_TRACKED:
            self._seen.popitem(last=False)


@dataclass(slots=True)
class LoginGuard:
    """The two limits: per operator name and per client address."""

    names: FailureLimit = field(default_factory=FailureLimit)
    addresses: FailureLimit = field(default_factory=FailureLimit)


LOGIN_GUARD = web.AppKey("console_login_guard", LoginGuard)
"""Failed logins of this instance (in memory)."""


def accounts(request: web.Request) -> Accounts:
    """The operator accounts on the call store.

    Raises:
        web.HTTPServiceUnavailable: the database is unavailable (or not a SQL store).
    """
    store = request.app.get(STORE)
    if not isinstance(store, SqlCallStore):
        raise web.HTTPServiceUnavailable(text="the call-record database is unavailable")
    return Accounts(store)


def secure_cookies(request: web.Request) -> bool:
    """``Secure`` cookies when ``SERVER_URL`` is https."""
    return request.app[SETTINGS].server.public_url.http.startswith("https://")


def _cookie_args(request: web.Request, path: str = PREFIX) -> dict[str, Any]:
    return {
        "path": path,
        "httponly": True,
        "samesite": "Strict",
        "secure": secure_cookies(request),
    }


def login_url(request: web.Request) -> str:
    """The login page, asking to come back to this page afterwards."""
    return f"{LOGIN_PATH}?next={quote(request.path_qs, safe='')}"


async def current_session(request: web.Request) -> ConsoleSession | None:
    """The request's live console session, or None."""
    if SESSION in request:
        return request[SESSION]
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    session = await accounts(request).session(token)
    if session is not None:
        request[SESSION] = session
    return session


async def require_page(request: web.Request) -> ConsoleSession:
    """The session of a console page.

    Raises:
        web.HTTPSeeOther: no session: to the login page.
    """
    session = await current_session(request)
    if session is None:
        raise web.HTTPSeeOther(login_url(request))
    return session


async def require_api(request: web.Request) -> ConsoleSession:
    """The session of a console API, asset or socket.

    Raises:
        web.HTTPUnauthorized: no session (401).
    """
    session = await current_session(request)
    if session is None:
        raise web.HTTPUnauthorized(text="console session required")
    return session


def check_csrf(request: web.Request, session: ConsoleSession, form: Any) -> None:
    """Refuse a state-changing request without the session's CSRF token.

    Raises:
        web.HTTPForbidden: the token is missing or wrong (403).
    """
    given = form.get("csrf") if form is not None else None
    given = given or request.headers.get("X-CSRF-Token", "")
    if not isinstance(given, str) or not hmac.compare_digest(given, session.csrf):
        log.warning(
            "console: %s %s refused: missing or wrong CSRF token", request.method, request.path
        )
        raise web.HTTPForbidden(text="missing or wrong CSRF token")


async def require_form(
    request: web.Request,
) -> tuple[ConsoleSession, Mapping[str, object]]:
    """The session and the posted form of a page's state-changing POST, its CSRF token
    checked (:func:`require_page`, then :func:`check_csrf`).

    Raises:
        web.HTTPSeeOther: no session: to the login page.
        web.HTTPForbidden: the CSRF token is missing or wrong (403).
    """
    session = await require_page(request)
    form = await request.post()
    check_csrf(request, session, form)
    return session, form


def safe_next(value: object) -> str:
    """Where to go after login: a console path of ours, else the live page."""
    if isinstance(value, str) and value.startswith(PREFIX + "/") and "//" not in value:
        if not value.startswith(LOGIN_PATH):
            return value
    return f"{PREFIX}/live"


# ------------------------------------------------------------------ handlers


async def login_form(request: web.Request) -> web.Response:
    """``GET /console/login``."""
    if await accounts(request).count() == 0:
        return render(request, "no_operators.html")
    if await current_session(request) is not None:
        raise web.HTTPSeeOther(safe_next(request.query.get("next")))
    return _login_page(request, next_path=safe_next(request.query.get("next")))


def _login_page(
    request: web.Request,
    *,
    next_path: str,
    status: int = 200,
    error: str | None = None,
    name: str = "",
) -> web.Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request, "login.html", status=status, csrf=token, next=next_path, error=error, name=name
    )
    response.set_cookie(LOGIN_CSRF_COOKIE, token, **_cookie_args(request))
    return response


async def login(request: web.Request) -> web.Response:
    """``POST /console/login``: fields ``name``, ``password``, ``csrf``, ``next``."""
    form = await request.post()
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    given = form.get("csrf")
    if not cookie or not isinstance(given, str) or not hmac.compare_digest(given, cookie):
        log.warning("console login refused: missing or wrong CSRF token")
        raise web.HTTPForbidden(text="missing or wrong CSRF token: reload the login page")
    name = str(form.get("name") or "")[:MAX_FIELD].strip()
    password = str(form.get("password") or "")[:MAX_FIELD]
    next_path = safe_next(form.get("next"))
    address = client_address(request)
    guard = request.app[LOGIN_GUARD]
    now = time.monotonic()
    if guard.names.blocked(name, now) or guard.addresses.blocked(address, now):
        log.warning(
            "console login refused: too many failures (operator %r, from %s)", name[:64], address
        )
        return _login_page(
            request,
            next_path=next_path,
            status=429,
            error="Too many failed logins: wait a minute and try again.",
            name=name,
        )
    acc = accounts(request)
    if not name or not await acc.authenticate(name, password):
        guard.names.failed(name, now)
        guard.addresses.failed(address, now)
        log.warning("console login failed (operator %r, from %s)", name[:64], address)
        return _login_page(
            request, next_path=next_path, status=401, error="Wrong name or password.", name=name
        )
    token, session = await acc.open_session(name, request.app[SETTINGS].console.session_hours)
    log.info("console login: operator %r from %s", name, address)
    response = web.HTTPSeeOther(next_path)
    max_age = int(session.expires_at.timestamp() - time.time())
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max(max_age, 1),
        **_cookie_args(request, SESSION_COOKIE_PATH),
    )
    response.del_cookie(LOGIN_CSRF_COOKIE, path=PREFIX)
    raise response


async def logout(request: web.Request) -> web.Response:
    """``POST /console/logout`` (CSRF-checked): ends the session, to the login page."""
    session, _ = await require_form(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    await accounts(request).close_session(token)
    log.info("console logout: operator %r", session.operator)
    response = web.HTTPSeeOther(LOGIN_PATH)
    response.del_cookie(SESSION_COOKIE, path=SESSION_COOKIE_PATH)
    raise response

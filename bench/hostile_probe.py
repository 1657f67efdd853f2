"""Hostile probe: a few thousand malformed or forged requests at every route of a bridge
configured as in production, and a check of what must hold afterwards.

Run: ``.venv/bin/python bench/hostile_probe.py`` (15-60 s; ``--rounds`` scales the flood,
``--log-format text`` runs the bridge with the terminal's log format, ``--details`` prints
every case's answer). Exit status 0 when every invariant holds, 1 otherwise; the table says
which failed and the bridge's log is kept.
Loopback only: every socket is on 127.0.0.1, nothing leaves the machine.

Set-up (as ``bench/load.py``): the bridge is ``python -m vonage_bridge`` in its own process,
JSON logs to a temporary file, every front door on and verified: ``VONAGE_SIGNATURE_SECRET``,
``TWILIO_ACCOUNT_SID`` + ``TWILIO_AUTH_TOKEN``, ``OPENAI_WEBHOOK_SECRET``, ``CONNECT_API_KEY``
with a Vonage application (``VONAGE_APPLICATION_ID`` + private key), and
``ALLOW_UNSIGNED_WEBHOOKS=false``. Its upstreams are the fakes of ``vonage_bridge.sim``, run
in this process: the Realtime server (which also receives the SIP connector's ``accept``),
the Voice API and Twilio's REST API, so the probe counts what reached them.

What is sent:

1. **Legitimate calls and replays of them** (sequential): a signed Vonage call (signed answer
   URL, signed media handshake) that then gets a nested-3,000-deep JSON message, a few
   hundred unknown events, text that is not JSON and a frame of the wrong size, and must
   still answer a real-time utterance; its answer request replayed (the same JWT), its media
   URI used again, its handshake JWT used again, its media token without a JWT; a Vonage and
   a Twilio call sending audio as fast as the socket takes it (must be cut off with 1008);
   five upgrades (Vonage) and five streams (Twilio) racing for one media token (one wins); a
   signed Twilio call with the same faults, its webhook replayed (accepted: Twilio's
   signature has no timestamp) and the replay's stream refused, its token used again; signed
   Twilio upgrades whose ``start`` carries no, a forged, or another call's token, or a deep,
   non-JSON or 2 MiB first message; a signed OpenAI webhook and its retry (same
   ``webhook-id``); one
   ``POST /connect`` with the key.
2. **The flood** (``--rounds`` rounds, 8 at a time): per route, missing, forged, wrong-secret,
   ``alg: none``, stale, future, wrong-issuer and other-payload signatures; repeated query
   keys; deep, non-object, non-UTF-8 and non-JSON bodies; bad forms; 2 MiB bodies; wrong
   methods; forged media tokens and signatures on both media sockets; and on raw sockets:
   NUL and bare CR in header values, oversized headers, obsolete line folding, conflicting
   ``Content-Length`` / ``Transfer-Encoding``, broken chunked framing, undecodable
   ``Content-Encoding``, bad request lines; CR/LF in the call ids and paths a refusal logs.
3. **Shutdown**: a live signed call, then SIGTERM; the bridge drains (``DRAIN_TIMEOUT_S``, 2 s
   here), says goodbye, closes the call with 1001 and exits 0 within the drain and its 8 s of
   goodbyes and hang-ups.

Invariants: no 5xx and no hostile request accepted (2xx/101); Realtime sessions opened at the
fake: at least the legitimate media calls the probe made, at most those plus the verified
answer URLs (each may open a warm session its socket then adopts, or that is closed unused),
and none during the flood; SIP ``accept`` requests = the legitimate
SIP webhooks (1); calls created at the fake Voice API = the legitimate ``POST /connect`` (1);
no ERROR line and no traceback in the bridge's log, and every line a record of its format
(none forged or split); no secret, forged credential, captured token or hostile phone number
in it; the flood logs at most one line per request; each
mid-call fault and replay ends as described above.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import jwt
from aiohttp import WSCloseCode
from cryptography.hazmat.primitives import serialization
from twilio.request_validator import RequestValidator
from yarl import URL

from vonage_bridge.core.media_token import MediaTokenSigner
from vonage_bridge.sim.openai_sip import incoming_call_body, signed_headers
from vonage_bridge.sim.realtime import FakeRealtimeServer, FakeRealtimeSession
from vonage_bridge.sim.twilio import MULAW_SILENCE, FakeTwilioCaller, pcm16_to_mulaw
from vonage_bridge.sim.twilio_api import FakeTwilioApi, new_account_sid, new_call_sid
from vonage_bridge.sim.vonage import CALLER_WAV, CallerError, FakeVonageCaller, read_wav_pcm16
from vonage_bridge.sim.vonage_api import (
    FakeVoiceApi,
    application_test_key,
    query_json,
    sign_webhook,
)

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
DRAIN_TIMEOUT_S = 2.0  # the probe's DRAIN_TIMEOUT_S: live calls play this long after SIGTERM
KILL_TIMEOUT_S = DRAIN_TIMEOUT_S + 8.0  # then goodbyes and hang-ups: within 8 s (README)
TIME_LIMIT_S = 110.0  # the whole probe, start-up and shutdown included
REQUEST_TIMEOUT_S = 10.0
CONCURRENCY = 8

MARK = "PRB7Q2"
"""Every forged credential the probe sends contains this: found in the log, it leaked."""
FORGED = f"forged-{MARK}-credential"
SECRETS = {
    "VONAGE_SIGNATURE_SECRET": f"probe-vonage-signature-secret-{MARK}-41d7",
    "TWILIO_AUTH_TOKEN": f"probe-twilio-auth-token-{MARK}-9c2e",
    "OPENAI_WEBHOOK_SECRET": "whsec_"
    + base64.b64encode(f"probe-webhook-{MARK}-key".encode()).decode(),
    "CONNECT_API_KEY": f"probe-connect-key-{MARK}-61f0",
    "OPENAI_API_KEY": f"sk-probe-{MARK}-3b9d",
    "MEDIA_TOKEN_SECRET": f"probe-media-token-secret-{MARK}-77aa",
}
WRONG_SECRET = f"wrong-secret-{MARK}-0123456789abcdef"
WRONG_WHSEC = "whsec_" + base64.b64encode(f"wrong-webhook-{MARK}-key".encode()).decode()
APP_ID = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"

HOSTILE_FROM = "447700900777"
HOSTILE_TO = "447700900778"
HOSTILE_TWILIO_FROM = "+14155550177"
HOSTILE_SIP_FROM = "+818012340777"
HOSTILE_NUMBERS = (HOSTILE_FROM, HOSTILE_TO, HOSTILE_TWILIO_FROM.lstrip("+"), HOSTILE_SIP_FROM[1:])
"""Numbers only hostile requests carry: a refusal must never log them."""
LEGIT_NUMBERS = ("447700900100", "447700900101", "14155550100", "14155550199", "818012345678")
"""Numbers of the probe's legitimate calls: logged by design (answer URL, SIP INFO lines)."""

DEEP = "[" * 3000 + "]" * 3000
HUGE = b"x" * (2 * 1024 * 1024 + 1)  # over aiohttp's default client_max_size (1 MiB)
VONAGE_FRAME = 640  # 20 ms of L16 at 16 kHz
UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
}


# --- the tally -------------------------------------------------------------------------------


Outcome = int | str
"""An HTTP status, ``"close <code>"`` for a media socket the bridge closed, or ``"dropped"``
(the bridge closed the connection without answering)."""


@dataclass
class Tally:
    """What came back, per route, and what went wrong."""

    outcomes: dict[str, Counter[Outcome]] = field(default_factory=lambda: defaultdict(Counter))
    codes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    checks: list[tuple[str, str, str, bool]] = field(default_factory=list)
    sent: int = 0
    last_code: str = ""

    details: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def note(self, route: str, what: str, outcome: Outcome) -> None:
        """Count an answer to a legitimate (or accepted-by-design) request: not judged."""
        self.sent += 1
        self.outcomes[route][outcome] += 1
        self.details[(route, what, str(outcome))] += 1

    def record(self, route: str, what: str, outcome: Outcome, code: str = "") -> None:
        """Count the answer to a hostile request: a 5xx or an acceptance is a failure."""
        self.sent += 1
        self.outcomes[route][outcome] += 1
        self.details[(route, what, f"{outcome} {code}".strip())] += 1
        self.last_code = code
        if code:
            self.codes[code] += 1
        if isinstance(outcome, int) and outcome >= 500:
            self.failures.append(f"{route} {what}: {outcome} {code}")
        elif isinstance(outcome, int) and outcome < 400:
            self.failures.append(f"{route} {what}: accepted ({outcome})")

    def check(self, name: str, expected: object, measured: object, ok: bool | None = None) -> None:
        ok = (expected == measured) if ok is None else ok
        self.checks.append((name, str(expected), str(measured), ok))
        if not ok:
            self.failures.append(f"{name}: expected {expected}, got {measured}")


# --- requests --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One hostile request. ``raw``: sent as is on a new connection (path etc. unused)."""

    route: str
    what: str
    method: str = "GET"
    path: str = "/"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    raw: bytes | None = None


async def raw_exchange(port: int, request: bytes) -> tuple[Outcome, bytes]:
    """Send ``request`` on a new connection, read to EOF: (status or "dropped", body)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(request)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        async with asyncio.timeout(REQUEST_TIMEOUT_S):
            answer = await reader.read()
    except ConnectionError:
        answer = b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return "dropped", b""
    return int(parts[1]), body


def error_code(body: bytes) -> str:
    with contextlib.suppress(ValueError, LookupError, TypeError):
        code = json.loads(body)["error"]["code"]
        return code if isinstance(code, str) else ""
    return ""


async def run_case(http: aiohttp.ClientSession, base: str, port: int, case: Case) -> None:
    status: Outcome
    if case.raw is not None:
        status, body = await raw_exchange(port, case.raw)
        TALLY.record(case.route, case.what, status, error_code(body))
        return
    try:
        async with http.request(
            case.method,
            URL(base + case.path, encoded=True),
            headers=case.headers,
            data=case.body or None,
            allow_redirects=False,
        ) as resp:
            status = resp.status
            body = await resp.read()
    except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError, ConnectionError):
        status, body = "dropped", b""  # e.g. a 413 before the 2 MiB were all sent
    TALLY.record(case.route, case.what, status, error_code(body))


def raw_request(
    method: str, path: str, headers: Iterable[tuple[str, str]] = (), body: bytes = b""
) -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers)
    return (
        f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n{head}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1") + body


def head_only(request_line: str, *headers: str) -> bytes:
    """A request line and headers exactly as given (Host and Connection: close added)."""
    lines = [request_line, "Host: x", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def alg_none_jwt(claims: Mapping[str, Any]) -> str:
    def part(doc: Mapping[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    return f"Bearer {part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def vonage_claims(payload: bytes | None, **over: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iat": int(time.time()),
        "jti": str(uuid.uuid4()),
        "iss": "Vonage",
        "api_key": FORGED,
    }
    if payload is not None:
        claims["payload_hash"] = hashlib.sha256(payload).hexdigest()
    claims.update(over)
    return claims


def vonage_cases(r: int) -> list[Case]:
    """Answer and event URLs, GET and POST, without a valid signature."""
    secret = SECRETS["VONAGE_SIGNATURE_SECRET"]
    cases: list[Case] = []
    params = [
        ("to", HOSTILE_TO),
        ("from", HOSTILE_FROM),
        ("uuid", f"probe-{r}-{uuid.uuid4().hex[:8]}"),
        ("conversation_uuid", f"CON-probe-{r}"),
    ]
    query = "?" + urlencode(params)
    qjson = query_json(params)
    other = query_json([*params[:2], ("uuid", "another-call"), params[3]])
    body = json.dumps(dict(params)).encode()
    gets: dict[str, str | None] = {
        "no signature": None,
        "garbage bearer": f"Bearer {FORGED}",
        "basic auth": "Basic " + base64.b64encode(f"user:{FORGED}".encode()).decode(),
        "wrong secret": sign_webhook(WRONG_SECRET, qjson),
        "alg none": alg_none_jwt(vonage_claims(qjson)),
        "HS512": "Bearer " + jwt.encode(vonage_claims(qjson), WRONG_SECRET * 2, algorithm="HS512"),
        "other payload": sign_webhook(secret, other),  # a captured token, another request
        "stale iat": sign_webhook(secret, qjson, iat=time.time() - 900),
        "future iat": sign_webhook(secret, qjson, iat=time.time() + 900),
        "wrong issuer": sign_webhook(secret, qjson, iss=f"Mallory-{MARK}"),
        "bad hash": sign_webhook(secret, qjson, payload_hash=FORGED),
    }
    for path in ("/incoming-call", "/answer", "/event"):
        route = f"{path} (Vonage webhook)"
        for what, auth in gets.items():
            headers = {"Authorization": auth} if auth else {}
            cases.append(Case(route, f"GET {what}", "GET", path + query, headers))
        rep = query + "&uuid=second-value&from=" + HOSTILE_FROM
        cases.append(Case(route, "GET repeated keys", "GET", path + rep))
        auth = sign_webhook(secret, qjson)  # valid for query, but sent with a repeated key
        cases.append(
            Case(route, "GET repeated keys signed", "GET", path + rep, {"Authorization": auth})
        )
        json_ct = {"Content-Type": "application/json"}
        posts: dict[str, tuple[bytes, dict[str, str]]] = {
            "no signature": (body, json_ct),
            "garbage bearer": (body, {**json_ct, "Authorization": f"Bearer {FORGED}"}),
            "wrong secret": (body, {**json_ct, "Authorization": sign_webhook(WRONG_SECRET, body)}),
            "other body": (body, {**json_ct, "Authorization": sign_webhook(secret, b"{}")}),
            "deep JSON": (DEEP.encode(), json_ct),
            "array JSON": (b"[1, 2, 3]", json_ct),
            "not JSON": (b"{not json", json_ct),
            "not UTF-8": (b'{"from": "\xff\xfe"}', json_ct),
            "form body": (
                urlencode(params).encode(),
                {"Content-Type": "application/x-www-form-urlencoded"},
            ),
            "empty": (b"", json_ct),
            "2 MiB": (HUGE, json_ct),
        }
        for what, (data, headers) in posts.items():
            cases.append(Case(route, f"POST {what}", "POST", path, headers, data))
        cases.append(Case(route, "PUT", "PUT", path, {}, body))
        cases.append(Case(route, "DELETE", "DELETE", path))
    return cases


def twilio_signature(token: str, url: str, params: Mapping[str, str]) -> str:
    sig: str = RequestValidator(token).compute_signature(url, dict(params))
    return sig


def twilio_cases(base: str, account_sid: str) -> list[Case]:
    route = "/twilio/incoming-call"
    url = base + route
    token = SECRETS["TWILIO_AUTH_TOKEN"]
    params = {
        "AccountSid": account_sid,
        "CallSid": new_call_sid(),
        "From": HOSTILE_TWILIO_FROM,
        "To": "+14155550178",
        "Direction": "inbound",
        "CallStatus": "ringing",
    }
    form = urlencode(params).encode()
    ct = {"Content-Type": "application/x-www-form-urlencoded"}
    other = {**params, "From": "+14155550100"}
    cases = [
        Case(route, "no signature", "POST", route, ct, form),
        Case(route, "garbage signature", "POST", route, {**ct, "X-Twilio-Signature": FORGED}, form),
        Case(
            route,
            "wrong token",
            "POST",
            route,
            {**ct, "X-Twilio-Signature": twilio_signature(WRONG_SECRET, url, params)},
            form,
        ),
        Case(
            route,
            "other params",
            "POST",
            route,
            {**ct, "X-Twilio-Signature": twilio_signature(token, url, other)},
            form,
        ),
        Case(
            route,
            "other URL",
            "POST",
            route,
            {
                **ct,
                "X-Twilio-Signature": twilio_signature(
                    token, "https://evil.example" + route, params
                ),
            },
            form,
        ),
        Case(
            route,
            "forwarded host",
            "POST",
            route,
            {
                **ct,
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "evil.example",
                "X-Twilio-Signature": twilio_signature(
                    WRONG_SECRET, "https://evil.example" + route, params
                ),
            },
            form,
        ),
        Case(
            route,
            "repeated keys",
            "POST",
            route,
            ct,
            form + b"&From=" + HOSTILE_TWILIO_FROM.encode(),
        ),
        Case(route, "not UTF-8", "POST", route, ct, b"CallSid=CA1&From=%2B1415\xff"),
        Case(
            route,
            "unknown charset",
            "POST",
            route,
            {"Content-Type": "application/x-www-form-urlencoded; charset=no-such"},
            form,
        ),
        Case(
            route,
            "broken multipart",
            "POST",
            route,
            {"Content-Type": "multipart/form-data; boundary=x"},
            b"--x\r\nbroken",
        ),
        Case(
            route,
            "wrong boundary",
            "POST",
            route,
            {"Content-Type": "multipart/form-data; boundary=x"},
            b"--y\r\n\r\nv\r\n--y--\r\n",
        ),
        Case(
            route,
            "JSON body",
            "POST",
            route,
            {"Content-Type": "application/json"},
            json.dumps(params).encode(),
        ),
        Case(
            route, "deep JSON", "POST", route, {"Content-Type": "application/json"}, DEEP.encode()
        ),
        Case(route, "2 MiB", "POST", route, ct, HUGE),
        Case(route, "GET", "GET", route + "?" + form.decode()),
    ]
    return cases


def sip_cases() -> list[Case]:
    secret = SECRETS["OPENAI_WEBHOOK_SECRET"]
    cases: list[Case] = []
    body = incoming_call_body(
        f"rtc_probe_{uuid.uuid4().hex[:12]}", from_uri=f"<sip:{HOSTILE_SIP_FROM}@evil.example>"
    )
    for path in ("/openai/webhook", "/webhook"):
        route = f"{path} (OpenAI)"
        stale = signed_headers(secret, body, at=_ago(900))
        tampered = signed_headers(secret, b'{"type": "other"}')
        no_id = {k: v for k, v in signed_headers(WRONG_WHSEC, body).items() if k != "webhook-id"}
        posts: dict[str, tuple[bytes, Mapping[str, str]]] = {
            "no headers": (body, {"Content-Type": "application/json"}),
            "wrong secret": (body, signed_headers(WRONG_WHSEC, body)),
            "stale timestamp": (body, stale),
            "other body": (body, tampered),
            "garbage signature": (
                body,
                {**signed_headers(WRONG_WHSEC, body), "webhook-signature": f"v1,{FORGED}"},
            ),
            "no webhook-id": (body, no_id),
            "future timestamp": (body, signed_headers(secret, body, at=_ago(-900))),
            "deep JSON": (DEEP.encode(), signed_headers(WRONG_WHSEC, DEEP.encode())),
            "not JSON": (b"\xff\xfe not json", {"Content-Type": "application/json"}),
            "2 MiB": (HUGE, {"Content-Type": "application/json"}),
        }
        for what, (data, headers) in posts.items():
            cases.append(Case(route, what, "POST", path, headers, data))
        cases.append(Case(route, "GET", "GET", path))
    return cases


def _ago(seconds: float) -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime.now(UTC) - timedelta(seconds=seconds)


FORGED_LINE = "2026-01-01 00:00:00,000 ERROR   forged.logger [call=-] a line the client wrote"
"""A log line a client tries to smuggle into the bridge's log after a CR or LF."""


def forging_cases() -> list[Case]:
    """Requests whose logged parts (the call id they claim, their path) carry CR/LF."""
    route = "log forging (CR/LF)"
    ct = {"Content-Type": "application/json"}
    body = json.dumps({"uuid": f"probe\n{FORGED_LINE}", "status": "answered"}).encode()
    crlf = f"\r\n{FORGED_LINE}"
    q = urlencode({"call_uuid": f"probe{crlf}", "exp": "1", "token": FORGED})
    return [
        Case(route, "call id in an unsigned event", "POST", "/event", ct, body),
        Case(route, "call id in an unsigned answer", "POST", "/incoming-call", ct, body),
        Case(route, "call id in a GET answer", "GET", "/answer?" + urlencode({"uuid": crlf})),
        Case(route, "call id in a media upgrade", "GET", "/vonage/ws?" + q, UPGRADE),
        Case(route, "CRLF in a path", "GET", "/event%0D%0A" + FORGED_LINE.replace(" ", "%20")),
        Case(
            route,
            "CallSid in a Twilio webhook",
            "POST",
            "/twilio/incoming-call",
            {"Content-Type": "application/x-www-form-urlencoded"},
            urlencode({"CallSid": f"CA{crlf}"}).encode(),
        ),
    ]


def api_cases() -> list[Case]:
    ct = {"Content-Type": "application/json"}
    body = json.dumps({"to": HOSTILE_FROM, "from": HOSTILE_TO}).encode()
    r1, r2 = "/connect", "/calls"
    return [
        Case(r1, "no key", "POST", r1, ct, body),
        Case(r1, "forged key", "POST", r1, {**ct, "X-API-Key": FORGED}, body),
        Case(r1, "bearer instead", "POST", r1, {**ct, "Authorization": f"Bearer {FORGED}"}, body),
        Case(r1, "empty key", "POST", r1, {**ct, "X-API-Key": ""}, body),
        Case(
            r1,
            "deep JSON forged key",
            "POST",
            r1,
            {**ct, "X-API-Key": FORGED},
            b"[" * 2000 + b"]" * 2000,
        ),
        Case(r1, "2 MiB", "POST", r1, {**ct, "X-API-Key": FORGED}, HUGE),
        Case(
            r1,
            "form no key",
            "POST",
            r1,
            {"Content-Type": "application/x-www-form-urlencoded"},
            b"to=" + HOSTILE_FROM.encode(),
        ),
        Case(r1, "GET", "GET", r1),
        Case(r2, "no key", "GET", r2),
        Case(r2, "forged key", "GET", r2, {"X-API-Key": FORGED}),
        Case(r2, "one call forged key", "GET", r2 + "/" + str(uuid.uuid4()), {"X-API-Key": FORGED}),
        Case(
            r2,
            "paging repeated",
            "GET",
            r2 + "?limit=-1&limit=1000&offset=x",
            {"X-API-Key": FORGED},
        ),
        Case(r2, "path traversal", "GET", r2 + "/..%2F..%2Fetc%2Fpasswd", {"X-API-Key": FORGED}),
        Case(r2, "POST", "POST", r2, {"X-API-Key": FORGED}, b"{}"),
    ]


def media_cases(account_sid: str, base: str) -> list[Case]:
    """Upgrades of both media sockets without a valid token or signature."""
    route = "/vonage/ws (upgrade)"
    wrong = MediaTokenSigner(WRONG_SECRET.encode(), 300)
    call = str(uuid.uuid4())
    forged = wrong.mint(call, time.time())
    jwt_ok = sign_webhook(WRONG_SECRET, None)
    q = {
        "no query": "",
        "no token": urlencode({"call_uuid": call, "exp": forged.exp}),
        "forged token": urlencode({"call_uuid": call, "exp": forged.exp, "token": FORGED}),
        "other secret": urlencode({"call_uuid": call, "exp": forged.exp, "token": forged.token}),
        "expired": urlencode({"call_uuid": call, "exp": 1, "token": forged.token}),
        "exp not a number": urlencode({"call_uuid": call, "exp": "soon", "token": forged.token}),
        "exp huge": urlencode({"call_uuid": call, "exp": "9" * 400, "token": forged.token}),
        "call id forging a log line": urlencode(
            {"call_uuid": '-\n{"level": "ERROR", "msg": "forged"}\r', "exp": 1, "token": FORGED}
        ),
        "repeated keys": urlencode(
            [("call_uuid", call), ("call_uuid", "x"), ("exp", forged.exp), ("token", FORGED)]
        ),
    }
    cases = [
        Case(route, what, "GET", "/vonage/ws?" + query, {**UPGRADE, "Authorization": jwt_ok})
        for what, query in q.items()
    ]
    cases.append(Case(route, "no upgrade", "GET", "/vonage/ws?" + q["forged token"]))
    route = "/twilio/media-stream (upgrade)"
    url = base.replace("http", "ws", 1) + "/twilio/media-stream"
    for what, sig in (
        ("no signature", None),
        ("garbage signature", FORGED),
        ("wrong token", twilio_signature(WRONG_SECRET, url, {})),
        ("signed other URL", twilio_signature(SECRETS["TWILIO_AUTH_TOKEN"], url + "x", {})),
    ):
        headers = dict(UPGRADE)
        if sig:
            headers["X-Twilio-Signature"] = sig
        cases.append(Case(route, what, "GET", "/twilio/media-stream", headers))
    return cases


def raw_cases() -> list[Case]:
    """Requests aiohttp's parser refuses, or bodies it cannot read: on raw sockets."""
    route = "raw socket"
    json_ct = ("Content-Type", "application/json")
    cases = [
        Case(
            route,
            "NUL in X-API-Key",
            raw=raw_request("POST", "/connect", [("X-API-Key", f"{FORGED}\x00{MARK}")]),
        ),
        Case(
            route,
            "NUL in Authorization",
            raw=raw_request("GET", "/incoming-call", [("Authorization", f"Bearer {FORGED}\x00x")]),
        ),
        Case(
            route,
            "bare CR in Authorization",
            raw=raw_request("POST", "/event", [("Authorization", f"Bearer {FORGED}\rX-Evil: 1")]),
        ),
        Case(
            route,
            "LF in header value",
            raw=raw_request("GET", "/calls", [("X-API-Key", f"{FORGED}\nX-Evil: 1")]),
        ),
        Case(
            route,
            "9 KB header",
            raw=raw_request("GET", "/calls", [("X-API-Key", FORGED + "x" * 9000 + FORGED)]),
        ),
        Case(
            route,
            "obs-fold",
            raw=raw_request("GET", "/calls", [("X-API-Key", f"{FORGED}\r\n {MARK}")]),
        ),
        Case(
            route, "space in header name", raw=raw_request("GET", "/calls", [("X API Key", FORGED)])
        ),
        Case(
            route,
            "NUL in query",
            raw=head_only(f"GET /vonage/ws?token={FORGED}\x00x HTTP/1.1"),
        ),
        Case(
            route,
            "bad method",
            raw=b"G\x01T /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ),
        Case(
            route,
            "bad version",
            raw=b"GET /health HTTP/9.9\r\nHost: x\r\nConnection: close\r\n\r\n",
        ),
        Case(route, "no version", raw=b"GET /calls\r\n\r\n"),
        Case(
            route,
            "latin-1 key",
            raw=raw_request("POST", "/connect", [("X-API-Key", "\xff\xfe" + FORGED)]),
        ),
        Case(
            route,
            "CL and TE",
            raw=head_only(
                "POST /event HTTP/1.1",
                "Content-Length: 4",
                "Transfer-Encoding: chunked",
                "Content-Type: application/json",
            )
            + b"0\r\n\r\n",
        ),
        Case(
            route,
            "two Content-Lengths",
            raw=head_only("POST /event HTTP/1.1", "Content-Length: 2", "Content-Length: 3") + b"{}",
        ),
        Case(
            route,
            "broken chunks",
            raw=b"POST /connect HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-API-Key: "
            + SECRETS["CONNECT_API_KEY"][:5].encode()
            + b"\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        ),
    ]
    for path, ct in (
        ("/incoming-call", json_ct),
        ("/event", json_ct),
        ("/openai/webhook", json_ct),
        ("/twilio/incoming-call", ("Content-Type", "application/x-www-form-urlencoded")),
        ("/connect", json_ct),
    ):
        for enc in ("deflate", "gzip", "br"):
            cases.append(
                Case(
                    route,
                    f"{enc} garbage {path}",
                    raw=raw_request(
                        "POST", path, [ct, ("Content-Encoding", enc)], b"not compressed"
                    ),
                )
            )
    return cases


# --- legitimate calls ------------------------------------------------------------------------


@dataclass
class Probe:
    http: aiohttp.ClientSession
    base: str
    port: int
    fake: FakeRealtimeServer
    voice_api: FakeVoiceApi
    twilio_api: FakeTwilioApi
    account_sid: str
    legit_media_calls: int = 0
    legit_sip_webhooks: int = 0
    legit_connects: int = 0
    captured: list[str] = field(default_factory=list)
    """Credentials seen on the wire (JWTs, media tokens, signatures): never to be logged."""

    # Vonage -------------------------------------------------------------------------------

    async def vonage_answer(self, caller: FakeVonageCaller) -> tuple[str, dict[str, str]]:
        """A signed GET answer URL for ``caller``; sets its NCCO. (URL, headers) it used."""
        params = [
            ("to", caller.to_number),
            ("from", caller.from_number),
            ("uuid", caller.call_uuid),
            ("conversation_uuid", caller.conversation_uuid),
        ]
        url = f"{self.base}/incoming-call?{urlencode(params)}"
        auth = sign_webhook(SECRETS["VONAGE_SIGNATURE_SECRET"], query_json(params))
        self.captured.append(auth.split()[1])
        async with self.http.get(url, headers={"Authorization": auth}) as resp:
            if resp.status != 200:
                raise CallerError(f"signed answer refused: {resp.status}", status=resp.status)
            caller.ncco = await resp.json()
        query = dict(p.split("=", 1) for p in urlsplit(self.media_uri(caller)).query.split("&"))
        self.captured.append(query["token"])
        return url, {"Authorization": auth}

    @staticmethod
    def media_uri(caller: FakeVonageCaller) -> str:
        assert caller.ncco is not None
        connect = next(a for a in caller.ncco if a.get("action") == "connect")
        uri: str = connect["endpoint"][0]["uri"]
        return uri

    def sign_handshake(self, caller: FakeVonageCaller, authorization: str | None = None) -> str:
        """Have the fake caller present a Vonage-signed handshake (as Vonage does for an NCCO
        with ``authorization: {"type": "vonage"}``)."""
        assert caller.ncco is not None
        auth = authorization or sign_webhook(SECRETS["VONAGE_SIGNATURE_SECRET"], None)
        self.captured.append(auth.split()[1])
        connect = next(a for a in caller.ncco if a.get("action") == "connect")
        endpoint = connect["endpoint"][0]
        if endpoint.get("authorization") != {"type": "vonage"} and authorization is None:
            raise AssertionError(f"NCCO does not ask for a signed handshake: {endpoint}")
        endpoint["authorization"] = {"type": "custom", "value": auth}
        return auth

    def vonage_caller(self, **kwargs: Any) -> FakeVonageCaller:
        kwargs.setdefault("from_number", "447700900100")
        kwargs.setdefault("to_number", "447700900101")
        return FakeVonageCaller(self.http, f"{self.base}/incoming-call", **kwargs)

    async def vonage_call(self, caller: FakeVonageCaller) -> FakeRealtimeSession:
        before = len(self.fake.sessions)
        await self.vonage_answer(caller)
        self.sign_handshake(caller)
        await caller.connect()
        self.legit_media_calls += 1
        rt = await self.session_since(before)
        await rt.wait_for_event("session.update", timeout=10)
        return rt

    async def session_since(self, before: int, timeout: float = 10.0) -> FakeRealtimeSession:
        """The first Realtime session the fake accepted once it had ``before``: the call's own
        (the warm one its answer URL opened, which its media socket adopts), past any older
        warm session no socket adopted that is still queued at the fake."""
        async with asyncio.timeout(timeout):
            while True:
                session = await self.fake.wait_for_session(timeout=timeout)
                if self.fake.sessions.index(session) >= before:
                    return session

    async def upgrade_status(self, uri: str, headers: Mapping[str, str]) -> Outcome:
        url = uri.replace("ws", "http", 1)
        async with self.http.get(URL(url, encoded=True), headers={**UPGRADE, **headers}) as resp:
            await resp.read()
            return resp.status

    async def vonage_faults_and_replays(self) -> None:
        route = "Vonage call (legit, then replayed)"
        caller = self.vonage_caller()
        before = len(self.fake.sessions)
        url, headers = await self.vonage_answer(caller)
        uri = self.media_uri(caller)
        # The same signed answer request again: the JWT is spent.
        async with self.http.get(url, headers=headers) as resp:
            TALLY.record(route, "answer replayed", resp.status, error_code(await resp.read()))
        TALLY.check(
            "replayed Vonage answer", "401 signature_replayed", f"{resp.status} {TALLY.last_code}"
        )
        # The media token alone, without Vonage's JWT: refused, and not spent.
        status = await self.upgrade_status(uri, {})
        TALLY.record(route, "media token without JWT", status)
        TALLY.check("media token without a Vonage JWT", 401, status)
        auth = self.sign_handshake(caller)
        await caller.connect()
        self.legit_media_calls += 1
        rt = await self.session_since(before)
        await rt.wait_for_event("session.update", timeout=10)
        # While it is live: the same URI with a fresh JWT.
        status = await self.upgrade_status(
            uri, {"Authorization": sign_webhook(SECRETS["VONAGE_SIGNATURE_SECRET"], None)}
        )
        TALLY.record(route, "media URI while live", status)
        TALLY.check("second socket while the call is live", 403, status)
        # Mid-call faults.
        ws = caller._ws
        assert ws is not None
        await ws.send_str(DEEP)
        for i in range(300):
            await ws.send_str(json.dumps({"event": f"websocket:probe-{i}", "from": HOSTILE_FROM}))
        await ws.send_str("not json " + FORGED)
        await ws.send_bytes(b"\x00" * 333)
        await caller.stream_audio(speech_l16(), realtime=True)
        await caller.stream_silence(900, realtime=False)
        await rt.wait_responses_done(1, timeout=20)
        TALLY.check(
            "Vonage call answers after deep JSON, 300 unknown events, junk", "alive", "alive"
        )
        await caller.hang_up()
        await caller.close()
        # Afterwards: the media URI again (fresh JWT), and the spent handshake JWT again.
        status = await self.upgrade_status(
            uri, {"Authorization": sign_webhook(SECRETS["VONAGE_SIGNATURE_SECRET"], None)}
        )
        TALLY.record(route, "media URI reused", status)
        TALLY.check("media URI of a finished call", 403, status)
        second = self.vonage_caller()
        before = len(self.fake.sessions)
        await self.vonage_answer(second)
        await self.session_since(before)  # its answer URL's warm session: counted before
        status = await self.upgrade_status(self.media_uri(second), {"Authorization": auth})
        TALLY.record(route, "handshake JWT replayed", status)
        TALLY.check("spent handshake JWT on a fresh token", 401, status)
        # A signed socket whose first message is nested 3,000 deep: closed, no session.
        sessions = len(self.fake.sessions)
        jwt2 = sign_webhook(SECRETS["VONAGE_SIGNATURE_SECRET"], None)
        self.captured.append(jwt2.split()[1])
        async with self.http.ws_connect(
            URL(self.media_uri(second), encoded=True), headers={"Authorization": jwt2}
        ) as raw:
            await raw.send_str(DEEP)
            msg = await raw.receive(timeout=10)
        code = raw.close_code
        TALLY.record("Vonage socket (first message)", "deep JSON first", f"close {code}")
        TALLY.check(
            "deep JSON as the first Vonage message",
            f"close {WSCloseCode.UNSUPPORTED_DATA.value}",
            f"close {code}",
        )
        del msg
        TALLY.check("no session for that socket", sessions, len(self.fake.sessions))

    async def vonage_token_race(self) -> None:
        """Five upgrades at once with one media URI, each with its own valid JWT: one wins."""
        caller = self.vonage_caller()
        await self.vonage_answer(caller)
        uri = URL(self.media_uri(caller), encoded=True)
        secret = SECRETS["VONAGE_SIGNATURE_SECRET"]

        async def attempt() -> aiohttp.ClientWebSocketResponse | int:
            auth = sign_webhook(secret, None)
            self.captured.append(auth.split()[1])
            try:
                return await self.http.ws_connect(uri, headers={"Authorization": auth})
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status

        results = await asyncio.gather(*(attempt() for _ in range(5)))
        won = [r for r in results if not isinstance(r, int)]
        for r in results:
            outcome: Outcome = 101 if not isinstance(r, int) else r
            TALLY.note("Vonage call (legit, then replayed)", "5 upgrades racing one token", outcome)
        TALLY.check("upgrades racing for one Vonage media token that win", 1, len(won))
        for ws in won:  # closed before websocket:connected: no Realtime session is opened
            await ws.close()

    async def twilio_token_race(self) -> None:
        """Five streams at once with one webhook's token: one is bridged."""
        first = self.twilio_caller()
        self.twilio_api.add_call(first.call_sid)
        before = len(self.fake.sessions)
        twiml = await first.answer()
        self.captured.append(twiml.parameters["token"])
        callers = [first] + [self.twilio_caller(call_sid=first.call_sid) for _ in range(4)]
        for c in callers[1:]:
            c.answer_info = twiml
        await asyncio.gather(*(c.connect() for c in callers))
        rt = await self.session_since(before)
        await rt.wait_for_event("session.update", timeout=10)
        self.legit_media_calls += 1
        losers = [c for c in callers if c.call_sid == first.call_sid]
        for c in losers:
            with contextlib.suppress(TimeoutError):
                await c.wait_closed(timeout=2)
        refused = [c for c in callers if c.close_code == WSCloseCode.POLICY_VIOLATION]
        for c in callers:
            outcome = f"close {c.close_code}" if c.close_code is not None else "bridged"
            TALLY.note("Twilio call (legit, then replayed)", "5 streams racing one token", outcome)
        TALLY.check("streams racing for one Twilio token refused (1008)", 4, len(refused))
        # the answer URL's warm session, adopted by the one stream bridged; the others none
        TALLY.check("... Realtime sessions they opened", 1, len(self.fake.sessions) - before)
        for c in callers:
            await c.close()

    async def fast_vonage(self) -> None:
        caller = self.vonage_caller()
        await self.vonage_call(caller)
        await caller.stream_audio(bytes(VONAGE_FRAME) * 1500, realtime=False)  # 30 s at once
        await caller.wait_closed(timeout=15)
        TALLY.record(
            "Vonage call (legit, then replayed)",
            "audio 30x real time",
            f"close {caller.close_code}",
        )
        TALLY.check(
            "Vonage audio faster than real time", "close 1008", f"close {caller.close_code}"
        )
        await caller.close()

    # Twilio -------------------------------------------------------------------------------

    def twilio_caller(self, **kwargs: Any) -> FakeTwilioCaller:
        kwargs.setdefault("from_number", "+14155550100")
        kwargs.setdefault("to_number", "+14155550199")
        return FakeTwilioCaller(
            self.http,
            f"{self.base}/twilio/incoming-call",
            auth_token=SECRETS["TWILIO_AUTH_TOKEN"],
            account_sid=self.account_sid,
            **kwargs,
        )

    async def twilio_faults_and_replays(self) -> None:
        route = "Twilio call (legit, then replayed)"
        caller = self.twilio_caller()
        self.twilio_api.add_call(caller.call_sid)
        before = len(self.fake.sessions)
        twiml = await caller.answer()
        self.captured.append(twiml.parameters["token"])
        await caller.connect()
        self.legit_media_calls += 1
        rt = await self.session_since(before)
        await rt.wait_for_event("session.update", timeout=10)
        ws = caller._ws
        assert ws is not None
        await ws.send_str(DEEP)
        for i in range(300):
            await ws.send_str(json.dumps({"event": f"probe-{i}", "from": HOSTILE_TWILIO_FROM}))
        for kind in (
            "bad_json",
            "bad_base64",
            "wrong_stream_sid",
            "missing_media",
            "short_frame",
            "binary",
        ):
            await caller.send_malformed(kind)
        await caller.stream_audio(pcm16_to_mulaw(speech_l16(), 16_000), realtime=True)
        await caller.stream_silence(900, realtime=False)
        await rt.wait_responses_done(1, timeout=20)
        TALLY.check(
            "Twilio call answers after deep JSON, 300 unknown events, junk", "alive", "alive"
        )
        await caller.hang_up()
        await caller.close()
        # The webhook replayed (the same signed form): accepted, a new token ...
        replay = self.twilio_caller(call_sid=caller.call_sid, stream_sid=None)
        twiml2 = await replay.answer()
        self.captured.append(twiml2.parameters["token"])
        TALLY.note(route, "webhook replayed (signature has no timestamp)", 200)
        # ... whose stream is refused: the CallSid already had one.
        await replay.connect()
        await replay.wait_closed(timeout=10)
        TALLY.record(route, "replay's stream", f"close {replay.close_code}")
        TALLY.check(
            "stream of a replayed Twilio webhook", "close 1008", f"close {replay.close_code}"
        )
        await replay.close()
        # The first token again.
        again = self.twilio_caller(call_sid=caller.call_sid)
        again.answer_info = twiml
        await again.connect()
        await again.wait_closed(timeout=10)
        TALLY.record(route, "token reused", f"close {again.close_code}")
        TALLY.check("Twilio media token used twice", "close 1008", f"close {again.close_code}")
        await again.close()
        await self.twilio_bad_starts(twiml)

    async def twilio_bad_starts(self, legit: Any) -> None:
        """Signed upgrades (the signature covers only the URL, so a captured one replays
        forever) whose ``start`` carries no usable token."""
        route = "Twilio socket (signed upgrade, bad start)"
        wrong = MediaTokenSigner(WRONG_SECRET.encode(), 300)
        for what, params in (
            ("no token", {}),
            ("forged token", {"call_sid": "", "exp": "1", "token": FORGED}),
            ("other secret", None),
            ("another call's token", dict(legit.parameters)),
        ):
            caller = self.twilio_caller()
            if params is None:
                minted = wrong.mint(caller.call_sid, time.time())
                params = {
                    "call_sid": caller.call_sid,
                    "exp": str(minted.exp),
                    "token": minted.token,
                }
            elif params.get("call_sid") == "":
                params["call_sid"] = caller.call_sid
            caller.answer_info = dataclasses.replace(legit, parameters=params)
            await caller.connect()
            await caller.wait_closed(timeout=10)
            TALLY.record(route, what, f"close {caller.close_code}")
            if caller.close_code != WSCloseCode.POLICY_VIOLATION:
                TALLY.failures.append(f"{route} {what}: close {caller.close_code}, not 1008")
            await caller.close()
        big = json.dumps({"event": "start", "pad": "x" * (2 * 1024 * 1024)})
        for what, first in (
            ("deep JSON first", DEEP),
            ("not JSON first", FORGED),
            ("2 MiB first", big),
        ):
            url = self.base.replace("http", "ws", 1) + "/twilio/media-stream"
            sig = twilio_signature(SECRETS["TWILIO_AUTH_TOKEN"], url, {})
            async with self.http.ws_connect(url, headers={"X-Twilio-Signature": sig}) as raw:
                await raw.send_str(first)
                await raw.receive(timeout=10)
            TALLY.record(route, what, f"close {raw.close_code}")
            if raw.close_code is None or raw.close_code < 1002:
                TALLY.failures.append(f"{route} {what}: close {raw.close_code}")

    async def fast_twilio(self) -> None:
        caller = self.twilio_caller()
        self.twilio_api.add_call(caller.call_sid)
        before = len(self.fake.sessions)
        await caller.answer()
        await caller.connect()
        self.legit_media_calls += 1
        rt = await self.session_since(before)
        await rt.wait_for_event("session.update", timeout=10)
        await caller.stream_audio(MULAW_SILENCE * (8 * 30_000), realtime=False)  # 30 s
        await caller.wait_closed(timeout=15)
        TALLY.record(
            "Twilio call (legit, then replayed)",
            "audio 30x real time",
            f"close {caller.close_code}",
        )
        TALLY.check(
            "Twilio audio faster than real time", "close 1008", f"close {caller.close_code}"
        )
        await caller.close()

    # OpenAI SIP, POST /connect ---------------------------------------------------------------

    async def sip_and_retry(self) -> None:
        route = "/openai/webhook (legit, then retried)"
        body = incoming_call_body(f"rtc_probe_{uuid.uuid4().hex[:12]}")
        headers = signed_headers(SECRETS["OPENAI_WEBHOOK_SECRET"], body)
        self.captured.append(headers["webhook-signature"].split(",", 1)[1])
        for what in ("signed", "retried (same webhook-id)"):
            async with self.http.post(
                f"{self.base}/openai/webhook", data=body, headers=headers
            ) as resp:
                answer = await resp.json()
            TALLY.note(route, what, resp.status)
            if what == "signed":
                self.legit_sip_webhooks += 1
                TALLY.check(
                    "signed SIP webhook", "200 accepted", f"{resp.status} {answer.get('status')}"
                )
            else:
                TALLY.check(
                    "retried SIP webhook", "200 duplicate", f"{resp.status} {answer.get('status')}"
                )

    async def connect_with_key(self) -> None:
        headers = {"X-API-Key": SECRETS["CONNECT_API_KEY"]}
        async with self.http.post(
            f"{self.base}/connect", json={"to": "+818012345678"}, headers=headers
        ) as resp:
            await resp.read()
        self.legit_connects += 1
        TALLY.note("/connect (legit, with key)", "with the key", resp.status)
        TALLY.check("POST /connect with the key", 201, resp.status)


TALLY = Tally()


def speech_l16() -> bytes:
    """The first 1.2 s of the caller recording (16 kHz L16): an utterance the fake echoes."""
    pcm, rate = read_wav_pcm16(CALLER_WAV)
    assert rate == 16_000, rate
    return pcm[: 60 * VONAGE_FRAME]


# --- the bridge process ----------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def private_key_pem() -> str:
    return (
        application_test_key()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


async def start_bridge(
    log_format: str,
    log_path: Path,
    realtime: str,
    voice_api: str,
    twilio_api: str,
    account_sid: str,
) -> tuple[subprocess.Popen[bytes], str, int]:
    port = free_port()
    url = f"http://{HOST}:{port}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONUNBUFFERED": "1",
        "SERVER_URL": url,
        "HOST": HOST,
        "PORT": str(port),
        "OPENAI_BASE_URL": realtime,
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": log_format,
        "DATABASE_URL": "sqlite:///:memory:",
        "ALLOW_UNSIGNED_WEBHOOKS": "false",
        "DRAIN_TIMEOUT_S": str(DRAIN_TIMEOUT_S),
        "TWILIO_ACCOUNT_SID": account_sid,
        "TWILIO_API_URL": twilio_api,
        "VONAGE_APPLICATION_ID": APP_ID,
        "VONAGE_PRIVATE_KEY": private_key_pem(),
        "VONAGE_API_URL": voice_api,
        "VONAGE_OUTBOUND_FROM": "+815031023332",
        **SECRETS,
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vonage_bridge", "--env-file", str(log_path) + ".no-env"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            if proc.poll() is not None:
                raise SystemExit(f"bridge exited with {proc.returncode}; see {log_path}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{url}/health") as r:
                    if r.status == 200:
                        return proc, url, port
            await asyncio.sleep(0.1)
    proc.kill()
    raise SystemExit(f"bridge /health never answered; see {log_path}")


# --- the run ---------------------------------------------------------------------------------


async def flood(probe: Probe, rounds: int) -> int:
    sem = asyncio.Semaphore(CONCURRENCY)
    fixed = raw_cases()

    async def one(case: Case) -> None:
        async with sem:
            await run_case(probe.http, probe.base, probe.port, case)

    sent = 0
    for r in range(rounds):
        cases = vonage_cases(r) + twilio_cases(probe.base, probe.account_sid) + sip_cases()
        cases += api_cases() + media_cases(probe.account_sid, probe.base) + fixed
        cases += forging_cases()
        await asyncio.gather(*(one(c) for c in cases))
        sent += len(cases)
    return sent


async def shutdown_with_live_call(probe: Probe, proc: subprocess.Popen[bytes]) -> None:
    caller = probe.vonage_caller()
    await probe.vonage_call(caller)
    await caller.stream_silence(200, realtime=True)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(_wait, proc, KILL_TIMEOUT_S + 5)
    took = time.monotonic() - t0
    await caller.wait_closed(timeout=5)
    TALLY.check("SIGTERM with a live call: exit status", 0, code)
    TALLY.check(
        f"... within the drain and the goodbyes ({KILL_TIMEOUT_S:.0f} s)",
        f"< {KILL_TIMEOUT_S:.0f} s",
        f"{took:.1f} s",
        took < KILL_TIMEOUT_S,
    )
    TALLY.check("... the live call closed with", "close 1001", f"close {caller.close_code}")
    await caller.close()


def _wait(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        return None


def read_log(path: Path, start: int = 0, end: int | None = None) -> list[str]:
    data = path.read_bytes()[start:end]
    return data.decode("utf-8", "replace").splitlines()


TEXT_RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (\w+) ")
"""How every line of ``LOG_FORMAT=text`` starts (``logs._TEXT_FORMAT``)."""
NOT_A_RECORD = "not a record"


def record_level(line: str, log_format: str) -> tuple[str, bool]:
    """(level, carries a traceback) of one log line; :data:`NOT_A_RECORD` for a line that does
    not start as a record of ``log_format`` does (a forged or split line)."""
    if log_format == "text":
        m = TEXT_RECORD.match(line)
        return (m.group(1), False) if m else (NOT_A_RECORD, False)
    try:
        doc = json.loads(line)
    except ValueError:
        return NOT_A_RECORD, False
    if not isinstance(doc, dict):
        return NOT_A_RECORD, False
    return str(doc.get("level", "?")), "exc" in doc


def analyse_log(lines: list[str], probe: Probe, log_format: str) -> dict[str, Any]:
    levels: Counter[str] = Counter()
    tracebacks = 0
    leaks: list[str] = []
    numbers: list[str] = []
    legit_number_lines = 0
    answers = 0
    needles = {**{k: v for k, v in SECRETS.items()}, "forged marker": MARK}
    pem_body = private_key_pem().splitlines()[3]
    needles["VONAGE_PRIVATE_KEY"] = pem_body
    for i, cred in enumerate(probe.captured):
        needles[f"captured credential {i}"] = cred
    for line in lines:
        level, has_exc = record_level(line, log_format)
        levels[level] += 1
        if has_exc or "Traceback" in line:
            tracebacks += 1
        for name, needle in needles.items():
            if needle and needle in line:
                leaks.append(f"{name}: {line[:200]}")
        for number in HOSTILE_NUMBERS:
            if number in line:
                numbers.append(f"{number}: {line[:200]}")
        if any(n in line for n in LEGIT_NUMBERS):
            legit_number_lines += 1
        if "answered by assistant" in line:  # a verified answer URL: it may open a warm session
            answers += 1
    return {
        "answers": answers,
        "levels": levels,
        "tracebacks": tracebacks,
        "leaks": leaks,
        "numbers": numbers,
        "legit_number_lines": legit_number_lines,
    }


async def main_async(args: argparse.Namespace) -> int:
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="hostile-probe-"))
    log_path = tmp / "bridge.log"
    account_sid = new_account_sid()
    async with (
        FakeRealtimeServer(api_key=SECRETS["OPENAI_API_KEY"]) as fake,
        FakeVoiceApi(application_test_key().public_key(), APP_ID) as voice_api,
        FakeTwilioApi(account_sid, SECRETS["TWILIO_AUTH_TOKEN"]) as twilio_api,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)) as http,
    ):
        proc, base, port = await start_bridge(
            args.log_format,
            log_path,
            fake.base_url,
            voice_api.base_url,
            twilio_api.base_url,
            account_sid,
        )
        probe = Probe(http, base, port, fake, voice_api, twilio_api, account_sid)
        flood_lines = 0
        flood_sent = 0
        flood_sessions = 0
        try:
            async with asyncio.timeout(TIME_LIMIT_S - 10) as deadline:
                await probe.vonage_faults_and_replays()
                await probe.fast_vonage()
                await probe.vonage_token_race()
                await probe.twilio_token_race()
                await probe.twilio_faults_and_replays()
                await probe.fast_twilio()
                await probe.sip_and_retry()
                await probe.connect_with_key()
                await asyncio.sleep(0.5)  # let the legit calls' lines reach the log
                before = log_path.stat().st_size
                sessions_before_flood = len(fake.sessions)
                flood_sent = await flood(probe, args.rounds)
                await asyncio.sleep(0.5)
                flood_lines = len(read_log(log_path, before))
                flood_sessions = len(fake.sessions) - sessions_before_flood
                await shutdown_with_live_call(probe, proc)
        except TimeoutError as exc:
            if deadline.expired():
                TALLY.failures.append(f"probe did not finish within {TIME_LIMIT_S:.0f} s")
            else:  # a step's own wait ran out: say which
                where = traceback.extract_tb(exc.__traceback__)
                steps = [f"{f.name} (line {f.lineno})" for f in where if f.filename == __file__]
                TALLY.failures.append(f"a step timed out: {' > '.join(steps[1:]) or '?'}")
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                _wait(proc, KILL_TIMEOUT_S)
        sessions = [h for h in fake.handshakes if h["status"] == 101]
        accepts = [h for h in fake.handshakes if h["path"].endswith("/accept")]
        created = len(voice_api.created)
    log = analyse_log(read_log(log_path), probe, args.log_format)
    took = time.monotonic() - started

    # Each legit media call has a session: the warm one its verified answer URL opened, or its
    # own. A verified answer URL whose socket never comes (a replayed Twilio webhook, a socket
    # refused) may leave a warm session, closed unused; nothing unverified opens one.
    most = probe.legit_media_calls + log["answers"]
    TALLY.check(
        "Realtime sessions opened at the fake",
        f"{probe.legit_media_calls}-{most}",
        len(sessions),
        probe.legit_media_calls <= len(sessions) <= most,
    )
    TALLY.check("Realtime sessions opened by the flood", 0, flood_sessions)
    TALLY.check("SIP accept requests at the fake", probe.legit_sip_webhooks, len(accepts))
    TALLY.check("calls created at the fake Voice API", probe.legit_connects, created)
    TALLY.check(
        "ERROR lines in the bridge's log", 0, log["levels"]["ERROR"] + log["levels"]["CRITICAL"]
    )
    TALLY.check("tracebacks in the bridge's log", 0, log["tracebacks"])
    TALLY.check("secrets, forged or captured credentials in the log", 0, len(log["leaks"]))
    TALLY.check("hostile phone numbers in the log", 0, len(log["numbers"]))
    TALLY.check(
        "log lines per flood request",
        "<= 1",
        f"{flood_lines / max(flood_sent, 1):.2f} ({flood_lines} / {flood_sent})",
        flood_lines <= flood_sent,
    )
    TALLY.check("probe wall time", f"< {TIME_LIMIT_S:.0f} s", f"{took:.0f} s", took < TIME_LIMIT_S)
    TALLY.check(
        f"log lines that are not a {args.log_format} record (forged or split)",
        0,
        log["levels"][NOT_A_RECORD],
    )
    print_report(log, flood_sent, took, log_path, details=args.details)
    if TALLY.failures:
        return 1
    shutil.rmtree(tmp, ignore_errors=True)  # kept, and named, only when something failed
    return 0


STATUS_COLUMNS: tuple[Outcome, ...] = (400, 401, 403, 404, 405, 413)


def print_report(
    log: dict[str, Any], flood_sent: int, took: float, log_path: Path, *, details: bool
) -> None:
    print(f"hostile probe: {TALLY.sent} requests/sockets ({flood_sent} in the flood), {took:.0f} s")
    print()
    cols = ["route", "sent", "2xx", *(str(c) for c in STATUS_COLUMNS), "other 4xx", "5xx", "closed"]
    rows: list[list[str]] = []
    for route, counts in TALLY.outcomes.items():
        ok = sum(n for o, n in counts.items() if isinstance(o, int) and o < 300)
        five = sum(n for o, n in counts.items() if isinstance(o, int) and o >= 500)
        other = sum(
            n
            for o, n in counts.items()
            if isinstance(o, int) and 400 <= o < 500 and o not in STATUS_COLUMNS
        )
        closed = ", ".join(
            f"{o} x{n}" for o, n in sorted(counts.items(), key=str) if isinstance(o, str)
        )
        rows.append(
            [
                route,
                str(sum(counts.values())),
                str(ok),
                *(str(counts.get(c, 0)) for c in STATUS_COLUMNS),
                str(other),
                str(five),
                closed,
            ]
        )
    print_table(cols, rows)
    if details:
        print()
        print_table(
            ["route", "case", "outcome", "times"],
            [[r, w, o, str(n)] for (r, w, o), n in sorted(TALLY.details.items())],
        )
    print()
    print("error codes: " + ", ".join(f"{c} {n}" for c, n in TALLY.codes.most_common()))
    print(
        "bridge log: "
        + ", ".join(f"{lvl} {n}" for lvl, n in log["levels"].most_common())
        + f"; lines naming the probe's legitimate callers: {log['legit_number_lines']} "
        "(answer URL, Twilio webhook and SIP INFO lines, by design)"
    )
    print()
    print_table(
        ["invariant", "expected", "measured", "ok"],
        [[n, e, m, "ok" if ok else "FAIL"] for n, e, m, ok in TALLY.checks],
    )
    if TALLY.failures:
        print()
        print(f"FAILED ({len(TALLY.failures)}); bridge log kept at {log_path}")
        for line in TALLY.failures[:40]:
            print("  " + line)
        for line in (log["leaks"] + log["numbers"])[:20]:
            print("  log: " + line)


def print_table(cols: list[str], rows: list[list[str]]) -> None:
    widths = [
        max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(cols)
    ]
    print("| " + " | ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=20, help="flood rounds (~170 requests each)")
    parser.add_argument(
        "--log-format",
        choices=("json", "text"),
        default="json",
        help="the bridge's LOG_FORMAT (json, as in production; text, as on a terminal)",
    )
    parser.add_argument("--details", action="store_true", help="also print every case's outcome")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 60:
        parser.error("--rounds must be 1-60 (the probe is bounded to ~2 minutes)")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())

"""Malformed input to the routes of assistants, outbound context, recordings, live calls and
the console: each gets a 4xx answer (or a page), never a 5xx or a traceback."""

from __future__ import annotations

import pytest
from support import StartCall

KEY = "probe-key-0123456789abcdef"
BAD = [
    ("GET", "/calls?min_cost=nan", None),
    ("GET", "/calls?min_cost=inf", None),
    ("GET", "/calls?min_cost=-0", None),
    ("GET", "/calls?limit=99999999999999999999", None),
    ("GET", "/calls/..%2F..%2Fetc%2Fpasswd/recording", None),
    ("GET", "/calls/%00/recording", None),
    ("GET", "/calls/" + "a" * 5000 + "/recording", None),
    ("GET", "/calls/x/recording", None),
    ("PUT", "/assistants/sales", b"\xff\xfe"),
    ("PUT", "/assistants/sales", b"[" * 10000),
    ("PUT", "/assistants/sales", b'{"numbers": ["+1"*1000]}'),
    ("PUT", "/assistants/sales", b'{"numbers": "x"}'),
    ("PUT", "/assistants/sales", b'{"turn_detection": {"type": "server_vad", "threshold": 1e400}}'),
    ("PUT", "/assistants/sales", b'{"max_call_s": NaN}'),
    ("PUT", "/assistants/sales", b'{"faq": [{}]}'),
    ("PUT", "/assistants/" + "A" * 300, b"{}"),
    ("PUT", "/assistants/%00", b"{}"),
    ("DELETE", "/assistants/nope", None),
    ("GET", "/assistants/nope", None),
    ("POST", "/connect", b'{"to": "+447700900123", "variables": {"a": 1}}'),
    ("POST", "/connect", b'{"to": "+447700900123", "metadata": "x"}'),
    ("POST", "/connect", b'{"to": "+447700900123", "status_url": "javascript:x"}'),
    ("POST", "/connect", b'{"to": "+447700900123", "machine_detection": {"on_machine": "x"}}'),
    ("POST", "/connect", b'{"to": "+447700900123", "region": 5}'),
    ("POST", "/connect", b'{"to": "+447700900123", "assistant": "../x"}'),
    ("POST", "/connect", b'{"to": 12}'),
    ("POST", "/calls/nope/hangup", None),
    ("GET", "/calls/live?x=1", None),  # 400 unknown_parameter
    ("GET", "/console/login?next=http://evil", None),
    ("POST", "/console/login", b"name=a&password=b"),
    ("GET", "/console/calls/%2e%2e", None),
    ("GET", "/", None),
    ("GET", "/README.md", None),
]


@pytest.mark.parametrize(("method", "path", "body"), BAD)
async def test_malformed_input_is_never_a_5xx(
    start_call: StartCall, method: str, path: str, body: bytes | None
) -> None:
    call = await start_call(CONNECT_API_KEY=KEY)
    headers = {"X-API-Key": KEY, "Content-Type": "application/json"}
    url = f"{call.bridge.url}{path}"
    async with call.http.request(
        method, url, data=body, headers=headers, allow_redirects=False
    ) as resp:
        text = await resp.text()
    assert resp.status < 500, (resp.status, text[:300])
    assert "Traceback" not in text

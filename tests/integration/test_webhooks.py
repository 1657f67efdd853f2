"""Answer URL, event URL, health and error bodies over real HTTP on loopback."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
from support import StartCall

from vonage_bridge.logs import CallContextFilter

FIELDS = {
    "uuid": "aaaa-1111",
    "conversation_uuid": "CON-bbbb",
    "from": "447700900000",
    "to": "447700900001",
}


def websocket_endpoint(ncco: list[dict[str, object]]) -> dict[str, object]:
    connect = ncco[-1]
    assert connect["action"] == "connect"
    endpoint = connect["endpoint"][0]  # type: ignore[index]
    assert isinstance(endpoint, dict)
    return endpoint


@pytest.mark.parametrize("path", ["/incoming-call", "/answer"])
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_answer_url_returns_talk_then_connect_with_a_tokened_uri(
    start_call: StartCall, path: str, method: str
) -> None:
    call = await start_call(GREETING_TEXT="Welcome", GREETING_LANGUAGE="en-GB")
    url = call.bridge.url + path
    if method == "GET":
        resp = await call.http.get(url, params=FIELDS)
    else:
        resp = await call.http.post(url, json=FIELDS)
    assert resp.status == 200
    ncco = await resp.json()
    assert ncco[0] == {"action": "talk", "text": "Welcome", "language": "en-GB"}
    assert len(ncco) == 2  # nothing after connect: it would run as soon as the socket is up
    assert ncco[1]["from"] == "447700900001"
    endpoint = websocket_endpoint(ncco)
    assert endpoint["type"] == "websocket"
    assert endpoint["content-type"] == "audio/l16;rate=16000"
    uri = urlsplit(str(endpoint["uri"]))
    assert f"{uri.scheme}://{uri.netloc}" == call.bridge.url.replace("http", "ws")
    assert uri.path == "/vonage/ws"
    query = parse_qs(uri.query)
    assert query["call_uuid"] == ["aaaa-1111"]
    assert query["exp"][0].isdigit() and query["token"][0]
    assert endpoint["headers"] == {
        "call_uuid": "aaaa-1111",
        "conversation_uuid": "CON-bbbb",
        "from": "447700900000",
        "to": "447700900001",
    }


async def test_answer_url_bounds_hostile_fields(start_call: StartCall) -> None:
    call = await start_call()
    hostile = {"uuid": "u-1&token=x", "from": '"><script>' * 80, "to": "x" * 5000}
    resp = await call.http.post(call.bridge.url + "/incoming-call", json=hostile)
    assert resp.status == 200
    endpoint = websocket_endpoint(await resp.json())
    headers = endpoint["headers"]
    assert isinstance(headers, dict)
    assert len(json.dumps(headers, separators=(",", ":")).encode()) <= 512
    assert all(len(v) <= 64 and '"' not in v and "<" not in v for v in headers.values())
    query = parse_qs(urlsplit(str(endpoint["uri"])).query)
    assert query["call_uuid"] == ["u-1tokenx"]  # '&' and '=' cannot smuggle query fields
    assert len(query["token"]) == 1


async def test_answer_url_without_fields_still_returns_a_valid_ncco(start_call: StartCall) -> None:
    call = await start_call(GREETING_TEXT="")
    resp = await call.http.get(call.bridge.url + "/incoming-call")
    assert resp.status == 200
    ncco = await resp.json()
    assert [a["action"] for a in ncco] == ["connect"]
    assert ncco[0]["randomFromNumber"] is True
    assert parse_qs(urlsplit(websocket_endpoint(ncco)["uri"]).query)["call_uuid"][0].startswith(  # type: ignore[arg-type]
        "unknown-"
    )


@pytest.mark.parametrize("path", ["/incoming-call", "/event"])
@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]"])
async def test_webhook_with_malformed_json_gets_a_400_json_error(
    start_call: StartCall, path: str, body: bytes
) -> None:
    call = await start_call()
    resp = await call.http.post(
        call.bridge.url + path, data=body, headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_event_url_accepts_statuses(
    start_call: StartCall, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    call = await start_call()
    event = {**FIELDS, "status": "failed", "detail": "cannot_route", "direction": "inbound"}
    url = call.bridge.url + "/event"
    caplog.handler.addFilter(CallContextFilter())  # what setup_logging puts on its handler
    with caplog.at_level("INFO"):
        if method == "GET":
            resp = await call.http.get(url, params=event)
        else:
            resp = await call.http.post(url, json=event)
    assert resp.status == 204
    lines = [r for r in caplog.records if "event failed (cannot_route)" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelname == "WARNING"
    assert getattr(lines[0], "call_uuid", None) == "aaaa-1111"


async def test_health_and_unknown_paths_answer_json(start_call: StartCall) -> None:
    call = await start_call()
    resp = await call.http.get(call.bridge.url + "/health")
    assert resp.status == 200
    assert (await resp.json())["status"] == "ok"
    resp = await call.http.get(call.bridge.url + "/nope")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"
    resp = await call.http.delete(call.bridge.url + "/event")
    assert resp.status == 405
    assert "error" in await resp.json()

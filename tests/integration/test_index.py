"""``GET /`` answers a small index; ``GET /calls`` refuses a query parameter it does not know."""

from __future__ import annotations

from support import StartCall

from vonage_bridge import __version__

API_KEY = "index-test-key-0123456789"


async def test_root_is_a_json_index_linking_health_and_the_readme(start_call: StartCall) -> None:
    call = await start_call()
    async with call.http.get(call.bridge.url + "/") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert (body["service"], body["version"]) == ("vonage-bridge", __version__)
    assert body["links"]["health"] == "/health"
    assert body["links"]["readme"]["Quick start"] == "/README.md#quick-start"
    async with call.http.get(call.bridge.url + body["links"]["health"]) as resp:
        assert resp.status == 200
    async with call.http.get(call.bridge.url + "/README.md") as resp:
        assert resp.status == 200
        readme = await resp.text()
    for link in body["links"]["readme"].values():  # each section exists in the README
        anchor = link.split("#", 1)[1]
        headings = [
            "".join(
                c for c in line.lstrip("#").strip().lower() if c.isalnum() or c in " -"
            ).replace(" ", "-")
            for line in readme.splitlines()
            if line.startswith("#")
        ]
        assert anchor in headings, anchor


async def test_root_is_html_for_a_browser(start_call: StartCall) -> None:
    call = await start_call()
    accept = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    async with call.http.get(call.bridge.url + "/", headers=accept) as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        page = await resp.text()
    assert '<a href="/health">' in page and '<a href="/README.md#quick-start">' in page


async def test_calls_names_an_unknown_query_parameter(start_call: StartCall) -> None:
    call = await start_call(CONNECT_API_KEY=API_KEY)
    headers = {"X-API-Key": API_KEY}
    async with call.http.get(call.bridge.url + "/calls?from=4477", headers=headers) as resp:
        assert resp.status == 400
        body = await resp.json()
    assert body["error"]["code"] == "unknown_parameter"
    assert "'from'" in body["error"]["message"] and "front_door" in body["error"]["message"]
    known = "/calls?limit=5&offset=0&front_door=vonage"
    async with call.http.get(call.bridge.url + known, headers=headers) as resp:
        assert resp.status == 200

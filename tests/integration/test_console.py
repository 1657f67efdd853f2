"""The operator console in a real browser: Playwright driving Debian's Chromium.

The bridge runs with the fakes (``start_call``); Chromium gets a fake microphone fed the
simulation's speech recording. The tests without a browser (sessions, CSRF, a SIP call on the
live feed) use an HTTP client. Screenshots of each page go to ``$VB_SCREENSHOTS`` (the
README's are made with ``VB_SCREENSHOTS=docs``) or the test's temporary directory.

Without a Chromium binary the browser tests skip with the reason, except in CI (``CI`` set),
where they must run (they fail instead): ``.ci/run`` installs Chromium first.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import async_playwright, expect
from support import SECOND, Call, StartCall
from test_call_records import call_finished
from test_outbound import API_KEY, APP_ID, FROM, TO, vonage_env
from test_recording_call import read_stereo, speak_and_hear
from test_vonage_call import connected, speech

from vonage_bridge.console.accounts import Accounts
from vonage_bridge.console.auth import MAX_FAILURES
from vonage_bridge.outbound import OUTBOUND
from vonage_bridge.sim.harness import RunningBridge, sim_env
from vonage_bridge.sim.openai_sip import (
    TEST_WEBHOOK_SECRET,
    FakeOpenAISip,
    incoming_call_body,
    send_webhook,
    signed_headers,
)
from vonage_bridge.sim.vonage_api import FakeVoiceApi, application_test_key
from vonage_bridge.store import FRONT_DOOR_BROWSER, SqlCallStore
from vonage_bridge.web.keys import ASSISTANTS, CALLS, HUB, STORE

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

OPERATOR = "alice"
PASSWORD = "correct horse battery"
MS = 1000 * SECOND  # Playwright timeouts are in ms
AT_LEAST_100 = re.compile(r"^[1-9][0-9]{2,}$")
AT_LEAST_10 = re.compile(r"^[1-9][0-9]+$")
AT_LEAST_1 = re.compile(r"^[1-9][0-9]*$")


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    where = Path(os.environ.get("VB_SCREENSHOTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    return where


def speech_then_silence(path: Path, silence_ms: int = 2000) -> Path:
    """The simulation's speech recording, its first 1.2 s then ``silence_ms`` of silence, as
    a WAV: Chromium loops the fake microphone's file, and the Realtime VAD needs the pause to
    end the caller's turn."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes(speech(1200) + bytes(silence_ms * 32))
    return path


@pytest.fixture
def microphone(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The fake microphone's file: speech, then a pause (ms: the indirect parameter; 2000 by
    default, long enough for the whole reply)."""
    silence_ms = getattr(request, "param", 2000)
    return speech_then_silence(tmp_path / "microphone.wav", silence_ms)


@pytest.fixture
async def browser(microphone: Path) -> AsyncIterator[Any]:
    """Chromium driven by Playwright; skips (outside CI only) when there is no Chromium."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but there is no chromium binary: .ci/run installs it")
        pytest.skip("no chromium binary (apt-get install chromium); CI runs these tests")
    async with async_playwright() as pw:
        b = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-audio-capture={microphone}",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        try:
            yield b
        finally:
            await b.close()


async def console_call(start_call: StartCall, *, operators: bool = True, **env: str) -> Call:
    call = await start_call(**env)
    if operators:
        store = call.bridge.app[STORE]
        assert isinstance(store, SqlCallStore)
        assert await Accounts(store).add(OPERATOR, PASSWORD)
    return call


async def new_page(browser: Any, call: Call) -> Any:
    context = await browser.new_context(
        base_url=call.bridge.url, viewport={"width": 900, "height": 900}
    )
    page = await context.new_page()
    page.set_default_timeout(10 * MS)
    return page


async def log_in(page: Any, password: str = PASSWORD) -> Any:
    await page.goto("/console/login")
    await page.get_by_label("Operator name").fill(OPERATOR)
    await page.get_by_label("Password").fill(password)
    async with page.expect_response(re.compile(r"/console/login$")) as info:
        await page.get_by_role("button", name="Log in").click()
    return await info.value


async def test_login_refused_then_rate_limited(
    start_call: StartCall, browser: Any, shots: Path
) -> None:
    call = await console_call(start_call)
    page = await new_page(browser, call)
    for _ in range(MAX_FAILURES):
        response = await log_in(page, "wrong password")
        assert response.status == 401
        await page.get_by_text("Wrong name or password.").wait_for()
    await page.screenshot(path=shots / "console-login.png")
    response = await log_in(page)  # the right password, but too many failures before it
    assert response.status == 429
    await page.get_by_text("Too many failed logins").wait_for()
    assert "/console/login" in page.url
    assert not any(c["name"] == "vb_console" for c in await page.context.cookies())


async def test_no_operator_page_says_how_to_create_one(
    start_call: StartCall, browser: Any, shots: Path
) -> None:
    call = await console_call(start_call, operators=False)
    page = await new_page(browser, call)
    await page.goto("/console/live")
    assert page.url.startswith(f"{call.bridge.url}/console/login")
    await page.get_by_text("vonage-bridge operator add NAME --password-stdin").wait_for()


async def test_live_call_transcript_hang_up_history_and_detail(
    start_call: StartCall, browser: Any, shots: Path
) -> None:
    call = await console_call(start_call)
    page = await new_page(browser, call)
    response = await log_in(page)
    assert response.status == 303
    await page.wait_for_url("**/console/live")
    cookie = next(c for c in await page.context.cookies() if c["name"] == "vb_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]
    await page.get_by_text("Live feed connected.").wait_for()
    assert call.bridge.app[HUB].subscribers == 1

    caller = call.caller()
    await caller.answer()
    await caller.connect()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    card = page.locator(f'article[data-call="{caller.call_uuid}"]')
    await card.wait_for()
    assert await card.locator("dd").first.text_content() == "vonage"
    # The call's assistant: the built-in default (version 0), from the session's context.
    assert await card.locator("dd.assistant").text_content() == "default (built-in)"
    await caller.stream_audio(speech(), realtime=True)
    await caller.stream_silence(900)
    # The transcript grows while the call runs (server-sent events, no reload).
    await card.locator(".role-caller").first.wait_for()
    await card.locator(".role-assistant").first.wait_for()
    await rt.wait_responses_done(1, timeout=10 * SECOND)
    assert caller.call_uuid in call.bridge.app[CALLS]
    assert not caller.closed.is_set()
    await page.screenshot(path=shots / "console-live.png", full_page=True)
    await page.set_viewport_size({"width": 390, "height": 844})  # a phone
    await page.screenshot(path=shots / "console-live-phone.png", full_page=True)
    await page.set_viewport_size({"width": 900, "height": 900})

    await card.get_by_role("button", name="Hang up").click()
    await caller.wait_closed(timeout=10 * SECOND)
    assert caller.close_code == aiohttp.WSCloseCode.OK
    assert "hung up from the console" in caller.close_reason
    await card.wait_for(state="detached")
    live = call.bridge.app[CALLS].get(caller.call_uuid)
    if live is not None:
        await asyncio.wait({live.task}, timeout=5 * SECOND)

    await page.get_by_role("link", name="History").click()
    await page.get_by_label("Words in the transcript").fill("echo")
    await page.get_by_label("Front door").select_option("vonage")
    await page.get_by_role("button", name="Filter").click()
    row = page.locator(f'tr[data-call="{caller.call_uuid}"]')
    await row.wait_for()
    assert "hung up from the console by alice" in (await row.text_content() or "")
    await page.screenshot(path=shots / "console-history.png", full_page=True)
    await page.get_by_label("Words in the transcript").fill("no-such-word")
    await page.get_by_role("button", name="Filter").click()
    await page.get_by_text("No call matches.").wait_for()

    await page.go_back()
    await row.get_by_role("link").click()
    await page.get_by_role("heading", name="Transcript").wait_for()
    timeline = page.locator(".timeline")
    assert await timeline.locator(".role-caller").count() >= 1
    assert await timeline.locator(".role-assistant").count() >= 1
    text = await timeline.text_content() or ""
    assert "(caller speech" in text and "(echo of" in text
    # The call's figures, from its record (records.call_figures).
    record = await call.bridge.app[STORE].get(caller.call_uuid)  # type: ignore[union-attr]
    assert record is not None and record.figures is not None
    figures = record.figures
    assert isinstance(figures["replies"], int) and figures["replies"] >= 1
    median = figures["reply_latency_median_ms"]
    assert isinstance(median, float) and median >= 0
    await expect(page.locator("#fig-replies")).to_have_text(str(figures["replies"]))
    await expect(page.locator("#fig-latency-median")).to_have_text(f"{median:.0f} ms")
    p95 = figures["reply_latency_p95_ms"]
    await expect(page.locator("#fig-latency-p95")).to_have_text(f"{p95:.0f} ms")
    await expect(page.locator("#fig-underruns")).to_have_text(str(figures["underruns"]))
    await expect(page.locator("#fig-barge-ins")).to_have_text(str(figures["barge_ins"]))
    await expect(page.locator("#record-assistant")).to_have_text("default (built-in)")
    # Not recorded (RECORD_CALLS is off): no player, the page says why; tokens still shown.
    assert record.recording is None and record.usage is not None
    await expect(page.locator("#recording-none")).to_contain_text("Not recorded")
    assert await page.locator("audio").count() == 0
    await expect(page.locator("#tok-input")).to_have_text(str(record.usage["input_tokens"]))
    await page.screenshot(path=shots / "console-detail-unrecorded.png", full_page=True)

    await page.get_by_role("link", name="Dial").click()
    await page.get_by_label("To (E.164)").wait_for()


async def test_browser_phone_sends_the_microphone_and_plays_the_reply(
    start_call: StartCall, browser: Any, shots: Path
) -> None:
    call = await console_call(start_call)
    page = await new_page(browser, call)
    await log_in(page)
    await page.goto("/console/phone")
    await page.get_by_role("button", name="Start talking").click()
    rt = await call.fake.wait_for_session(timeout=10 * SECOND)
    phone = page.locator("#phone")
    await expect(phone).to_have_attribute("data-frames-sent", AT_LEAST_100, timeout=10 * MS)
    # The fake Realtime server hears the microphone (the WAV, looped by Chromium) ...
    await rt.wait_responses_done(1, timeout=15 * SECOND)
    assert len(rt.input_audio) > 24_000 * 2  # over a second of 24 kHz PCM16
    # ... and the page plays its reply.
    await expect(phone).to_have_attribute("data-frames-played", AT_LEAST_10, timeout=10 * MS)
    assert await phone.get_attribute("data-state") == "live"
    hub = call.bridge.app[HUB]
    (view,) = hub.calls.values()
    assert view.front_door == FRONT_DOOR_BROWSER and view.from_number == "console:alice"
    await page.screenshot(path=shots / "console-phone.png", full_page=True)

    await page.get_by_role("button", name="Hang up").click()
    await page.get_by_text("Hung up.").wait_for()
    live = call.bridge.app[CALLS].get(view.call_uuid)
    if live is not None:
        await asyncio.wait({live.task}, timeout=5 * SECOND)
    record = await call.bridge.app[STORE].get(view.call_uuid)
    assert record is not None and record.front_door == FRONT_DOOR_BROWSER
    assert "caller" in [e.role for e in record.transcript]


async def test_recorded_call_has_its_cost_in_history_and_tokens_and_player_in_detail(
    start_call: StartCall, browser: Any, shots: Path, tmp_path: Path
) -> None:
    call = await console_call(start_call, RECORD_CALLS="true", RECORDINGS_DIR=str(tmp_path))
    caller, rt = await connected(call)
    await speak_and_hear(caller, rt)
    await caller.hang_up()
    await call_finished(call, caller.call_uuid)
    record = await call.bridge.app[STORE].get(caller.call_uuid)  # type: ignore[union-attr]
    assert record is not None and record.usage is not None and record.recording is not None
    cost = record.cost_usd
    assert cost is not None and cost > 0
    assert record.recording["status"] == "complete"
    _, stereo = read_stereo(tmp_path / f"{caller.call_uuid}.wav")
    seconds = len(stereo) / 16_000
    assert seconds > 1

    page = await new_page(browser, call)
    assert (await log_in(page)).status == 303
    await page.get_by_role("link", name="History").click()
    min_cost = page.get_by_label("Minimum cost (USD)")
    await min_cost.fill(str(cost))
    await page.get_by_role("button", name="Filter").click()
    row = page.locator(f'tr[data-call="{caller.call_uuid}"]')
    await expect(row.locator("td.cost")).to_have_text(f"${cost:.6f}")
    await expect(page.locator("#total-cost")).to_contain_text(f"${cost:.6f}")
    await expect(min_cost).to_have_value(str(cost))  # the filter is kept
    await page.screenshot(path=shots / "console-history-cost.png", full_page=True)
    await min_cost.fill(f"{cost + 0.01}")
    await page.get_by_role("button", name="Filter").click()
    await page.get_by_text("No call matches.").wait_for()
    await expect(page.locator("#total-cost")).to_contain_text("$0.000000")
    # The form refuses a negative cost itself (min="0"); the server says why too.
    response = await page.goto("/console/history?min_cost=-1")
    assert response is not None and response.status == 400
    await page.get_by_text("min_cost: '-1' is not a number >= 0 (USD)").wait_for()

    # The detail page: tokens and cost from the record, and the player on the WAV.
    await min_cost.fill("")
    await page.get_by_role("button", name="Filter").click()

    def is_recording(response: Any) -> bool:
        return str(response.url).endswith(f"/calls/{caller.call_uuid}/recording")

    async with page.expect_response(is_recording) as fetched:
        await row.get_by_role("link").click()
    media = await fetched.value
    # The <audio> element asks for a range; the session cookie is the only credential.
    assert media.status == 206
    sent = await media.request.all_headers()
    assert sent.get("range", "").startswith("bytes=") and "x-api-key" not in sent
    assert media.headers["content-type"] == "audio/wav"
    usage = record.usage
    details, out = usage["input_token_details"], usage["output_token_details"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    await expect(page.locator("#tok-input")).to_have_text(str(usage["input_tokens"]))
    await expect(page.locator("#tok-input-details")).to_have_text(
        f"{details['text_tokens']} / {details['audio_tokens']} / {details['cached_tokens']}"
    )
    await expect(page.locator("#tok-output")).to_have_text(str(usage["output_tokens"]))
    await expect(page.locator("#tok-output-details")).to_have_text(
        f"{out['text_tokens']} / {out['audio_tokens']}"
    )
    transcription = usage["transcription"]
    await expect(page.locator("#tok-transcription")).to_have_text(
        f"{transcription['input_tokens']} / {transcription['output_tokens']}"
    )
    await expect(page.locator("#cost")).to_have_text(f"${cost:.6f}")
    player = page.locator("audio#recording")
    await expect(player).to_have_attribute("src", f"/calls/{caller.call_uuid}/recording")
    await page.wait_for_function(
        "() => { const a = document.getElementById('recording');"
        " return a.readyState >= 1 && a.duration > 0; }"
    )
    duration = await player.evaluate("a => a.duration")
    assert abs(duration - seconds) < 0.05  # the WAV's own length, read by Chromium
    assert await page.locator("#recording-none").count() == 0
    await page.screenshot(path=shots / "console-detail.png", full_page=True)


# ------------------------------------------------------------------ without a browser

PAGES = ["/console", "/console/live", "/console/history", "/console/dial", "/console/phone"]
PAGES += ["/console/calls/some-call", "/console/assistants", "/console/assistants/new"]
PAGES += ["/console/assistants/default"]
POSTS = ["/console/calls/x/hangup", "/console/dial", "/console/logout", "/console/assistants"]
POSTS += ["/console/assistants/default/delete"]
APIS = ["/console/api/events", "/console/static/live.js", "/console/static/phone.js"]
APIS += ["/console/static/capture-worklet.js", "/console/static/player-worklet.js"]
APIS += ["/console/phone/ws"]


async def test_every_console_url_needs_a_session(start_call: StartCall) -> None:
    call = await console_call(start_call)
    base = call.bridge.url
    async with aiohttp.ClientSession() as http:
        for path in PAGES:
            async with http.get(base + path, allow_redirects=False) as resp:
                assert resp.status == 303, path
                assert resp.headers["Location"].startswith("/console/login?next="), path
        for path in APIS:
            async with http.get(base + path, allow_redirects=False) as resp:
                assert resp.status == 401, path
        for path in POSTS:
            async with http.post(base + path, data={"csrf": "x"}, allow_redirects=False) as r:
                assert r.status == 303, path
        # The login page and its stylesheet need no session.
        for path in ["/console/login", "/console/static/console.css"]:
            async with http.get(base + path, allow_redirects=False) as resp:
                assert resp.status == 200, path


async def _logged_in(http: aiohttp.ClientSession, base: str) -> str:
    """Log in through the form; the session's CSRF token (from the live page)."""
    async with http.get(f"{base}/console/login") as resp:
        form_token = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
    assert form_token is not None
    login = {"name": OPERATOR, "password": PASSWORD, "csrf": form_token[1]}
    async with http.post(f"{base}/console/login", data=login, allow_redirects=False) as resp:
        assert resp.status == 303
    async with http.get(f"{base}/console/live") as resp:
        assert resp.status == 200
        token = re.search(r'name="csrf-token" content="([^"]+)"', await resp.text())
    assert token is not None
    return token[1]


async def test_a_post_without_the_csrf_token_is_refused(start_call: StartCall) -> None:
    call = await console_call(start_call)
    base = call.bridge.url
    jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        # The login form itself: no token, or one that is not the cookie's.
        async with http.post(
            f"{base}/console/login", data={"name": OPERATOR, "password": PASSWORD}
        ) as resp:
            assert resp.status == 403
        csrf = await _logged_in(http, base)
        for path in POSTS:
            async with http.post(base + path, data={}, allow_redirects=False) as resp:
                assert resp.status == 403, path
            async with http.post(
                base + path, data={"csrf": "not-the-token"}, allow_redirects=False
            ) as resp:
                assert resp.status == 403, path
        # With the token: the hang-up of an unknown call goes back to the live page...
        async with http.post(
            f"{base}/console/calls/x/hangup", data={"csrf": csrf}, allow_redirects=False
        ) as resp:
            assert resp.status == 303
        # ... and logout ends the session on the server.
        async with http.post(
            f"{base}/console/logout", data={"csrf": csrf}, allow_redirects=False
        ) as resp:
            assert resp.status == 303
        async with http.get(f"{base}/console/live", allow_redirects=False) as resp:
            assert resp.status == 303


async def test_the_recording_route_takes_a_console_session(
    start_call: StartCall, tmp_path: Path
) -> None:
    """``GET /calls/{uuid}/recording`` with the session cookie and no ``X-API-Key`` (and
    ``CONNECT_API_KEY`` unset): the WAV, ranges too; without a live session it is refused."""
    call = await console_call(start_call, RECORD_CALLS="true", RECORDINGS_DIR=str(tmp_path))
    caller, rt = await connected(call)
    await speak_and_hear(caller, rt)
    await caller.hang_up()
    await call_finished(call, caller.call_uuid)
    wav = (tmp_path / f"{caller.call_uuid}.wav").read_bytes()
    base = call.bridge.url
    url = f"{base}/calls/{caller.call_uuid}/recording"
    async with call.http.get(url) as resp:  # no session, no key (and no key configured)
        assert resp.status == 503
        assert (await resp.json())["error"]["code"] == "calls_api_disabled"
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        csrf = await _logged_in(http, base)
        async with http.get(url) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "audio/wav"
            assert await resp.read() == wav
        async with http.get(url, headers={"Range": "bytes=44-1067"}) as resp:
            assert resp.status == 206
            assert resp.headers["Content-Range"] == f"bytes 44-1067/{len(wav)}"
            assert await resp.read() == wav[44:1068]
        async with http.get(f"{base}/calls/no-such-call/recording") as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["code"] == "recording_not_found"
        # An X-API-Key header is checked as a key, session or not.
        async with http.get(url, headers={"X-API-Key": "not-the-key"}) as resp:
            assert resp.status == 503
        (token,) = [c.value for c in jar if c.key == "vb_console"]
        async with http.post(
            f"{base}/console/logout", data={"csrf": csrf}, allow_redirects=False
        ) as resp:
            assert resp.status == 303
    # The session's token after logout (ended on the server), or one never issued: refused.
    for value in (token, "forged"):
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(url, cookies={"vb_console": value}) as resp:
                assert resp.status == 503, value


async def test_a_sip_call_is_live_with_its_transcript_and_the_console_hangs_it_up() -> None:
    fake = await FakeOpenAISip().start()
    bridge = await RunningBridge(
        sim_env(fake.base_url, OPENAI_WEBHOOK_SECRET=TEST_WEBHOOK_SECRET)
    ).start()
    jar = aiohttp.CookieJar(unsafe=True)
    try:
        store = bridge.app[STORE]
        assert isinstance(store, SqlCallStore)
        assert await Accounts(store).add(OPERATOR, PASSWORD)
        hub = bridge.app[HUB]
        events = hub.subscribe()
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            body = incoming_call_body("rtc_console")
            headers = signed_headers(TEST_WEBHOOK_SECRET, body)
            await send_webhook(http, f"{bridge.url}/openai/webhook", body, headers)
            sideband = await fake.wait_for_sideband(5 * SECOND)
            await sideband.next_event(5 * SECOND)  # the greeting
            async with asyncio.timeout(5 * SECOND):
                start = await events.get()
            assert start["type"] == "start" and start["call"]["front_door"] == "openai-sip"
            await sideband.send(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": "item_1",
                    "content_index": 0,
                    "transcript": "Where is my parcel?",
                }
            )
            async with asyncio.timeout(5 * SECOND):
                line = await events.get()
            assert line["entry"]["text"] == "Where is my parcel?"

            csrf = await _logged_in(http, bridge.url)
            async with http.post(
                f"{bridge.url}/console/calls/rtc_console/hangup",
                data={"csrf": csrf},
                allow_redirects=False,
            ) as resp:
                assert resp.status == 303
            requests = [await fake.next_request(5 * SECOND) for _ in range(2)]
            assert [(r.action, r.call_id) for r in requests] == [
                ("accept", "rtc_console"),
                ("hangup", "rtc_console"),
            ]
            async with asyncio.timeout(5 * SECOND):
                end = await events.get()
            assert end["type"] == "end" and end["call_uuid"] == "rtc_console"
            assert hub.calls == {}
    finally:
        await bridge.close()
        await fake.close()


async def test_the_dial_form_places_the_call_through_connects_code(start_call: StartCall) -> None:
    api = FakeVoiceApi(application_test_key().public_key(), APP_ID)
    await api.start()
    try:
        call = await start_call(**vonage_env(api))
        store = call.bridge.app[STORE]
        assert isinstance(store, SqlCallStore)
        assert await Accounts(store).add(OPERATOR, PASSWORD)
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            base = call.bridge.url
            csrf = await _logged_in(http, base)
            form = {"csrf": csrf, "to": "not a number"}
            async with http.post(f"{base}/console/dial", data=form) as resp:
                assert resp.status == 400  # as POST /connect answers it
                assert "to:" in await resp.text()
            assert api.created == []
            form = {"csrf": csrf, "to": TO}
            async with http.post(f"{base}/console/dial", data=form) as resp:
                assert resp.status == 200
                page = await resp.text()
            (created,) = api.created
            assert f"Call placed: <code>{created['uuid']}</code>" in page
            sent = created["body"]
            assert sent["to"] == [{"type": "phone", "number": TO.lstrip("+")}]
            assert sent["from"] == {"type": "phone", "number": FROM.lstrip("+")}  # the default
            assert sent["answer_url"] == [f"{base}/answer"]
    finally:
        await api.close()


@pytest.mark.parametrize("microphone", [pytest.param(800, id="speech-every-2s")], indirect=True)
async def test_browser_phone_barge_in_clears_the_pages_playback(
    start_call: StartCall, browser: Any
) -> None:
    """The caller's next words (the looped file, 0.8 s after the last) come while the 1.2 s
    reply plays: the bridge truncates the reply and the page drops its queued audio."""
    call = await console_call(start_call)
    page = await new_page(browser, call)
    await log_in(page)
    await page.goto("/console/phone")
    await page.get_by_role("button", name="Start talking").click()
    rt = await call.fake.wait_for_session(timeout=10 * SECOND)
    phone = page.locator("#phone")
    await expect(phone).to_have_attribute("data-clears", AT_LEAST_1, timeout=15 * MS)
    truncate = await rt.wait_for_event("conversation.item.truncate", timeout=5 * SECOND)
    assert truncate["audio_end_ms"] >= 0
    (view,) = call.bridge.app[HUB].calls.values()
    assert "barge_in" in [e.role for e in view.transcript]
    await page.get_by_role("button", name="Hang up").click()


# ------------------------------------------------------------------ assistants and dial


async def test_assistants_pages_create_edit_bind_then_dial_with_the_assistant(
    start_call: StartCall, browser: Any, shots: Path
) -> None:
    api = FakeVoiceApi(application_test_key().public_key(), APP_ID)
    await api.start()
    try:
        call = await console_call(start_call, **vonage_env(api))
        book = call.bridge.app[ASSISTANTS]
        assert book.store is not None
        page = await new_page(browser, call)
        assert (await log_in(page)).status == 303
        await page.get_by_role("link", name="Assistants").click()
        await page.get_by_role("heading", name="Assistants").wait_for()
        builtin = page.locator('tr[data-assistant="default"]')
        await expect(builtin.locator(".version")).to_have_text("built-in")

        # A body the JSON API refuses: the page names the same fields with the same words.
        refused = '{"instructions": "You sell boats.", "voice": "nobody", "colour": "red"}'
        await page.get_by_role("link", name="New assistant").click()
        await page.get_by_label("Name (a-z, 0-9, - and _)").fill("sales")
        await page.get_by_label("Numbers bound to it (E.164, one a line)").fill("+44 7700 900001")
        await page.locator("#body").fill(refused)
        async with page.expect_response(re.compile(r"/console/assistants$")) as info:
            await page.get_by_role("button", name="Save").click()
        assert (await info.value).status == 400
        problems = page.locator("#problems")
        await problems.wait_for()
        await expect(problems.locator('li[data-field="colour"]')).to_contain_text("unknown field")
        await expect(problems.locator('li[data-field="voice"]')).to_contain_text("must be one of")
        api_body = {"numbers": ["+44 7700 900001"], "instructions": "You sell boats."}
        api_body |= {"voice": "nobody", "colour": "red"}
        async with call.http.put(
            f"{call.bridge.url}/assistants/sales", headers={"X-API-Key": API_KEY}, json=api_body
        ) as resp:
            assert resp.status == 400
            api_message = (await resp.json())["error"]["message"]
        await expect(problems).to_contain_text(f"Not saved: {api_message}")
        assert await book.store.get("sales") is None
        await page.screenshot(path=shots / "console-assistant-invalid.png", full_page=True)

        # Fixed: stored (version 1) with its number bound.
        body = '{"instructions": "You sell boats to {name}.", "greeting": {"text": "Sales here"}}'
        await page.locator("#body").fill(body)
        await page.get_by_role("button", name="Save").click()
        await page.locator("#saved").wait_for()
        row = page.locator('tr[data-assistant="sales"]')
        await expect(row.locator(".version")).to_have_text("1")
        await expect(row.locator(".numbers")).to_have_text("+447700900001")
        stored = await book.store.get("sales")
        assert stored is not None and stored.greeting.text == "Sales here"
        assert await book.store.for_number("+447700900001") == stored

        # Edited: version 2; the form shows what is stored.
        await row.get_by_role("link", name="sales").click()
        await expect(page.get_by_label("Name (a-z, 0-9, - and _)")).to_have_value("sales")
        await expect(page.locator("#numbers")).to_have_value("+447700900001")
        edited = (await page.locator("#body").input_value()).replace("Sales here", "Sales, hi")
        await page.locator("#body").fill(edited)
        await page.screenshot(path=shots / "console-assistant-edit.png", full_page=True)
        await page.get_by_role("button", name="Save").click()
        await expect(row.locator(".version")).to_have_text("2")
        await page.screenshot(path=shots / "console-assistants.png", full_page=True)
        stored = await book.store.get("sales")
        assert stored is not None and (stored.version, stored.greeting.text) == (2, "Sales, hi")

        # The next call to the bound number gets it: the live page names it and its version.
        await page.get_by_role("link", name="Live calls").click()
        await page.get_by_text("Live feed connected.").wait_for()
        caller = call.caller()  # to 447700900001
        await caller.answer()
        await caller.connect()
        card = page.locator(f'article[data-call="{caller.call_uuid}"]')
        await expect(card.locator("dd.assistant")).to_have_text("sales (version 2)")
        await caller.hang_up()
        await card.wait_for(state="detached")

        # Dial with the assistant, variables and metadata: through POST /connect's code.
        await page.get_by_role("link", name="Dial").click()
        await page.get_by_label("To (E.164)").fill(TO)
        await page.get_by_label("Assistant", exact=True).select_option("sales")
        variables = page.get_by_label(
            "Variables (name=value, one a line; fill {name} placeholders)"
        )
        await variables.fill("oops")
        await page.get_by_role("button", name="Call").click()
        error = page.locator("#dial-error")
        await expect(error).to_have_text("variables: line 1: write name=value")
        await expect(page.get_by_label("Assistant", exact=True)).to_have_value(
            "sales"
        )  # the form is kept
        await variables.fill("1x=bad")
        await page.get_by_role("button", name="Call").click()
        await expect(error).to_have_attribute("data-field", "variables")  # /connect's check
        assert api.created == []
        await variables.fill("name=Ann\ndate = Monday, 10=30")
        await page.get_by_label("Metadata (a JSON object kept on the call record; optional)").fill(
            '{"crm_id": 42}'
        )
        await page.get_by_role("button", name="Call").click()
        await page.get_by_text("Call placed:").wait_for()
        await page.screenshot(path=shots / "console-dial.png", full_page=True)
        (created,) = api.created
        assert created["body"]["to"] == [{"type": "phone", "number": TO.lstrip("+")}]
        outbound = call.bridge.app[OUTBOUND].get(created["uuid"])
        assert outbound is not None
        context = outbound.context
        assert context.assistant == "sales"
        assert dict(context.variables) == {"name": "Ann", "date": "Monday, 10=30"}
        assert dict(context.metadata) == {"crm_id": 42}

        # Deleted: gone from the list and the database.
        await page.get_by_role("link", name="Assistants").click()
        await row.get_by_role("button", name="Delete sales").click()
        await row.wait_for(state="detached")
        assert await book.store.get("sales") is None
    finally:
        await api.close()

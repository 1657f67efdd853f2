"""Prometheus metrics on loopback: simulated calls through the fakes, then ``GET /metrics`` on
``METRICS_PORT`` parsed with prometheus_client's own text parser."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import test_outbound
import test_sip_call
import test_twilio_call
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from support import SECOND, StartCall
from test_barge_in_call import BYTES_PER_MS
from test_outbound import vonage_env
from test_sip_call import StartSip, post_call
from test_tools_call import function_call
from test_twilio_call import AUTH_TOKEN, StartTwilio
from test_vonage_call import connected, speech

from vonage_bridge.errors import ConfigError
from vonage_bridge.sim.harness import RunningBridge, sim_env
from vonage_bridge.sim.realtime import FakeRealtimeOptions
from vonage_bridge.sim.vonage_api import FakeVoiceApi
from vonage_bridge.twilio.signature import sign_request
from vonage_bridge.web.keys import CALLS, SIP, WARM_SESSIONS

start_sip = test_sip_call.start_sip  # the fixtures, shared
voice_api = test_outbound.voice_api
twilio_api = test_twilio_call.twilio_api
start_twilio = test_twilio_call.start_twilio

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
SECRET = "vonage-signature-secret-for-tests-0123456789"
UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
)
NUMBER_RE = re.compile(r"\+?[0-9][0-9 .:-]*")
STREAM_START = json.dumps(
    {
        "event": "start",
        "sequenceNumber": "1",
        "streamSid": "MZ" + "1" * 32,
        "start": {
            "streamSid": "MZ" + "1" * 32,
            "accountSid": test_twilio_call.ACCOUNT_SID,
            "callSid": "CA" + "2" * 32,
            "tracks": ["inbound"],
            "customParameters": {"call_sid": "CA" + "2" * 32, "exp": "9999999999"},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
    }
)
"""A Twilio stream's ``start`` whose parameters carry no media token."""


def free_port() -> int:
    """A TCP port nobody listens on now (the OS's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def metrics_env(port: int) -> dict[str, str]:
    return {"METRICS_PORT": str(port), "HOST": "127.0.0.1"}


async def scrape(http: aiohttp.ClientSession, port: int) -> list[Sample]:
    """Every sample ``GET /metrics`` on ``port`` answers, parsed by the client library."""
    async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


async def values(http: aiohttp.ClientSession, port: int) -> Samples:
    """The samples by ``(name, labels)``."""
    return {(s.name, frozenset(s.labels.items())): s.value for s in await scrape(http, port)}


def get(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return get(after, name, **labels) - get(before, name, **labels)


def own_labels(samples: list[Sample]) -> Iterator[tuple[str, str, str]]:
    """``(metric, label, value)`` of every label of our metrics (``le`` is the library's)."""
    for s in samples:
        if s.name.startswith("vonage_bridge_"):
            for label, value in s.labels.items():
                if label != "le":
                    yield s.name, label, value


async def test_a_call_moves_the_call_counters_and_histograms(start_call: StartCall) -> None:
    port = free_port()
    # Replies streamed at half real time: the caller's playout runs dry mid-reply (underruns).
    options = FakeRealtimeOptions(reply_realtime_factor=0.5)
    call = await start_call(options, **metrics_env(port))
    # No warm session: the call opens its own, so its session.updated is read as it comes.
    call.bridge.app[WARM_SESSIONS].enabled = False
    http = call.http
    before = await values(http, port)

    caller, rt = await connected(call)
    live = call.bridge.app[CALLS][caller.call_uuid]
    during = await values(http, port)
    assert moved(before, during, "vonage_bridge_calls_active", front_door="vonage") == 1

    await caller.send_dtmf("5")
    await rt.wait_for_event("conversation.item.create", timeout=5 * SECOND)
    await rt.wait_responses_done(1, timeout=10 * SECOND)  # the reply to the key press
    # speech at real time (faster is dropped); the silence after at real time too
    await caller.stream_audio(speech(2000), realtime=True)
    await caller.stream_silence(900)
    heard = len(caller.heard)
    await caller.wait_heard(heard + 400 * BYTES_PER_MS, timeout=10 * SECOND)
    options.reply = False  # the barge-in gets no reply of its own
    await caller.stream_audio(speech(600), realtime=True)  # over the reply: a barge-in
    await rt.wait_for_event("conversation.item.truncate", timeout=5 * SECOND)

    rt._push_error("invalid_value", "a known code")
    rt._push_error("made_up_by_the_server_42", "an unknown code")
    function_call(rt, "call_1", "no_such_tool", {})
    await rt.wait_for_event("conversation.item.create", timeout=5 * SECOND)
    function_call(rt, "call_2", "end_call", {})
    await caller.wait_closed(timeout=10 * SECOND)
    assert "assistant ended the call" in caller.close_reason
    done, _ = await asyncio.wait({live.task}, timeout=10 * SECOND)  # counted by then
    assert done

    after = await values(http, port)
    call_end = {"front_door": "vonage", "direction": "inbound"}
    assert moved(before, after, "vonage_bridge_calls_total", **call_end, end="assistant") == 1
    assert moved(before, after, "vonage_bridge_calls_active", front_door="vonage") == 0
    duration = "vonage_bridge_call_duration_seconds"
    assert moved(before, after, f"{duration}_count", front_door="vonage") == 1
    assert moved(before, after, f"{duration}_sum", front_door="vonage") > 2.0
    assert moved(before, after, "vonage_bridge_realtime_connect_seconds_count") == 1
    assert moved(before, after, "vonage_bridge_realtime_connect_seconds_sum") > 0
    latency = "vonage_bridge_reply_latency_seconds"
    assert moved(before, after, f"{latency}_count", front_door="vonage") >= 1
    assert moved(before, after, f"{latency}_sum", front_door="vonage") > 0
    assert moved(before, after, "vonage_bridge_playout_underruns_total", front_door="vonage") > 0
    assert moved(before, after, "vonage_bridge_barge_ins_total", front_door="vonage") >= 1
    assert moved(before, after, "vonage_bridge_dtmf_total") == 1
    tools = "vonage_bridge_tool_calls_total"
    assert moved(before, after, tools, tool="end_call", outcome="ok") == 1
    assert moved(before, after, tools, tool="other", outcome="unknown") == 1
    errors = "vonage_bridge_realtime_errors_total"
    assert moved(before, after, errors, code="invalid_value") == 1
    assert moved(before, after, errors, code="other") == 1
    # the library's process and Python collectors are served too
    assert get(after, "process_cpu_seconds_total") > 0
    assert any(name == "python_info" for name, _ in after)

    # no label takes a number, a call id or any other unbounded value
    for metric, label, value in own_labels(await scrape(http, port)):
        assert not NUMBER_RE.fullmatch(value), (metric, label, value)
        assert not UUID_RE.search(value), (metric, label, value)
        assert caller.call_uuid not in value and "447700900000" not in value


async def test_a_sip_call_is_counted_under_its_front_door(start_sip: StartSip) -> None:
    port = free_port()
    bridge, fake, http = await start_sip(**metrics_env(port))
    before = await values(http, port)
    await post_call(bridge, http, "rtc_metrics_1")
    sideband = await fake.wait_for_sideband(5 * SECOND)
    await sideband.next_event(5 * SECOND)  # the greeting: the call is live
    during = await values(http, port)
    assert moved(before, during, "vonage_bridge_calls_active", front_door="openai-sip") == 1
    tasks = list(bridge.app[SIP].calls.values())
    await sideband.close()  # the caller hung up: OpenAI closes the sideband
    async with asyncio.timeout(5 * SECOND):
        await asyncio.wait(tasks)
    after = await values(http, port)
    sip_end = {"front_door": "openai-sip", "direction": "inbound", "end": "caller"}
    assert moved(before, after, "vonage_bridge_calls_total", **sip_end) == 1
    assert moved(before, after, "vonage_bridge_calls_active", front_door="openai-sip") == 0
    count = "vonage_bridge_call_duration_seconds_count"
    assert moved(before, after, count, front_door="openai-sip") == 1


async def test_a_transferred_call_is_counted_as_a_transfer(
    start_call: StartCall, voice_api: FakeVoiceApi
) -> None:
    port = free_port()
    env = vonage_env(voice_api, TRANSFER_NUMBER="447700900123", **metrics_env(port))
    call = await start_call(**env)
    http = call.http
    before = await values(http, port)
    caller, rt = await connected(call)
    live = call.bridge.app[CALLS][caller.call_uuid]
    await rt.wait_for_event("session.update", timeout=5 * SECOND)
    function_call(rt, "call_1", "transfer_call", {"reason": "wants a human"})
    await voice_api.wait_hangup(caller.call_uuid, timeout=5 * SECOND)  # the REST transfer
    await rt.wait_for_event("conversation.item.create", timeout=5 * SECOND)  # its result
    await caller.hang_up()  # Vonage moves the caller: our leg's socket closes
    done, _ = await asyncio.wait({live.task}, timeout=10 * SECOND)
    assert done
    after = await values(http, port)
    call_end = {"front_door": "vonage", "direction": "inbound"}
    assert moved(before, after, "vonage_bridge_calls_total", **call_end, end="transfer") == 1
    assert moved(before, after, "vonage_bridge_calls_total", **call_end, end="caller") == 0
    tools = "vonage_bridge_tool_calls_total"
    assert moved(before, after, tools, tool="transfer_call", outcome="ok") == 1


async def test_rejected_webhooks_are_counted_by_route_and_reason(start_call: StartCall) -> None:
    port = free_port()
    signed = {"VONAGE_SIGNATURE_SECRET": SECRET, "ALLOW_UNSIGNED_WEBHOOKS": "false"}
    call = await start_call(**signed, **metrics_env(port), CONNECT_API_KEY="k" * 24)
    http, url = call.http, call.bridge.url
    before = await values(http, port)

    async with http.get(f"{url}/incoming-call?uuid=u1&from=447700900000") as resp:
        assert resp.status == 401  # no Vonage JWT
    async with http.post(f"{url}/event", data=b"[not json") as resp:
        assert resp.status == 400
    for _ in range(2):
        async with http.get(f"{url}/vonage/ws?call_uuid=u1") as resp:
            assert resp.status == 403  # no media token
    async with http.post(f"{url}/connect", json={}, headers={"X-API-Key": "wrong"}) as resp:
        assert resp.status == 403  # the API, not a webhook: not counted

    after = await values(http, port)
    rejected = "vonage_bridge_webhooks_rejected_total"
    assert moved(before, after, rejected, route="/incoming-call", reason="bad_signature") == 1
    assert moved(before, after, rejected, route="/event", reason="bad_input") == 1
    assert moved(before, after, rejected, route="/vonage/ws", reason="bad_token") == 2
    assert not [k for k in after if k[0] == rejected and ("route", "/connect") in k[1]]


async def test_refused_twilio_webhooks_and_streams_are_counted(
    start_twilio: StartTwilio,
) -> None:
    port = free_port()
    tw = await start_twilio(**metrics_env(port))
    http, url = tw.call.http, tw.call.bridge.url
    before = await values(http, port)
    form = {"CallSid": "CA" + "2" * 32, "From": "+447700900000", "To": "+447700900555"}
    async with http.post(f"{url}/twilio/incoming-call", data=form) as resp:
        assert resp.status == 403  # no X-Twilio-Signature
    stream_url = url.replace("http", "ws") + "/twilio/media-stream"
    headers = {"X-Twilio-Signature": sign_request(AUTH_TOKEN, stream_url)}
    async with http.ws_connect(stream_url, headers=headers) as ws:
        await ws.send_str(STREAM_START)
        msg = await ws.receive(timeout=5 * SECOND)
        assert msg.type is aiohttp.WSMsgType.CLOSE and ws.close_code == 1008  # no token
    after = await values(http, port)
    rejected = "vonage_bridge_webhooks_rejected_total"
    hook = {"route": "/twilio/incoming-call", "reason": "bad_signature"}
    assert moved(before, after, rejected, **hook) == 1
    assert moved(before, after, rejected, route="/twilio/media-stream", reason="bad_token") == 1


def listening_ports() -> set[int]:
    """The TCP ports this process listens on (Linux: its socket inodes in /proc/net/tcp*)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


async def test_metrics_host_binds_metrics_to_that_address_only() -> None:
    """``METRICS_HOST``: /metrics answers there, not on ``HOST``'s address (loopback is a /8:
    127.0.0.2 is this machine too)."""
    port = free_port()
    env = sim_env(
        "http://127.0.0.1:9/v1", METRICS_PORT=str(port), HOST="127.0.0.1", METRICS_HOST="127.0.0.2"
    )
    bridge = RunningBridge(env)
    await bridge.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.2:{port}/metrics") as resp:
                assert resp.status == 200
            with pytest.raises(aiohttp.ClientConnectionError):
                async with http.get(f"http://127.0.0.1:{port}/metrics"):
                    pass
    finally:
        await bridge.close()


async def test_metrics_port_0_serves_nothing() -> None:
    before = listening_ports()
    bridge = RunningBridge(sim_env("http://127.0.0.1:9/v1", METRICS_PORT="0", HOST="127.0.0.1"))
    await bridge.start()
    try:
        assert listening_ports() - before == {bridge.port}  # the service's own port only
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{bridge.url}/metrics") as resp:
                assert resp.status == 404  # never on the public service either
    finally:
        await bridge.close()


async def test_metrics_are_served_on_their_own_port_only() -> None:
    port = free_port()
    before = listening_ports()
    bridge = RunningBridge(sim_env("http://127.0.0.1:9/v1", **metrics_env(port)))
    await bridge.start()
    try:
        assert listening_ports() - before == {bridge.port, port}
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{bridge.url}/metrics") as resp:
                assert resp.status == 404
            async with http.get(f"http://127.0.0.1:{port}/") as resp:
                assert resp.status == 404  # /metrics and nothing else
            assert any(s.name == "vonage_bridge_calls_active" for s in await scrape(http, port))
    finally:
        await bridge.close()
    assert port not in listening_ports()  # stopped with the app


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


async def test_a_metrics_port_in_use_stops_start_up_naming_it(taken_port: int) -> None:
    bridge = RunningBridge(sim_env("http://127.0.0.1:9/v1", **metrics_env(taken_port)))
    try:
        with pytest.raises(ConfigError) as info:
            await bridge.start()
    finally:
        await bridge.close()
        bridge._sock.close()  # never handed to a site: start-up failed first
    (problem,) = info.value.problems
    assert problem.startswith(f"METRICS_PORT={taken_port}: ")
    assert "in use" in problem


def test_the_service_says_so_in_one_line_and_exits_2(taken_port: int, tmp_path: Path) -> None:
    env = sim_env("http://127.0.0.1:9/v1", **metrics_env(taken_port))
    env.update(
        SERVER_URL="http://127.0.0.1:9",
        PORT=str(free_port()),
        DATABASE_URL=f"sqlite:///{tmp_path / 'calls.db'}",
        PATH=os.environ.get("PATH", ""),
        PYTHONPATH=os.environ.get("PYTHONPATH", ""),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "vonage_bridge", "--env-file", str(tmp_path / "absent.env")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60 * SECOND,
    )
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"vonage-bridge: invalid configuration: METRICS_PORT={taken_port}: ")

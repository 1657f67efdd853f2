"""Load test: N concurrent simulated calls through the real bridge, in its own process.

Run: ``.venv/bin/python bench/load.py --calls 10 50 100 --seconds 20``. Figures are printed,
never asserted. Everything runs on 127.0.0.1.

Three processes per level of N (fresh ones each time, so the peak RSS is per level):

- the bridge: ``python -m vonage_bridge`` (``subprocess``), JSON logs to a file;
- the fake OpenAI Realtime server (``vonage_bridge.sim.realtime``): this file run with
  ``--serve-fake-realtime``; it echoes each utterance its energy VAD detects, streamed as
  100 ms ``response.output_audio.delta`` events at ``--reply-factor`` x real time;
- the N fake callers: this process. ``--front-door vonage`` (the default) uses
  ``vonage_bridge.sim.vonage.FakeVonageCaller`` (L16 at 16 kHz, resampled to 24 kHz PCM16 by
  the bridge); ``twilio`` uses ``vonage_bridge.sim.twilio.FakeTwilioCaller`` (signed Voice
  webhook, Media Streams, 8 kHz mu-law passed through as ``audio/pcmu``), with a fake Twilio
  REST API (``FakeTwilioApi``, any call SID accepted) in this process, so that a hang-up at
  shutdown never leaves the machine; ``both`` runs every level once through each.

Only the bridge's CPU is counted (utime + stime from ``/proc/<pid>/stat``, its worker
processes included with ``--bridge-env WORKERS=2``) over a steady
window of ``--seconds`` during which all N calls are up. Each call, started ``--stagger-ms``
after the previous one, sends 20 ms frames in real time all the time: a lead-in of silence
(different per call, so turns are not in lock-step), then turns of real speech
(``caller.wav``, 3.2 s) followed by silence while it waits for the echo to be played to it.
See ``bench/README.md`` for what every figure means.

``--relay both`` (the default) runs every level through the bridge and through the naive
baseline relay (``bench/naive_relay.py``: the simplest correct relay, in its own process like
the bridge, against the same fake Realtime options and the same callers), in interleaved
rounds, and prints every figure for both and the ratio bridge / naive: on this shared machine
the absolute figures drift, the ratios from interleaved rounds much less. ``--rounds N``
measures each level N times and reports the median of the rounds' ratios. ``--alt-env
EVENT_LOOP=asyncio`` adds the bridge with those variables as a third relay (``alt``) in the
same rounds. ``--floor`` adds the floor (``bench/naive_relay.py --floor --uvloop``: the
naive relay's messages with pre-built contents, so what aiohttp, the loop and the kernel cost
for them) as relay ``floor``. ``--ladder 25,50,75`` runs those levels and reports, per
relay, the largest one with 0 lost frames and 0 underruns.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import math
import os
import re
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp

from vonage_bridge.sim.audio import resample_pcm16
from vonage_bridge.sim.realtime import FakeRealtimeOptions, FakeRealtimeServer
from vonage_bridge.sim.twilio import MULAW_SILENCE, FakeTwilioCaller, pcm16_to_mulaw
from vonage_bridge.sim.twilio_api import FakeTwilioApi, FakeTwilioApiOptions, new_account_sid
from vonage_bridge.sim.vonage import CALLER_WAV, CallerError, FakeVonageCaller, read_wav_pcm16

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parent.parent
NAIVE_RELAY = Path(__file__).resolve().parent / "naive_relay.py"
PICOWS_FLOOR = Path(__file__).resolve().parent / "picows_floor.py"
RELAYS = ("bridge", "naive")  # what --relay both measures, interleaved
ALT = "alt"  # with --alt-env: the bridge again, with other variables, in the same rounds
FLOOR = "floor"  # with --floor: naive_relay.py --floor --uvloop, the same messages and no work
FLOOR_PICOWS = "picows"  # with --floor-picows: the floor on picows (bench/picows_floor.py)
EVENT_LOOP_RE = re.compile(r"event loop: (.+?) \(EVENT_LOOP=")  # the bridge's start-up line
FRAME_S = 0.020
CHUNK_FRAMES = 5  # the caller decides what to send next every 100 ms
CLK_TCK = os.sysconf("SC_CLK_TCK")
LEAD_IN_MAX_S = 4.0  # per-call silence before the first turn: spreads the turns out
SETTLE_S = 1.0  # after the last call connected, before the window starts
IDLE_S = 0.4  # the reply is over when nothing arrived for this long and all was played
FINAL_IDLE_S = 2.0  # before hanging up: nothing arrived for this long (a late tail still counts)
NO_REPLY_S = 6.0  # give up waiting for a reply after this long
MAX_LISTEN_S = 20.0
FINISH_TIMEOUT_S = 60.0  # for the calls to end after the window
INBOUND_SKIP_MS = 1000.0  # as sim/call.py: skip audio held while the Realtime socket opened
NUMBER_RE = re.compile(r"caller's phone number is \+?(\d+)")  # E.164, "+" since issue 5
TWILIO_AUTH_TOKEN = "bench-twilio-auth-token-not-a-secret"
PROFILED = """
import cProfile, runpy, sys, time
out, target, sys.argv = sys.argv[1], sys.argv[2], sys.argv[2:]
prof = cProfile.Profile(time.thread_time)  # CPU time of the event-loop thread, not wall time
try:
    if target.endswith(".py"):
        prof.runcall(runpy.run_path, target, run_name="__main__")
    else:
        prof.runcall(runpy.run_module, target, run_name="__main__", alter_sys=True)
except SystemExit:
    pass
finally:
    prof.dump_stats(out)
"""


def python_command(target: str, args: list[str], profile: str = "") -> list[str]:
    """Run a module (``vonage_bridge``) or a script, under cProfile if ``profile`` is set."""
    if profile:
        return [sys.executable, "-c", PROFILED, profile, target, *args]
    if target.endswith(".py"):
        return [sys.executable, target, *args]
    return [sys.executable, "-m", target, *args]


# --- front doors -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FrontDoor:
    """How one front door's audio is counted (bytes per ms on each side) and dialled."""

    name: str
    caller_bytes_per_ms: float  # the caller's side of the bridge
    realtime_bytes_per_ms: float  # what the appends and the deltas carry
    silence_byte: bytes
    webhook_path: str
    caller_rate_hz: int = 16_000  # Vonage: the L16 rate the relay's NCCO asks for

    @property
    def frame_bytes(self) -> int:
        """One 20 ms frame on the caller's side."""
        return round(self.caller_bytes_per_ms * FRAME_S * 1000)

    @property
    def realtime_frame_bytes(self) -> int:
        """20 ms of reply audio as the fake sends it: one frame at the caller."""
        return round(self.realtime_bytes_per_ms * FRAME_S * 1000)

    def speech(self, pcm16k: bytes) -> bytes:
        """The caller's recording (16 kHz PCM16) in this door's format, whole frames."""
        if self.name != "vonage":
            audio = pcm16_to_mulaw(pcm16k, 16_000)
        else:  # the same words at the rate the relay's NCCO asked for
            audio = resample_pcm16(pcm16k, 16_000, self.caller_rate_hz)
        return audio[: len(audio) // self.frame_bytes * self.frame_bytes]

    def at_rate(self, rate_hz: int) -> FrontDoor:
        """The Vonage door with L16 at ``rate_hz`` on the caller's side (``VONAGE_AUDIO_RATE``
        for the bridge, ``--vonage-rate`` for the naive relay); the same door otherwise."""
        if self.name != "vonage" or rate_hz == self.caller_rate_hz:
            return self
        return FrontDoor(
            self.name,
            rate_hz * 2 / 1000,
            self.realtime_bytes_per_ms,
            self.silence_byte,
            self.webhook_path,
            rate_hz,
        )


FRONT_DOORS = {
    "vonage": FrontDoor("vonage", 32.0, 48.0, b"\x00", "/incoming-call"),  # L16 16k / PCM16 24k
    "twilio": FrontDoor("twilio", 8.0, 8.0, MULAW_SILENCE, "/twilio/incoming-call"),  # mu-law
}


@dataclass(frozen=True, slots=True)
class TwilioAccount:
    """The fake Twilio account the bridge is configured with; its REST fake runs here."""

    account_sid: str
    api_url: str


@dataclass(frozen=True, slots=True)
class Relay:
    """One relay the calls go through: ``bridge`` (``python -m vonage_bridge``), ``naive``
    (``bench/naive_relay.py``) or ``alt`` (the bridge again with ``--alt-env``)."""

    name: str
    kind: str  # "bridge" or "naive": which program runs
    env: tuple[tuple[str, str], ...] = ()  # extra variables for the bridge
    repo: Path = REPO  # the checkout whose vonage_bridge runs (--alt-repo: another commit)
    naive_args: tuple[str, ...] = ()  # extra arguments for naive_relay.py (--floor: the floor)
    script: Path = NAIVE_RELAY  # kind "naive": naive_relay.py, or picows_floor.py

    def describe(self) -> str:
        if self.kind == "naive":
            if self.script != NAIVE_RELAY:
                return self.script.name
            return "naive relay" + (f" {' '.join(self.naive_args)}" if self.naive_args else "")
        extra = " ".join(f"{k}={v}" for k, v in self.env)
        if self.repo != REPO:
            extra = f"{extra} from {self.repo}".strip()
        return f"{self.name} (the bridge{', ' + extra if extra else ''})"


# --- /proc ----------------------------------------------------------------------------------


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process, seconds (all its threads)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def tree_cpu_s(pid: int) -> float:
    """utime + stime of a process and of its descendants alive now, seconds: the relay with
    ``WORKERS`` above 1 is a parent and its worker processes (``ppid`` from
    ``/proc/<pid>/stat``, field 4 of stat(5))."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    tree, grew = {pid}, True
    while grew:
        more = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    total = 0.0
    for member in tree:
        with contextlib.suppress(OSError):  # a process that just ended
            total += proc_cpu_s(member)
    return total


def proc_status_kb(pid: int, key: str) -> int | None:
    """A number from /proc/<pid>/status (kB for the Vm* keys)."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    total = sum(parts[:8])
    return total - idle, total


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


# --- the fake Realtime server process -------------------------------------------------------


def _dump_fake(server: FakeRealtimeServer) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for s in server.sessions:
        instructions = s.config.get("instructions")
        m = NUMBER_RE.search(instructions) if isinstance(instructions, str) else None
        out.append(
            {
                "number": m.group(1) if m else None,
                "append_log": s.append_log,
                "reply_log": s.reply_log,
                "responses": [[r.response_id, r.total_bytes, r.status] for r in s.responses],
                "close_code": s.close_code,
            }
        )
    return out


async def serve_fake_realtime(reply_factor: float) -> None:
    """Run the fake Realtime server until stdin closes; ``DUMP <path>`` writes its records."""
    options = FakeRealtimeOptions(reply_realtime_factor=reply_factor)
    loop = asyncio.get_running_loop()
    async with FakeRealtimeServer(api_key="sk-sim", options=options) as server:
        print(f"READY {server.base_url}", flush=True)
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            command, _, arg = line.strip().partition(" ")
            if command == "DUMP":
                Path(arg).write_text(json.dumps(_dump_fake(server)))
                print("DUMPED", flush=True)


# --- processes ------------------------------------------------------------------------------


def _read_line(stream: IO[str], timeout_s: float) -> str:
    """One line from a child's stdout, or SystemExit if none comes in time."""
    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        if not sel.select(timeout_s):
            raise SystemExit("child process did not answer in time")
    return stream.readline().strip()


def start_fake(reply_factor: float, profile: str = "") -> tuple[subprocess.Popen[str], str]:
    fake = subprocess.Popen(
        python_command(
            str(Path(__file__).resolve()),
            ["--serve-fake-realtime", "--reply-factor", str(reply_factor)],
            profile,
        ),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert fake.stdout is not None
    line = _read_line(fake.stdout, 20.0)
    if not line.startswith("READY "):
        fake.kill()
        raise SystemExit(f"fake Realtime server did not start: {line!r}")
    return fake, line.split(" ", 1)[1]


async def start_bridge(
    fake_url: str,
    quality: str,
    log_path: Path,
    profile: str = "",
    twilio: TwilioAccount | None = None,
    extra_env: tuple[tuple[str, str], ...] = (),
    repo: Path = REPO,
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    url = f"http://{HOST}:{port}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONUNBUFFERED": "1",
        "SERVER_URL": url,
        "HOST": HOST,
        "PORT": str(port),
        "OPENAI_API_KEY": "sk-sim",
        "OPENAI_BASE_URL": fake_url,
        "MEDIA_TOKEN_SECRET": "bench-secret-not-for-production",
        "RESAMPLE_QUALITY": quality,
        # INFO, not WARNING: the per-call summary line is logged at INFO (a few lines per
        # call and turn, nothing per frame).
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
        "DATABASE_URL": "sqlite:///:memory:",  # call records: none left in the working tree
        # The fake Vonage callers do not sign; hundreds of calls a minute are the point here.
        "ALLOW_UNSIGNED_WEBHOOKS": "true",
        "UNSIGNED_CALLS_PER_MINUTE": "100000",
        "METRICS_PORT": "0",  # off unless asked: --bridge-env METRICS_PORT=<a free port>
    }
    if twilio is not None:  # the Twilio front door, signatures checked as in production
        env["TWILIO_ACCOUNT_SID"] = twilio.account_sid
        env["TWILIO_AUTH_TOKEN"] = TWILIO_AUTH_TOKEN
        env["TWILIO_API_URL"] = twilio.api_url
    env.update(extra_env)  # --bridge-env / --alt-env, e.g. EVENT_LOOP=asyncio
    with log_path.open("wb") as log:
        bridge = subprocess.Popen(
            python_command("vonage_bridge", ["--env-file", str(log_path) + ".no-env"], profile),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=repo,  # python -m imports vonage_bridge from the working directory first
        )
    await wait_healthy(bridge, url, "bridge", log_path)
    return bridge, url


async def start_naive(
    fake_url: str,
    quality: str,
    log_path: Path,
    profile: str = "",
    lead_frames: int | None = None,
    vonage_rate_hz: int = 16_000,
    extra: tuple[str, ...] = (),
    script: Path = NAIVE_RELAY,
) -> tuple[subprocess.Popen[bytes], str]:
    """The naive baseline relay (``bench/naive_relay.py``, with ``extra`` arguments) on a free
    port, same fake Realtime."""
    port = free_port()
    url = f"http://{HOST}:{port}"
    args = ["--host", HOST, "--port", str(port), "--openai-base-url", fake_url]
    args += ["--api-key", "sk-sim", "--quality", quality]
    if lead_frames is not None:
        args += ["--lead-frames", str(lead_frames)]
    if vonage_rate_hz != 16_000:
        args += ["--vonage-rate", str(vonage_rate_hz)]
    args += extra
    if script == PICOWS_FLOOR:  # its media sockets listen on a port of their own
        args += ["--media-port", str(free_port())]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1"}
    with log_path.open("wb") as log:
        relay = subprocess.Popen(
            python_command(str(script), args, profile),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
    await wait_healthy(relay, url, "naive relay", log_path)
    return relay, url


async def wait_healthy(proc: subprocess.Popen[bytes], url: str, name: str, log_path: Path) -> None:
    """Poll ``GET /health`` (100 x 0.1 s at most); SystemExit if it never answers 200."""
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            if proc.poll() is not None:
                raise SystemExit(f"{name} exited with {proc.returncode}; see {log_path}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{url}/health") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{name} /health never answered 200; see {log_path}")


def stop_process(proc: subprocess.Popen[Any], sig: int = signal.SIGINT) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def bridge_event_loop(log_path: Path) -> str:
    """The event loop the bridge's start-up log names (``uvloop 0.23.0``, ``asyncio``), or ``?``."""
    with contextlib.suppress(OSError):
        for line in log_path.read_text(errors="replace").splitlines():
            if "event loop: " in line:
                with contextlib.suppress(ValueError):
                    msg = json.loads(line).get("msg", "")
                    m = EVENT_LOOP_RE.search(msg) if isinstance(msg, str) else None
                    if m:
                        return m.group(1)
    return "?"


def bridge_summaries(log_path: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with contextlib.suppress(OSError):
        for line in log_path.read_text(errors="replace").splitlines():
            if '"summary"' not in line:
                continue
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                if isinstance(doc, dict) and isinstance(doc.get("summary"), dict):
                    out.append(doc["summary"])
    return out


# --- one call -------------------------------------------------------------------------------


Caller = FakeVonageCaller | FakeTwilioCaller


def new_caller(
    door: FrontDoor,
    http: aiohttp.ClientSession,
    bridge_url: str,
    number: str,
    twilio: TwilioAccount | None,
) -> Caller:
    """A fake caller dialling the bridge through ``door`` (Twilio: signed webhooks)."""
    url = bridge_url + door.webhook_path
    if door.name == "twilio":
        if twilio is None:
            raise SystemExit("a Twilio call needs the fake Twilio account")
        return FakeTwilioCaller(
            http,
            url,
            auth_token=TWILIO_AUTH_TOKEN,
            account_sid=twilio.account_sid,
            from_number="+" + number,
        )
    return FakeVonageCaller(http, url, from_number=number)


@dataclass
class CallResult:
    index: int
    number: str
    door: FrontDoor
    call_uuid: str = ""
    error: str | None = None
    frames_sent: int = 0
    frames_received: int = 0
    bad_frames: int = 0
    underruns: int = 0
    turns: int = 0
    no_reply_turns: int = 0
    clears: int = 0  # ``clear`` commands (barge-in) the bridge sent this caller
    send_log: list[tuple[float, int]] = field(default_factory=list)
    recv_log: list[tuple[float, int]] = field(default_factory=list)
    caller: Caller | None = None
    phase: str = "not started"

    def collect(self) -> None:
        """Copy the caller's counters and logs."""
        caller = self.caller
        if caller is None:
            return
        if isinstance(caller, FakeTwilioCaller):
            self.call_uuid = caller.call_sid
            self.bad_frames = len(caller.bad_messages)
            self.clears = caller.clears_received
        else:
            self.call_uuid = caller.call_uuid
            self.bad_frames = len(caller.bad_frames)
            self.clears = sum(1 for m in caller.text_messages if m.get("action") == "clear")
        self.frames_sent = len(caller.send_log)
        self.frames_received = caller.bytes_received // self.door.frame_bytes
        self.underruns = caller.underruns
        self.send_log = caller.send_log
        self.recv_log = caller.recv_log


def _reply_over(caller: Caller, now: float, idle_s: float = IDLE_S) -> bool:
    """Nothing was received and nothing played for ``idle_s`` (the player is idle)."""
    if not caller.recv_log:
        return False
    last = max(caller.recv_log[-1][0], caller.play_log[-1][0] if caller.play_log else 0.0)
    return now - last >= idle_s


async def one_call(
    result: CallResult,
    http: aiohttp.ClientSession,
    bridge_url: str,
    speech: bytes,
    *,
    start_delay_s: float,
    connected: asyncio.Queue[int],
    stop: asyncio.Event,
    twilio: TwilioAccount | None = None,
) -> None:
    index = result.index
    await asyncio.sleep(start_delay_s)
    caller = new_caller(result.door, http, bridge_url, result.number, twilio)
    result.caller = caller
    result.phase = "connecting"
    loop = asyncio.get_running_loop()
    chunk = CHUNK_FRAMES * result.door.frame_bytes
    silence = result.door.silence_byte * chunk
    echo_bytes = len(speech) * 9 // 10
    announced = False
    try:
        await caller.answer()
        await caller.connect()
        connected.put_nowait(index)
        announced = True
        result.phase = "lead-in"
        lead_in = round(((index * 0.6180339887) % 1.0) * LEAD_IN_MAX_S / 0.1)
        for _ in range(lead_in):
            await caller.stream_audio(silence)
        while not caller.closed.is_set():
            result.phase = "speaking"
            for start in range(0, len(speech), chunk):  # one turn of speech
                await caller.stream_audio(speech[start : start + chunk])
            result.turns += 1
            mark, spoke_at = caller.bytes_received, loop.time()
            result.phase = "listening"
            while not caller.closed.is_set():  # silence until the echo has been played
                await caller.stream_audio(silence)
                now = loop.time()
                got = caller.bytes_received - mark
                if got:
                    # The echo is at least as long as the speech: do not take a stall in its
                    # delivery for its end (speaking then would barge in).
                    if (got >= echo_bytes and _reply_over(caller, now)) or (
                        now - spoke_at > MAX_LISTEN_S
                    ):
                        break
                elif now - spoke_at > NO_REPLY_S:
                    result.no_reply_turns += 1
                    break
            if stop.is_set():
                break
        # Under load a reply can stall for more than IDLE_S: wait longer before hanging up,
        # so that no frame the bridge still had to send is counted as lost.
        result.phase = "waiting before hanging up"
        while not caller.closed.is_set() and not _reply_over(caller, loop.time(), FINAL_IDLE_S):
            await caller.stream_audio(silence)
        if caller.closed.is_set():
            result.error = f"bridge closed the call (code {caller.close_code})"
        result.phase = "hanging up"
        await caller.hang_up()
        result.phase = "done"
    except (CallerError, aiohttp.ClientError, OSError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        if not announced:
            connected.put_nowait(-1 - index)  # the window must not wait for this call
        result.phase = "done"
        with contextlib.suppress(Exception):
            await caller.close()


# --- one level of N -------------------------------------------------------------------------


@dataclass
class Level:
    calls: int
    door: FrontDoor
    relay: str = "bridge"  # which relay was measured: bridge, naive or alt (Relay.name)
    kind: str = "bridge"  # the program: bridge or naive
    round: int = 1  # which of the --rounds
    event_loop: str = ""  # the bridge's, from its start-up log
    description: str = ""  # Relay.describe()
    window_s: float = 0.0
    relay_cpu_s: float = 0.0
    fake_cpu_s: float = 0.0
    callers_cpu_s: float = 0.0
    machine_busy: float = 0.0  # fraction of all CPUs
    loadavg: str = ""
    rss_peak_kb: int | None = None
    rss_start_kb: int | None = None
    preempted: int = 0  # the relay's involuntary context switches in the window
    results: list[CallResult] = field(default_factory=list)
    summaries: list[dict[str, Any]] = field(default_factory=list)
    fake_sessions: list[dict[str, Any]] = field(default_factory=list)
    t0: float = 0.0
    t1: float = 0.0

    @property
    def call_seconds(self) -> float:
        return self.calls * self.window_s


async def run_level(
    n: int,
    door: FrontDoor,
    args: argparse.Namespace,
    workdir: Path,
    twilio: TwilioAccount | None = None,
    relay_spec: Relay = Relay("bridge", "bridge"),
    round_no: int = 1,
) -> Level:
    """One level of N calls through ``relay_spec``, fresh processes."""
    relay_name = relay_spec.name
    if relay_spec.kind == "bridge":
        door = door.at_rate(int(dict(relay_spec.env).get("VONAGE_AUDIO_RATE", "16000")))
    else:
        door = door.at_rate(args.naive_vonage_rate)
    level = Level(n, door, relay_name, relay_spec.kind, round_no)
    level.description = relay_spec.describe()
    tag = str(n) if door.name == "vonage" else f"{door.name}.{n}"
    if relay_name != "bridge":  # the bridge's file names are unchanged
        tag = f"{relay_name}.{tag}"
    if args.rounds > 1:
        tag = f"{tag}.r{round_no}"
    profile = f"{args.profile}.{tag}" if args.profile else ""
    fake, fake_url = start_fake(args.reply_factor, profile + ".fake" if profile else "")
    relay: subprocess.Popen[bytes] | None = None
    try:
        if relay_spec.kind == "bridge":
            log_path = workdir / f"bridge-{tag}.jsonl"
            relay, relay_url = await start_bridge(
                fake_url,
                args.quality,
                log_path,
                profile,
                twilio if door.name == "twilio" else None,
                relay_spec.env,
                relay_spec.repo,
            )
            level.event_loop = bridge_event_loop(log_path)
        else:
            log_path = workdir / f"{tag}.log"
            relay, relay_url = await start_naive(
                fake_url,
                args.quality,
                log_path,
                profile,
                args.naive_lead_frames,
                args.naive_vonage_rate,
                relay_spec.naive_args,
                relay_spec.script,
            )
        level.rss_start_kb = proc_status_kb(relay.pid, "VmRSS")
        if args.pin:
            cpus = sorted(os.sched_getaffinity(0))
            if len(cpus) < 2:
                raise SystemExit("--pin needs at least 2 CPUs")
            # the relay alone on the first CPU; the fakes (and this process) share the rest
            os.sched_setaffinity(relay.pid, {cpus[0]})
            os.sched_setaffinity(fake.pid, set(cpus[1:]))
            os.sched_setaffinity(0, set(cpus[1:]))
        pcm, rate = read_wav_pcm16(CALLER_WAV)
        if rate != 16_000:
            raise SystemExit(f"{CALLER_WAV} is {rate} Hz, expected 16000")
        speech = door.speech(pcm)
        stop = asyncio.Event()
        connected: asyncio.Queue[int] = asyncio.Queue()
        connector = aiohttp.TCPConnector(limit=0)  # each call holds a connection
        async with aiohttp.ClientSession(connector=connector) as http:
            level.results = [CallResult(i, f"4477009{i:05d}", door) for i in range(n)]
            tasks = [
                asyncio.create_task(
                    one_call(
                        level.results[i],
                        http,
                        relay_url,
                        speech,
                        start_delay_s=i * args.stagger_ms / 1000.0,
                        connected=connected,
                        stop=stop,
                        twilio=twilio,
                    )
                )
                for i in range(n)
            ]
            async with asyncio.timeout(n * args.stagger_ms / 1000.0 + 30.0):
                for _ in range(n):
                    await connected.get()
            await asyncio.sleep(SETTLE_S)

            cpu0 = tree_cpu_s(relay.pid), proc_cpu_s(fake.pid), _self_cpu_s()
            ctx0 = proc_status_kb(relay.pid, "nonvoluntary_ctxt_switches") or 0
            m0 = machine_ticks()
            level.t0 = time.monotonic()
            await asyncio.sleep(args.seconds)
            level.t1 = time.monotonic()
            cpu1 = tree_cpu_s(relay.pid), proc_cpu_s(fake.pid), _self_cpu_s()
            ctx1 = proc_status_kb(relay.pid, "nonvoluntary_ctxt_switches") or 0
            m1 = machine_ticks()
            level.loadavg = loadavg()
            stop.set()

            level.window_s = level.t1 - level.t0
            level.relay_cpu_s = cpu1[0] - cpu0[0]
            level.fake_cpu_s = cpu1[1] - cpu0[1]
            level.callers_cpu_s = cpu1[2] - cpu0[2]
            level.machine_busy = (m1[0] - m0[0]) / max(1, m1[1] - m0[1])
            level.preempted = ctx1 - ctx0
            _, pending = await asyncio.wait(tasks, timeout=FINISH_TIMEOUT_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            now = asyncio.get_running_loop().time()
            for r in level.results:
                if r.phase != "done":
                    c = r.caller
                    last = f"{now - c.recv_log[-1][0]:.1f} s ago" if c and c.recv_log else "never"
                    r.error = (
                        f"unfinished after {FINISH_TIMEOUT_S:.0f} s ({r.phase}; last frame {last})"
                    )
                    if c is not None:
                        with contextlib.suppress(Exception):
                            await c.close()
                r.collect()

        for _ in range(100 if relay_spec.kind == "bridge" else 0):
            # the bridge logs a summary once each call's tasks end (the naive relay none)
            level.summaries = bridge_summaries(log_path)
            if len(level.summaries) >= n:
                break
            await asyncio.sleep(0.1)
        dump_path = workdir / f"fake-{tag}.json"
        assert fake.stdin is not None and fake.stdout is not None
        fake.stdin.write(f"DUMP {dump_path}\n")
        fake.stdin.flush()
        if _read_line(fake.stdout, 30.0) != "DUMPED":
            raise SystemExit("fake Realtime server did not dump its records")
        level.fake_sessions = json.loads(dump_path.read_text())
        level.rss_peak_kb = proc_status_kb(relay.pid, "VmHWM")
    finally:
        if relay is not None:
            stop_process(relay)
        if fake.stdin is not None:
            with contextlib.suppress(OSError):
                fake.stdin.close()  # the fake exits on end of input
            with contextlib.suppress(subprocess.TimeoutExpired):
                fake.wait(10)
        stop_process(fake, signal.SIGTERM)
    return level


def _self_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


# --- analysis -------------------------------------------------------------------------------


def inbound_delays_ms(
    send_log: list[tuple[float, int]],
    append_log: list[tuple[float, int]],
    t0: float,
    t1: float,
    door: FrontDoor = FRONT_DOORS["vonage"],
) -> list[float]:
    """As sim/call.py ``_inbound_delay_ms``: for each append that reached the fake within
    [t0, t1], when it arrived minus when the caller had sent that much audio."""
    send_t = [t for t, _ in send_log]
    send_ms = [b / door.caller_bytes_per_ms for _, b in send_log]
    out: list[float] = []
    for t_recv, cum in append_log:
        ms = cum / door.realtime_bytes_per_ms
        if ms < INBOUND_SKIP_MS or not t0 <= t_recv <= t1:
            continue
        i = bisect.bisect_left(send_ms, ms)
        if i < len(send_t):
            out.append((t_recv - send_t[i]) * 1000.0)
    return out


def inbound_sample_delay(
    send_log: list[tuple[float, int]],
    append_log: list[tuple[float, int]],
    t0: float,
    t1: float,
    door: FrontDoor = FRONT_DOORS["vonage"],
) -> tuple[float, float]:
    """Inbound delay weighted by audio: (sum of delay x ms, ms) over the appends in [t0, t1].

    Each millisecond of audio in an append is charged the time since the caller sent the
    frame that carried it, so audio the resampler held back into a later append counts its
    full wait (the sim/call.py figure above only looks at each append's last sample).
    """
    send_t = [t for t, _ in send_log]
    send_ms = [b / door.caller_bytes_per_ms for _, b in send_log]
    weighted = total = 0.0
    prev_ms = 0.0
    for t_recv, cum in append_log:
        ms = cum / door.realtime_bytes_per_ms
        lo, prev_ms = prev_ms, ms
        if lo < INBOUND_SKIP_MS or not t0 <= t_recv <= t1:
            continue
        i = bisect.bisect_right(send_ms, lo)  # first frame ending after lo
        while i < len(send_ms) and lo < ms:
            hi = min(ms, send_ms[i])
            weighted += (hi - lo) * (t_recv - send_t[i]) * 1000.0
            total += hi - lo
            lo = hi
            i += 1
    return weighted, total


def outbound_delays_ms(
    reply_log: list[tuple[float, int]],
    responses: list[list[Any]],
    recv_log: list[tuple[float, int]],
) -> list[float]:
    """Per response: first delta sent by the fake -> first frame at the caller after it.

    Turns never overlap (the caller speaks again only once the echo has been played), so the
    first frame the caller receives after a response's first delta belongs to it.
    """
    recv_t = [t for t, _ in recv_log]
    reply_t = [t for t, _ in reply_log]
    reply_cum = [c for _, c in reply_log]
    firsts: list[float] = []
    before = 0
    for _, total, _ in responses:
        if total > 0:
            i = bisect.bisect_right(reply_cum, before)
            if i < len(reply_t):
                firsts.append(reply_t[i])
        before += total
    out: list[float] = []
    for k, t_first in enumerate(firsts):
        j = bisect.bisect_left(recv_t, t_first)
        if j < len(recv_t) and (k + 1 >= len(firsts) or recv_t[j] < firsts[k + 1]):
            out.append((recv_t[j] - t_first) * 1000.0)
    return out


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(len(s) * p))]


def delay_text(xs: list[float]) -> str:
    if not xs:
        return "n/a"
    return (
        f"median {statistics.median(xs):.1f} ms, p95 {pct(xs, 0.95):.1f} ms,"
        f" max {max(xs):.1f} ms (n={len(xs)})"
    )


@dataclass
class Figures:
    calls: int
    front_door: str
    relay: str
    round: int
    event_loop: str  # the bridge's ("" for the naive relay)
    cpu_ms_per_call_s: float
    rss_mb: float | None
    lost: int
    late: int
    bridge_underruns: int | None  # from the bridge's summary lines; None for the naive relay
    in_median: float | None
    in_p95: float | None
    out_median: float | None
    out_p95: float | None
    in_sample_mean: float | None
    fakes_pct: float  # fake Realtime + callers, % of one core
    others_pct: float  # other processes on the machine, % of one core
    busy_pct: float
    errors: int


def report(level: Level, args: argparse.Namespace) -> Figures:
    n = level.calls
    door = level.door
    results = level.results
    sessions = {s["number"]: s for s in level.fake_sessions if s["number"]}
    summaries = {s.get("call_uuid"): s for s in level.summaries}
    cores = os.cpu_count() or 1

    expected_window = level.window_s / FRAME_S
    sent_window = [sum(1 for t, _ in r.send_log if level.t0 <= t <= level.t1) for r in results]
    expected_rx: list[int] = []
    lost_calls = lost = 0
    barged: set[int] = set()  # calls with a barge-in: unplayed audio was dropped on purpose
    in_delays: list[float] = []
    in_weighted = in_audio_ms = 0.0
    out_delays: list[float] = []
    replies = cancelled = 0
    for r in results:
        s = sessions.get(r.number)
        if s is None:
            expected_rx.append(0)
            continue
        responses = s["responses"]
        replies += sum(1 for x in responses if x[1] > 0)
        cancelled += sum(1 for x in responses if x[2] == "cancelled")
        # one caller frame per 20 ms of the fake's reply (Vonage: 960 B of 24 kHz PCM16)
        exp = sum(math.ceil(x[1] / door.realtime_frame_bytes) for x in responses)
        expected_rx.append(exp)
        if r.clears or any(x[2] == "cancelled" for x in responses):
            barged.add(r.index)
        elif r.frames_received < exp:
            lost_calls += 1
            lost += exp - r.frames_received
        in_delays += inbound_delays_ms(r.send_log, s["append_log"], level.t0, level.t1, door)
        w, a = inbound_sample_delay(r.send_log, s["append_log"], level.t0, level.t1, door)
        in_weighted += w
        in_audio_ms += a
        out_delays += outbound_delays_ms(s["reply_log"], responses, r.recv_log)
    total_exp = sum(expected_rx)
    total_rx = sum(r.frames_received for r in results)
    late = sum(r.underruns for r in results)
    matched = [summaries[r.call_uuid] for r in results if r.call_uuid in summaries]
    bridge_underruns: int | None = sum(int(s.get("underruns", 0)) for s in matched)
    if level.kind != "bridge":
        bridge_underruns = None  # the naive relay logs no summary
    bridge_barge_ins = sum(int(s.get("barge_ins", 0)) for s in matched)
    errors = [r for r in results if r.error]
    cpu_ms = level.relay_cpu_s * 1000.0 / level.call_seconds
    rss_mb = level.rss_peak_kb / 1024.0 if level.rss_peak_kb is not None else None

    def per_core(cpu_s: float) -> str:
        return f"{cpu_s * 1000.0 / level.window_s / 10.0:.0f} % of a core"

    audio = (
        f"RESAMPLE_QUALITY={args.quality}"
        if door.name == "vonage"
        else "mu-law passed through as audio/pcmu"
    )
    who = level.relay  # "bridge", "naive" or "alt": the relay under test
    loop_text = f", event loop {level.event_loop}" if level.event_loop else ""
    round_text = f", round {level.round}" if args.rounds > 1 else ""
    print(
        f"N = {n} calls through {door.name}, {level.description}{loop_text}{round_text}:"
        f" window {level.window_s:.1f} s"
        f" ({level.call_seconds:.0f} call-s), {audio},"
        f" fake replies at {args.reply_factor:g}x real time"
    )
    start_mb = level.rss_start_kb / 1024.0 if level.rss_start_kb is not None else None
    print(
        f"  {who + ' CPU':<25} {cpu_ms:.2f} ms per call-second"
        f" ({per_core(level.relay_cpu_s)}); preempted {level.preempted / level.window_s:.0f}"
        " times/s"
    )
    peak_text = "n/a" if rss_mb is None else f"{rss_mb:.1f} MB"
    start_text = "n/a" if start_mb is None else f"{start_mb:.1f} MB"
    print(f"  {who + ' memory':<25} peak RSS (VmHWM) {peak_text}, {start_text} before the calls")
    ours = level.relay_cpu_s + level.fake_cpu_s + level.callers_cpu_s
    others = max(0.0, level.machine_busy * cores * level.window_s - ours)
    print(
        f"  load on the box           fake Realtime {per_core(level.fake_cpu_s)},"
        f" callers {per_core(level.callers_cpu_s)}, other processes {per_core(others)};"
        f" machine busy {level.machine_busy * 100:.0f} % of {cores} cores;"
        f" loadavg {level.loadavg}"
    )
    if others / level.window_s > 0.10:
        print(
            f"  WARNING                   other processes used {per_core(others)} during the"
            " window: the figures below are disturbed"
        )
    print(
        f"  {'caller -> ' + who:<25} frames sent in the window per call:"
        f" mean {statistics.fmean(sent_window):.1f}, min {min(sent_window)}"
        f" of {expected_window:.0f} expected"
    )
    print(
        f"  {who + ' -> caller':<25} frames received per call: mean"
        f" {total_rx / n:.1f} of {total_exp / n:.1f} expected (the fake's reply audio);"
        f" lost {lost} in {lost_calls} calls; bad size"
        f" {sum(r.bad_frames for r in results)}"
    )
    if barged or bridge_barge_ins:
        print(
            f"  barge-ins                 {len(barged)} calls got a clear or a cancelled reply"
            f" (not counted in lost: the {who} drops unplayed audio on purpose);"
            f" clears {sum(r.clears for r in results)}, bridge barge_ins {bridge_barge_ins}"
        )
    relay_side = (
        f"bridge {bridge_underruns} ({len(matched)}/{n} summary lines)"
        if bridge_underruns is not None
        else "naive relay n/a (no summary lines)"
    )
    print(f"  underruns                 caller side (late frames) {late}; {relay_side}")
    print(f"  added delay caller->OpenAI  {delay_text(in_delays)} (as sim/call.py)")
    if in_audio_ms:
        print(
            f"                              {in_weighted / in_audio_ms:.1f} ms mean per sample"
            + (" (resampler hold-back included)" if door.name == "vonage" else " (no resampler)")
        )
    print(
        f"  added delay OpenAI->caller  {delay_text(out_delays)}"
        " (first delta -> first frame, per reply)"
    )
    turns = sum(r.turns for r in results)
    print(
        f"  turns                     {turns} spoken, {replies} replies, {cancelled} cancelled,"
        f" {sum(r.no_reply_turns for r in results)} without a reply; errors {len(errors)}"
    )
    reasons = Counter(str(s.get("end_reason")) for s in matched)
    if reasons:
        shown = ", ".join(f"{k} x{v}" for k, v in reasons.most_common(3))
        print(f"  bridge end reasons        {shown}")
    for r in errors[:3]:
        print(f"  error (call {r.index})      {r.error}")
    print(flush=True)
    return Figures(
        calls=n,
        front_door=door.name,
        relay=level.relay,
        round=level.round,
        event_loop=level.event_loop,
        cpu_ms_per_call_s=cpu_ms,
        rss_mb=rss_mb,
        lost=lost,
        late=late,
        bridge_underruns=bridge_underruns,
        in_median=statistics.median(in_delays) if in_delays else None,
        in_p95=pct(in_delays, 0.95) if in_delays else None,
        out_median=statistics.median(out_delays) if out_delays else None,
        out_p95=pct(out_delays, 0.95) if out_delays else None,
        in_sample_mean=in_weighted / in_audio_ms if in_audio_ms else None,
        fakes_pct=(level.fake_cpu_s + level.callers_cpu_s) / level.window_s * 100,
        others_pct=others / level.window_s * 100,
        busy_pct=level.machine_busy * 100,
        errors=len(errors),
    )


def _num(x: float | None, spec: str = ".1f") -> str:
    return "n/a" if x is None else format(x, spec)


def print_table(rows: list[Figures]) -> None:
    f = _num
    print("Summary (targets: <= 5 ms CPU per call-second, 0 lost at 100 calls, <= 10 ms delay)")
    print(
        f"  {'calls':>5} {'front door':<10} {'relay':<6} {'rnd':>3} {'loop':<7}"
        f" {'CPU ms/call-s':>13} {'RSS MB':>6} {'lost':>4} {'late':>5}"
        f" {'bridge undr':>11} {'in ms med/p95/mean':>18} {'out ms med/p95':>14}"
        f" {'fakes %':>7} {'others %':>8} {'busy':>5} {'err':>3}"
    )
    for r in rows:
        inbound = f"{f(r.in_median)}/{f(r.in_p95)}/{f(r.in_sample_mean)}"
        outbound = f"{f(r.out_median)}/{f(r.out_p95)}"
        undr = "n/a" if r.bridge_underruns is None else str(r.bridge_underruns)
        loop = r.event_loop.split(" ")[0] if r.event_loop else "-"
        print(
            f"  {r.calls:>5} {r.front_door:<10} {r.relay:<6} {r.round:>3} {loop:<7}"
            f" {r.cpu_ms_per_call_s:>13.2f} {f(r.rss_mb):>6} {r.lost:>4}"
            f" {r.late:>5} {undr:>11} {inbound:>18} {outbound:>14}"
            f" {r.fakes_pct:>7.0f} {r.others_pct:>8.0f} {r.busy_pct:>4.0f}% {r.errors:>3}"
        )
    print(
        "  rnd: round (--rounds); loop: the bridge's event loop; in: caller->OpenAI (median/p95"
        " as sim/call.py, mean per sample); out: OpenAI->caller; fakes/others: % of one core;"
        " busy: % of all cores"
    )


def ratio_text(a: float | None, b: float | None) -> str:
    """``a / b`` for the ratio rows: ``-`` for 0 / 0, ``inf`` for x / 0, ``n/a`` if unknown."""
    if a is None or b is None:
        return "n/a"
    if b == 0:
        return "-" if a == 0 else "inf"
    return f"{a / b:.2f}"


def median_figure(values: list[Any]) -> float | None:
    """The median of one figure over the rounds (None when a round has no figure)."""
    known = [v for v in values if v is not None]
    return statistics.median(known) if known and len(known) == len(values) else None


def median_ratio(pairs: list[tuple[Any, Any]]) -> str:
    """The median over the rounds of each round's ratio a / b, as :func:`ratio_text` shows it.

    Rounds where b is 0 count as ``inf`` (a > 0) or are left out (0 / 0); ``-`` when every
    round is 0 / 0, ``n/a`` when a round has no figure.
    """
    if any(a is None or b is None for a, b in pairs):
        return "n/a"
    ratios = [a / b if b else math.inf for a, b in pairs if a or b]
    if not ratios:
        return "-"
    m = statistics.median(ratios)
    return "inf" if math.isinf(m) else f"{m:.2f}"


COMPARED: tuple[tuple[str, str, str], ...] = (
    # (column header, Figures attribute, format of the figure)
    ("CPU ms/call-s", "cpu_ms_per_call_s", ".2f"),
    ("lost", "lost", ".0f"),
    ("late", "late", ".0f"),
    ("in p50", "in_median", ".1f"),
    ("in p95", "in_p95", ".1f"),
    ("in mean", "in_sample_mean", ".1f"),
    ("out p50", "out_median", ".1f"),
    ("out p95", "out_p95", ".1f"),
    ("err", "errors", ".0f"),
)


def comparisons(relays: list[str]) -> list[tuple[str, str]]:
    """Which ratios to print: every relay against the naive one, and the bridge against alt
    and against the floor."""
    out = [(r, "naive") for r in relays if r != "naive" and "naive" in relays]
    if FLOOR in relays and FLOOR_PICOWS in relays:
        out.append((FLOOR_PICOWS, FLOOR))
    for other in (ALT, FLOOR, FLOOR_PICOWS):
        if "bridge" in relays and other in relays:
            out.append(("bridge", other))
    return out


def print_comparison(rows: list[Figures], relays: list[str]) -> None:
    """For each level and front door measured through two relays: each relay's figures
    (median over the rounds) and the median over the rounds of each round's ratio."""
    by_key: dict[tuple[int, str, str], dict[int, Figures]] = {}
    for r in rows:
        by_key.setdefault((r.calls, r.front_door, r.relay), {})[r.round] = r
    levels = list(dict.fromkeys((r.calls, r.front_door) for r in rows))
    pairs = comparisons(relays)
    if not pairs or not any(
        (*lv, a) in by_key and (*lv, b) in by_key for lv in levels for a, b in pairs
    ):
        return
    n_rounds = max(r.round for r in rows)
    what = "median over the rounds of each round's ratio" if n_rounds > 1 else "ratio"
    print()
    print(f"Relays against each other ({what}; measured in interleaved rounds)")
    widths = [max(7, len(head)) for head, _, _ in COMPARED]
    head = " ".join(f"{h:>{w}}" for (h, _, _), w in zip(COMPARED, widths, strict=True))
    print(f"  {'calls':>5} {'front door':<10} {'':<14} {head} {'bridge undr':>11}")
    for calls, door in levels:
        shown: set[str] = set()
        for a, b in pairs:
            ra, rb = by_key.get((calls, door, a)), by_key.get((calls, door, b))
            if ra is None or rb is None:
                continue
            for label, per_round in ((a, ra), (b, rb)):
                if label in shown:
                    continue
                shown.add(label)
                figs = list(per_round.values())
                cells = " ".join(
                    f"{_num(median_figure([getattr(r, attr) for r in figs]), spec):>{w}}"
                    for (_, attr, spec), w in zip(COMPARED, widths, strict=True)
                )
                undr = median_figure([r.bridge_underruns for r in figs])
                print(f"  {calls:>5} {door:<10} {label:<14} {cells} {_num(undr, '.0f'):>11}")
            both = sorted(set(ra) & set(rb))
            cells = " ".join(
                f"{median_ratio([(getattr(ra[k], attr), getattr(rb[k], attr)) for k in both]):>{w}}"
                for (_, attr, _), w in zip(COMPARED, widths, strict=True)
            )
            print(f"  {calls:>5} {door:<10} {a + ' / ' + b:<14} {cells} {'':>11}")
            if len(both) > 1:
                each = ", ".join(
                    ratio_text(ra[k].cpu_ms_per_call_s, rb[k].cpu_ms_per_call_s) for k in both
                )
                print(f"  {'':>5} {'':<10} {'':<14} CPU ratio per round: {each}")
    print(
        "  figures: median over the rounds; late: underruns at the callers; in/out: added delay"
        " caller->OpenAI / OpenAI->caller, ms (in mean: per sample); bridge undr: from the"
        " bridge's summaries (the naive relay has none); '-': 0 / 0"
    )


def clean(r: Figures) -> bool:
    """No frame lost, no underrun (caller side or bridge side), no failed call."""
    return r.lost == 0 and r.late == 0 and not r.bridge_underruns and r.errors == 0


def verdict(r: Figures) -> str:
    """Why a level is not clean: lost, late, the bridge's underruns, failed calls."""
    text = f"lost {r.lost} late {r.late}"
    if r.bridge_underruns:
        text += f" bridge undr {r.bridge_underruns}"
    return text + (f" err {r.errors}" if r.errors else "")


def print_capacity(rows: list[Figures], ladder: list[int]) -> None:
    """Per relay and front door: the largest level of the ladder with 0 lost, 0 underruns (in
    every round)."""
    print()
    print(
        f"Capacity ladder {','.join(map(str, ladder))}: the largest level with 0 lost frames,"
        " 0 underruns (caller side and bridge side) and no failed call, in every round"
    )
    keys = list(dict.fromkeys((r.front_door, r.relay) for r in rows))  # in the rows' order
    for door, relay in keys:
        mine = [r for r in rows if r.front_door == door and r.relay == relay]
        calls = sorted({r.calls for r in mine})
        passed = [n for n in calls if all(clean(r) for r in mine if r.calls == n)]
        best = str(max(passed)) if passed else f"none (below {calls[0]})"
        detail = ", ".join(
            f"{r.calls}: {'ok' if clean(r) else verdict(r)}"
            for r in sorted(mine, key=lambda r: (r.calls, r.round))
        )
        print(f"  {door:<7} {relay:<6} {best:>16}   ({detail})")


def relay_specs(args: argparse.Namespace) -> list[Relay]:
    """The relays to measure, in the order of the first round."""
    bridge = Relay("bridge", "bridge", tuple(args.bridge_env))
    naive = Relay("naive", "naive")
    specs = {"both": [bridge, naive], "bridge": [bridge], "naive": [naive]}[args.relay]
    if args.alt_env or args.alt_repo:
        env = tuple(dict([*args.bridge_env, *args.alt_env]).items())
        alt = Relay(ALT, "bridge", env, Path(args.alt_repo).resolve() if args.alt_repo else REPO)
        specs.insert(1, alt)
    if args.floor:
        specs.append(Relay(FLOOR, "naive", naive_args=("--floor", "--uvloop")))
    if args.floor_picows:
        specs.append(Relay(FLOOR_PICOWS, "naive", script=PICOWS_FLOOR))
    return specs


async def main_async(args: argparse.Namespace) -> int:
    rows: list[Figures] = []
    names = ["vonage", "twilio"] if args.front_door == "both" else [args.front_door]
    doors = [FRONT_DOORS[name] for name in names]
    relays = relay_specs(args)
    relay_names = [r.name for r in relays]
    levels: list[int] = args.ladder or args.calls
    account_sid = new_account_sid()
    # Any call SID is a live call: the bridge's REST hang-ups (a call ending at shutdown,
    # say) get a 200 from here and never try the real Twilio.
    options = FakeTwilioApiOptions(accept_any_call=True)
    with tempfile.TemporaryDirectory(prefix="vonage-bridge-load-") as tmp:
        async with FakeTwilioApi(account_sid, TWILIO_AUTH_TOKEN, options=options) as api:
            twilio = TwilioAccount(account_sid, api.base_url)
            workdir = Path(args.keep_logs) if args.keep_logs else Path(tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            print(
                f"bench/load.py: {os.cpu_count()} CPUs, loadavg {loadavg()}, calls {levels},"
                f" front door {args.front_door}, relays {', '.join(r.describe() for r in relays)},"
                f" {args.rounds} round(s), {args.seconds:g} s window,"
                f" {args.stagger_ms:g} ms stagger",
                flush=True,
            )
            print(flush=True)
            rounds = 0
            for n in levels:
                for door in doors:
                    for round_no in range(1, args.rounds + 1):
                        # Interleaved rounds, the order rotated every round (bridge, naive;
                        # naive, bridge; ...) so that a drift of the machine's load hits all
                        # relays alike.
                        k = rounds % len(relays)
                        rounds += 1
                        for relay in relays[k:] + relays[:k]:
                            level = await run_level(n, door, args, workdir, twilio, relay, round_no)
                            rows.append(report(level, args))
    rows.sort(  # by level, then front door, then relay (bridge, alt, naive), then round
        key=lambda r: (
            levels.index(r.calls),
            names.index(r.front_door),
            relay_names.index(r.relay),
            r.round,
        )
    )
    print_table(rows)
    print_comparison(rows, relay_names)
    if args.ladder:
        print_capacity(rows, args.ladder)
    return 0


def env_pair(text: str) -> tuple[str, str]:
    """``VAR=VALUE`` -> (VAR, VALUE)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"not VAR=VALUE: {text!r}")
    return name.strip(), value


def level_list(text: str) -> list[int]:
    """``25,50,75`` -> [25, 50, 75] (ascending, positive)."""
    try:
        levels = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of numbers: {text!r}"
        ) from None
    if not levels or levels[0] < 1:
        raise argparse.ArgumentTypeError(f"levels must be positive numbers of calls: {text!r}")
    return levels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="N concurrent simulated calls through the bridge")
    parser.add_argument("--calls", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--seconds", type=float, default=20.0, help="steady window, s")
    parser.add_argument("--stagger-ms", type=float, default=20.0, help="between call starts")
    parser.add_argument(
        "--front-door",
        choices=["vonage", "twilio", "both"],
        default="vonage",
        help="which front door the calls come through; both: each level through each",
    )
    parser.add_argument(
        "--relay",
        choices=["both", "bridge", "naive"],
        default="both",
        help="what the calls go through: the bridge, the naive baseline relay"
        " (bench/naive_relay.py), or both in interleaved rounds with the ratios bridge / naive",
    )
    parser.add_argument(
        "--ladder",
        type=level_list,
        default=None,
        help="capacity ladder, e.g. 25,50,75,100,150 (replaces --calls): reports, per relay,"
        " the largest level with 0 lost frames and 0 underruns",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure each level this many times, the relays interleaved; the comparison"
        " shows the median over the rounds of each round's ratio",
    )
    parser.add_argument(
        "--bridge-env",
        type=env_pair,
        action="append",
        default=[],
        metavar="VAR=VALUE",
        help="an extra variable for the bridge (repeatable), e.g. EVENT_LOOP=asyncio",
    )
    parser.add_argument(
        "--alt-env",
        type=env_pair,
        action="append",
        default=[],
        metavar="VAR=VALUE",
        help="also measure the bridge with this variable (repeatable) as relay 'alt', in the"
        " same interleaved rounds, e.g. --alt-env EVENT_LOOP=asyncio; ratios bridge / alt",
    )
    parser.add_argument(
        "--alt-repo",
        default="",
        metavar="DIR",
        help="also measure the bridge of another checkout (e.g. a `git worktree` of an older"
        " commit) as relay 'alt', in the same interleaved rounds; ratios bridge / alt",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also measure the floor (bench/naive_relay.py --floor --uvloop: the naive relay's"
        " messages with pre-built contents, on uvloop) as relay 'floor' in the same rounds:"
        " what aiohttp, the loop and the kernel cost for those messages; ratios floor / naive"
        " and bridge / floor",
    )
    parser.add_argument(
        "--floor-picows",
        action="store_true",
        help="also measure the floor on picows (bench/picows_floor.py; needs `pip install"
        " picows`) as relay 'picows': what a faster WebSocket library would move the floor to",
    )
    parser.add_argument(
        "--naive-lead-frames",
        type=int,
        default=None,
        help="the naive relay's --lead-frames (default: its own, 2)",
    )
    parser.add_argument(
        "--naive-vonage-rate",
        type=int,
        choices=(16_000, 24_000),
        default=16_000,
        help="the L16 rate the naive relay's NCCO asks for (24000: passed through, no soxr); "
        "the bridge's is VONAGE_AUDIO_RATE in --bridge-env / --alt-env",
    )
    parser.add_argument(
        "--quality", default="LQ", help="the bridge's RESAMPLE_QUALITY (and the naive relay's)"
    )
    parser.add_argument(
        "--reply-factor", type=float, default=4.0, help="fake reply speed, x real time"
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin the bridge to the first CPU and the fakes to the others (needs >= 2 CPUs)",
    )
    parser.add_argument("--keep-logs", default="", help="directory for the logs and dumps")
    parser.add_argument(
        "--profile",
        default="",
        help="profile the bridge and the fake (cProfile, CPU time) into PROFILE.<N>[.fake];"
        " the CPU figures are then inflated",
    )
    parser.add_argument("--serve-fake-realtime", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.serve_fake_realtime:
        asyncio.run(serve_fake_realtime(args.reply_factor))
        return 0
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())

"""Per-frame hot-path costs of the bridge core, and the resampler's algorithmic delay.

Run: ``.venv/bin/python bench/frames.py [--repeats 11]``. Figures are printed, never asserted.

Every cost is the median (and, in brackets, the minimum) over ``--repeats`` batches of the
mean time per operation in the batch (``time.perf_counter_ns``; the garbage collector is off
while a batch runs, as in ``timeit``). The audio is real speech
(``vonage_bridge/sim/data/caller.wav``), not silence.

What is measured (see ``bench/README.md`` for what each figure means), for each front door
side by side (Vonage: L16 at 16 kHz resampled to and from 24 kHz PCM16; Twilio: 8 kHz mu-law
passed through as ``audio/pcmu``, every frame a JSON ``media`` message with base64 inside):

- Twilio only: ``twilio.wire.parse_message`` of a real 20 ms ``media`` message (JSON and
  base64 decode; a Vonage frame arrives as a bare binary message, nothing to parse);
- ``CallSession.caller_frame``: one caller frame in (640 B L16 / 160 B mu-law), one
  ``input_audio_buffer.append`` JSON string out (Vonage: 16 -> 24 kHz resampling; both: base64,
  concatenation), session in BRIDGING;
- one 100 ms ``response.output_audio.delta`` message: ``parse_server_event`` then
  ``CallSession.realtime_event`` (JSON, base64 decode, Vonage: 24 -> 16 kHz, playout push),
  also given per 20 ms of audio (/5) and split into its two halves;
- ``Playout.take`` (+ ``wakeup_at``, as the playout pump calls them) per frame sent;
- Twilio only: ``TwilioCommands.media`` of a batch of 3 frames (base64 + template: one JSON
  ``media`` message; Vonage sends each frame as a bare binary message);
- ``StreamResampler.process`` per 20 ms, each direction, for every soxr quality;
- the resampler's algorithmic delay: clicks (single-sample impulses) at many known positions
  are fed through the streaming resampler in 20 ms chunks; for each we find the output peak
  (its offset from the expected position shows whether the output is time-shifted) and the
  chunk whose output first contains it (how many 20 ms chunks later than the chunk holding
  the click it comes out). The mean audio held back after each chunk is also given; by
  Little's law it equals the mean release delay.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from vonage_bridge.audio.path import AudioPath, PassthroughPath, ResamplingPath
from vonage_bridge.audio.playout import Playout
from vonage_bridge.audio.resampler import StreamResampler
from vonage_bridge.config import Settings
from vonage_bridge.config_values import RESAMPLE_QUALITIES
from vonage_bridge.core.call_data import CallInfo
from vonage_bridge.core.frontdoor import PlaybackCommands
from vonage_bridge.core.session import CallSession, Phase
from vonage_bridge.realtime.protocol import parse_server_event
from vonage_bridge.sim.twilio import pcm16_to_mulaw
from vonage_bridge.sim.vonage import CALLER_WAV, read_wav_pcm16
from vonage_bridge.twilio.wire import TwilioCommands, parse_message
from vonage_bridge.vonage.wire import VONAGE_COMMANDS

FRAME_16K = 640  # bytes of 20 ms at 16 kHz PCM16
FRAME_24K = 960  # bytes of 20 ms at 24 kHz PCM16
DELTA_24K = 4800  # bytes of 100 ms at 24 kHz PCM16 (the fake's and the real API's usual delta)
FRAME_MULAW = 160  # bytes of 20 ms at 8 kHz mu-law (Twilio, and audio/pcmu both ways)
DELTA_MULAW = 800  # bytes of 100 ms of audio/pcmu
MEDIA_BATCH = 3  # frames the playout pump hands over at once, sent as one Twilio media message
STREAM_SID = "MZ" + "0123456789abcdef" * 2
BENCH_ENV = {
    "SERVER_URL": "http://127.0.0.1:1",
    "OPENAI_API_KEY": "sk-x",
    "SYSTEM_MESSAGE_PATH": "/nonexistent",
    "ALLOW_UNSIGNED_WEBHOOKS": "true",  # settings only: no webhook is served here
}


# --- timing ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timing:
    """µs per operation: the median over the batches, and the fastest batch."""

    median: float
    best: float

    def __truediv__(self, k: float) -> Timing:
        return Timing(self.median / k, self.best / k)

    def text(self, width: int) -> str:
        return f"{self.median:>{width}.1f} ({self.best:>4.1f})"


def per_op_us(
    batch: Callable[[], int], repeats: int, setup: Callable[[], None] | None = None
) -> Timing:
    """Median (and min) over ``repeats`` batches of the mean µs per operation.

    Args:
        batch: runs one batch and returns how many operations it did.
        repeats: batches timed (one more is run first, untimed, as a warm-up).
        setup: run before each batch, untimed.
    """
    results: list[float] = []
    for i in range(repeats + 1):
        if setup is not None:
            setup()
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            t0 = time.perf_counter_ns()
            n = batch()
            elapsed = time.perf_counter_ns() - t0
        finally:
            if gc_was_enabled:
                gc.enable()
        if i > 0:
            results.append(elapsed / n / 1000.0)
    return Timing(statistics.median(results), min(results))


# --- audio ----------------------------------------------------------------------------------


def speech_16k() -> bytes:
    """The caller recording, 16 kHz PCM16, cut to whole 20 ms frames."""
    pcm, rate = read_wav_pcm16(CALLER_WAV)
    if rate != 16_000:
        raise SystemExit(f"{CALLER_WAV} is {rate} Hz, expected 16000")
    return pcm[: len(pcm) // FRAME_16K * FRAME_16K]


def speech_24k(pcm16k: bytes) -> bytes:
    """The same speech at 24 kHz (one-shot soxr HQ), cut to whole 100 ms deltas."""
    x = np.frombuffer(pcm16k, dtype=np.int16)
    y = soxr.resample(x, 16_000, 24_000, quality="HQ")
    out = np.asarray(y, dtype=np.int16).tobytes()
    return out[: len(out) // DELTA_24K * DELTA_24K]


def chunks(pcm: bytes, size: int) -> list[bytes]:
    return [pcm[i : i + size] for i in range(0, len(pcm) - size + 1, size)]


# --- the session ----------------------------------------------------------------------------


def bridging_session(
    path: AudioPath | None = None, commands: PlaybackCommands = VONAGE_COMMANDS
) -> CallSession:
    """A call session in the BRIDGING phase, as after the Realtime socket opened.

    Default: Vonage's (L16 at 16 kHz, resampled); Twilio's passes ``PassthroughPath()`` and
    its ``TwilioCommands``, as ``twilio/routes.py`` does.
    """
    settings = Settings.from_env(BENCH_ENV)
    session = CallSession(
        CallInfo("bench"),
        openai=settings.openai,
        call=settings.call,
        path=path or ResamplingPath(16_000, settings.call.resample_quality),
        commands=commands,
    )
    session.realtime_opened()
    while session.flush_held():
        pass
    if session.phase is not Phase.BRIDGING:
        raise SystemExit("session did not reach BRIDGING")
    return session


def delta_message(audio: bytes, n: int) -> str:
    """A ``response.output_audio.delta`` as the fake Realtime server sends it."""
    return json.dumps(
        {
            "type": "response.output_audio.delta",
            "event_id": f"event_{n}",
            "response_id": "resp_1",
            "item_id": "item_1",
            "output_index": 0,
            "content_index": 0,
            "delta": base64.b64encode(audio).decode("ascii"),
        }
    )


def twilio_media_message(audio: bytes, n: int) -> str:
    """A 20 ms inbound ``media`` message as Twilio sends it
    (https://www.twilio.com/docs/voice/media-streams/websocket-messages)."""
    return json.dumps(
        {
            "event": "media",
            "sequenceNumber": str(n + 3),
            "media": {
                "track": "inbound",
                "chunk": str(n + 1),
                "timestamp": str(n * 20),
                "payload": base64.b64encode(audio).decode("ascii"),
            },
            "streamSid": STREAM_SID,
        }
    )


@dataclass(frozen=True, slots=True)
class Door:
    """One front door's hot path: its caller frames, its reply deltas, its session."""

    name: str
    frames: list[bytes]  # caller audio, one 20 ms frame each
    deltas: list[bytes]  # reply audio as Realtime sends it, 100 ms each
    new_session: Callable[[], CallSession]


@dataclass(slots=True)
class Row:
    what: str
    us: Timing
    note: str = ""


def bench_session(repeats: int, door: Door) -> list[Row]:
    rows: list[Row] = []
    frame_bytes = len(door.frames[0])

    # caller frame -> append JSON string
    session = door.new_session()
    frames = door.frames * max(1, 500 // len(door.frames) + 1)
    appends = sum(1 for frame in frames if isinstance(session.caller_frame(frame), str))
    if appends < len(frames) // 2:
        raise SystemExit(f"caller_frame produced only {appends} appends for {len(frames)} frames")

    def caller_batch() -> int:
        f = session.caller_frame
        for frame in frames:
            f(frame)
        return len(frames)

    rows.append(
        Row(
            "CallSession.caller_frame (frame -> append JSON)",
            per_op_us(caller_batch, repeats),
            f"per 20 ms frame ({frame_bytes} B)",
        )
    )

    # 100 ms delta: parse + handle, each batch on a fresh session (untimed set-up)
    messages = [delta_message(d, i) for i, d in enumerate(door.deltas)] * 3
    events = [parse_server_event(raw) for raw in messages]
    fresh: dict[str, CallSession] = {}

    def new_session() -> None:
        fresh["s"] = door.new_session()

    def delta_batch() -> int:
        parse, handle = parse_server_event, fresh["s"].realtime_event
        for raw in messages:
            handle(parse(raw))
        return len(messages)

    def parse_batch() -> int:
        parse = parse_server_event
        for raw in messages:
            parse(raw)
        return len(messages)

    def handle_batch() -> int:
        handle = fresh["s"].realtime_event
        for event in events:
            handle(event)
        return len(events)

    per_delta = per_op_us(delta_batch, repeats, new_session)
    handled: int = fresh["s"].stats.deltas
    if handled != len(messages):
        raise SystemExit(f"the session handled {handled} of {len(messages)} deltas")
    rows.append(
        Row(
            "100 ms delta: parse_server_event + realtime_event",
            per_delta,
            f"per 100 ms message ({len(messages[0])} chars)",
        )
    )
    rows.append(Row("  same, per 20 ms of reply audio", per_delta / 5, "= per delta / 5"))
    rows.append(Row("  of which parse_server_event", per_op_us(parse_batch, repeats), "per delta"))
    rows.append(
        Row(
            "  of which realtime_event (convert, push)",
            per_op_us(handle_batch, repeats, new_session),
            "per delta",
        )
    )

    # Playout.take per frame, driven as the playout pump drives it
    audio = b"".join(door.frames)
    n_frames = len(audio) // frame_bytes
    playout = Playout(frame_bytes, 100)

    def fill() -> None:
        playout.clear()
        playout.push(audio)
        playout.end_of_audio()

    def take_batch() -> int:
        now = 1000.0
        sent = 0
        take, wakeup_at = playout.take, playout.wakeup_at
        while True:
            sent += len(take(now))
            wake = wakeup_at(now)
            if wake is None:
                break
            now = wake
        if sent != n_frames:
            raise SystemExit(f"playout sent {sent} of {n_frames} frames")
        return sent

    rows.append(
        Row(
            "Playout.take + wakeup_at (lookahead 100 ms)",
            per_op_us(take_batch, repeats, fill),
            "per frame sent",
        )
    )
    return rows


def bench_twilio_wire(repeats: int, frames: list[bytes]) -> tuple[list[Row], list[Row]]:
    """Twilio's framing, which Vonage does not have: (caller side rows, reply side rows)."""
    messages = [twilio_media_message(f, i) for i, f in enumerate(frames)] * 3
    for raw, frame in zip(messages, frames, strict=False):
        if parse_message(raw) != frame:
            raise SystemExit("parse_message did not return the media payload")

    def parse_batch() -> int:
        parse = parse_message
        for raw in messages:
            parse(raw)
        return len(messages)

    caller_side = [
        Row(
            "parse_message (media JSON -> mu-law)",
            per_op_us(parse_batch, repeats),
            f"per 20 ms frame ({len(messages[0])} chars)",
        )
    ]

    batches = [
        b"".join(frames[i : i + MEDIA_BATCH]) for i in range(0, len(frames) - MEDIA_BATCH + 1, 3)
    ] * 3
    media = TwilioCommands(STREAM_SID).media

    def media_batch() -> int:
        for batch in batches:
            media(batch)
        return len(batches)

    per_batch = per_op_us(media_batch, repeats)
    size = len(media(batches[0]))
    reply_side = [
        Row(
            f"TwilioCommands.media ({MEDIA_BATCH} frames -> media JSON)",
            per_batch,
            f"per {MEDIA_BATCH * 20} ms batch ({size} chars)",
        ),
        Row("  same, per 20 ms frame", per_batch / MEDIA_BATCH, f"= per batch / {MEDIA_BATCH}"),
    ]
    return caller_side, reply_side


def print_side_by_side(columns: dict[str, list[Row]]) -> None:
    """One line per operation, one column per front door ("-": not on that door's path)."""
    order: list[str] = []
    for rows in sorted(columns.values(), key=len, reverse=True):
        order += [r.what for r in rows if r.what not in order]
    by_door = {name: {r.what: r for r in rows} for name, rows in columns.items()}
    head = "".join(f" {name + ' µs (min)':>16}" for name in columns)
    print(f"  {'operation':<48}{head}  note ({' / '.join(columns)})")
    for what in order:
        cells = [by_door[name].get(what) for name in columns]
        text = "".join(f" {c.us.text(9)}" if c else f" {'-':>16}" for c in cells)
        notes = list(dict.fromkeys(c.note for c in cells if c))
        print(f"  {what:<48}{text}  {' / '.join(notes)}")


# --- resampler cost -------------------------------------------------------------------------


@dataclass(slots=True)
class QualityRow:
    quality: str
    up_20ms_us: Timing
    down_20ms_us: Timing
    down_100ms_us: Timing  # per 20 ms, fed 100 ms at a time


def _quality_row(
    repeats: int,
    quality: str,
    up_chunks: list[bytes],
    down_chunks: list[bytes],
    delta_chunks: list[bytes],
) -> QualityRow:
    streams: dict[str, StreamResampler] = {}

    def reset() -> None:
        streams["up"] = StreamResampler(16_000, 24_000, quality)
        streams["down"] = StreamResampler(24_000, 16_000, quality)

    def up_batch() -> int:
        p = streams["up"].process
        for c in up_chunks:
            p(c)
        return len(up_chunks)

    def down_batch() -> int:
        p = streams["down"].process
        for c in down_chunks:
            p(c)
        return len(down_chunks)

    def delta_batch() -> int:
        p = streams["down"].process
        for c in delta_chunks:
            p(c)
        return len(delta_chunks) * 5

    return QualityRow(
        quality,
        per_op_us(up_batch, repeats, reset),
        per_op_us(down_batch, repeats, reset),
        per_op_us(delta_batch, repeats, reset),
    )


def bench_resampler(
    repeats: int, pcm16: bytes, pcm24: bytes, qualities: tuple[str, ...]
) -> list[QualityRow]:
    up_chunks = chunks(pcm16, FRAME_16K) * 3
    down_chunks = chunks(pcm24, FRAME_24K) * 3
    delta_chunks = chunks(pcm24, DELTA_24K) * 3
    return [_quality_row(repeats, q, up_chunks, down_chunks, delta_chunks) for q in qualities]


# --- resampler delay ------------------------------------------------------------------------


@dataclass(slots=True)
class DelayRow:
    quality: str
    direction: str
    clicks: int
    peak_offset_ms: float  # mean of (output peak position - expected position)
    peak_offset_max_ms: float  # largest |offset|
    release_mean_ms: float  # mean chunks late x 20 ms
    release_max_ms: float
    held_mean_bytes: float  # output-rate bytes held back after each chunk, mean
    held_mean_ms: float
    held_max_ms: float


def click_delay(
    quality: str,
    in_rate: int,
    out_rate: int,
    *,
    chunk_ms: int = 20,
    seconds: float = 12.0,
    spacing_ms: float = 97.3,
) -> DelayRow:
    """Feed clicks at known positions through a StreamResampler in ``chunk_ms`` chunks.

    The clicks are ``spacing_ms`` apart (a spacing that is not a multiple of 20 ms, so they
    land at every phase of a chunk) and far enough apart that their filter responses do not
    overlap. Each output peak is searched for within ±8 ms around where the click should be.
    """
    n = int(in_rate * seconds)
    chunk = in_rate * chunk_ms // 1000
    x = np.zeros(n, dtype=np.int16)
    first = in_rate // 2  # 0.5 s in: the stream is well primed
    positions = [
        int(first + i * spacing_ms * in_rate / 1000)
        for i in range(int((seconds - 1.0) * 1000 / spacing_ms))
    ]
    x[positions] = 16_000
    rs = StreamResampler(in_rate, out_rate, quality)
    outs: list[bytes] = []
    cum_out: list[int] = []  # output samples after each chunk
    total = 0
    for start in range(0, n - chunk + 1, chunk):
        out = rs.process(x[start : start + chunk].tobytes())
        outs.append(out)
        total += len(out) // 2
        cum_out.append(total)
    y = np.abs(np.frombuffer(b"".join(outs), dtype=np.int16).astype(np.int32))
    ratio = out_rate / in_rate
    search = int(0.008 * out_rate)
    offsets: list[float] = []
    late: list[float] = []
    cum = np.asarray(cum_out)
    for p in positions:
        expected = p * ratio
        lo = max(0, int(expected) - search)
        hi = int(expected) + search
        if hi >= y.size:
            break
        peak = lo + int(np.argmax(y[lo:hi]))
        offsets.append((peak - expected) / out_rate * 1000.0)
        k = p // chunk  # the chunk that carried the click
        j = int(np.searchsorted(cum, peak, side="right"))  # first chunk whose output has it
        late.append((j - k) * float(chunk_ms))
    skip = 500 // chunk_ms  # the first 0.5 s
    held = [(i + 1) * chunk * ratio - c for i, c in enumerate(cum_out)][skip:]
    return DelayRow(
        quality=quality,
        direction=f"{in_rate // 1000}k->{out_rate // 1000}k"
        + ("" if chunk_ms == 20 else f" /{chunk_ms}"),
        clicks=len(offsets),
        peak_offset_ms=statistics.fmean(offsets),
        peak_offset_max_ms=max(abs(o) for o in offsets),
        release_mean_ms=statistics.fmean(late),
        release_max_ms=max(late),
        held_mean_bytes=statistics.fmean(held) * 2,
        held_mean_ms=statistics.fmean(held) / out_rate * 1000.0,
        held_max_ms=max(held) / out_rate * 1000.0,
    )


# --- main -----------------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=11, help="timed batches per figure")
    args = parser.parse_args(argv)
    repeats: int = max(1, args.repeats)

    pcm16 = speech_16k()
    pcm24 = speech_24k(pcm16)
    mulaw = pcm16_to_mulaw(pcm16, 16_000)
    frames_mulaw = chunks(mulaw, FRAME_MULAW)
    vonage = Door("vonage", chunks(pcm16, FRAME_16K), chunks(pcm24, DELTA_24K), bridging_session)
    twilio = Door(
        "twilio",
        frames_mulaw,
        chunks(mulaw, DELTA_MULAW),  # the fake echoes audio/pcmu in 100 ms deltas
        lambda: bridging_session(PassthroughPath(), TwilioCommands(STREAM_SID)),
    )

    print(
        f"bench/frames.py: Python {platform.python_version()}, soxr {soxr.__version__}, "
        f"numpy {np.__version__}, {cpu_model()}"
    )
    print(
        f"µs per operation: median of {repeats} batches (fastest batch in brackets);"
        f" speech from {CALLER_WAV.name}"
    )
    print()

    t_start = time.perf_counter()
    default_q = Settings.from_env(BENCH_ENV).call.resample_quality
    print(
        f"Hot path per front door (Vonage: L16 16 kHz <-> PCM16 24 kHz at the default"
        f" RESAMPLE_QUALITY={default_q}; Twilio: mu-law passed through as audio/pcmu)"
    )
    twilio_in, twilio_out = bench_twilio_wire(repeats, frames_mulaw)
    print_side_by_side(
        {
            "vonage": bench_session(repeats, vonage),
            "twilio": twilio_in + bench_session(repeats, twilio) + twilio_out,
        }
    )
    print()

    print("StreamResampler.process, µs per 20 ms of audio")
    print(
        f"  {'quality':<8} {'16k->24k (640 B)':>17} {'24k->16k (960 B)':>17}"
        f" {'24k->16k 100 ms/5':>18}   (min)"
    )
    for qr in bench_resampler(repeats, pcm16, pcm24, RESAMPLE_QUALITIES):
        print(
            f"  {qr.quality:<8} {qr.up_20ms_us.text(10)} {qr.down_20ms_us.text(10)}"
            f" {qr.down_100ms_us.text(11)}"
        )
    print()

    print("StreamResampler algorithmic delay (clicks fed in 20 ms chunks; /100: 100 ms deltas)")
    print(
        f"  {'quality':<8} {'direction':<14} {'clicks':>6} {'peak offset ms':>15}"
        f" {'release mean/max ms':>20} {'held back mean B':>17} {'held mean/max ms':>17}"
    )
    for q in RESAMPLE_QUALITIES:
        for in_rate, out_rate, chunk_ms in (
            (16_000, 24_000, 20),
            (24_000, 16_000, 20),
            (24_000, 16_000, 100),
        ):
            d = click_delay(q, in_rate, out_rate, chunk_ms=chunk_ms)
            print(
                f"  {d.quality:<8} {d.direction:<14} {d.clicks:>6}"
                f" {d.peak_offset_ms:>+8.3f} (±{d.peak_offset_max_ms:.2f})"
                f" {d.release_mean_ms:>11.1f} / {d.release_max_ms:>4.0f}"
                f" {d.held_mean_bytes:>17.0f} {d.held_mean_ms:>9.1f} / {d.held_max_ms:>5.1f}"
            )
    print()
    print(
        "peak offset: output peak minus where the click belongs (≈0: soxr removes its filter"
        " delay, the output is not shifted)."
    )
    print(
        "release: how many chunks after the chunk that carried a click its peak comes out,"
        " x the chunk length;"
    )
    print(
        "held back: input fed so far (at the output rate) minus output produced, after each chunk."
    )
    print(f"(total {time.perf_counter() - t_start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

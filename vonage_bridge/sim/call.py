"""One simulated call through the real bridge: caller -> bridge -> fake Realtime -> back.

Through the Vonage front door (L16 at 16 kHz, resampled to 24 kHz PCM16) or the Twilio one
(8 kHz mu-law passed through as ``audio/pcmu``, signed webhook, fake Twilio REST).

Used by ``python -m vonage_bridge.sim`` and by the integration tests. Measures what a person
on the line would notice: frames each way, underruns, time from the end of the caller's speech
to the first reply frame, the delay the bridge adds in each direction, and how much of the
caller's first words was held waiting for the Realtime session (the answer URL opens it while
the carrier plays the greeting: ``realtime.prewarm``). With ``assistant``, the number the fake
caller dials is bound to that assistant first (created from the default when the bridge has
none of that name, e.g. from ``ASSISTANTS_FILE``), so it answers the call.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import ValidationError

from ..assistants.book import Assistants, e164
from ..core.assistant import DEFAULT_NAME, Assistant
from ..errors import BridgeError
from ..web.keys import ASSISTANTS, WARM_SESSIONS
from .audio import (
    CALLER_WAV,
    pcm16_to_mulaw,
    read_wav_pcm16,
    resample_pcm16,
    write_wav_mulaw,
    write_wav_pcm16,
)
from .harness import RunningBridge, sim_env
from .realtime import FakeRealtimeOptions, FakeRealtimeServer
from .twilio import FakeTwilioCaller
from .twilio_api import FakeTwilioApi, new_account_sid
from .vonage import FakeVonageCaller

TRAILING_SILENCE_MS = 6_000
"""The caller's line keeps sending (silent) audio while the reply plays."""
TWILIO_SIM_AUTH_TOKEN = "simulation-twilio-auth-token-not-a-secret"
FRONT_DOORS = ("vonage", "twilio")


@dataclass(frozen=True, slots=True)
class _Rates:
    """Bytes per ms on the caller's side and on the Realtime side, and the caller's frame."""

    caller: float
    realtime: float
    frame: int


_RATES = {"vonage": _Rates(32.0, 48.0, 640), "twilio": _Rates(8.0, 8.0, 160)}


@dataclass(slots=True)
class SimReport:
    """What one simulated call measured (times in ms)."""

    speech_ms: float
    front_door: str
    frames_sent: int
    frames_received: int
    bad_frames: int
    caller_underruns: int
    greeting_ms: float = 0.0
    bridge_summary: dict[str, Any] = field(default_factory=dict)
    reply_expected_ms: float = 0.0
    reply_heard_ms: float = 0.0
    end_of_speech_to_first_frame_ms: float | None = None
    inbound_added_ms_median: float | None = None
    inbound_added_ms_p95: float | None = None
    outbound_first_frame_ms: float | None = None
    heard_pcm: bytes = b""

    def lines(self) -> list[str]:
        s = self.bridge_summary

        def ms(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.1f} ms"

        return [
            f"front door                         {self.front_door}",
            f"caller speech                      {self.speech_ms:.0f} ms",
            f"frames caller -> bridge            {self.frames_sent}",
            f"frames bridge -> caller            {self.frames_received} (bad: {self.bad_frames})",
            f"reply heard / sent by Realtime     {self.reply_heard_ms:.0f} / "
            f"{self.reply_expected_ms:.0f} ms",
            f"underruns (caller / bridge)        {self.caller_underruns} / "
            f"{s.get('underruns', '?')}",
            f"end of speech -> first reply frame {ms(self.end_of_speech_to_first_frame_ms)}"
            " (includes the fake's 500 ms end-of-turn silence)",
            f"bridge added delay, caller->OpenAI {ms(self.inbound_added_ms_median)} median, "
            f"{ms(self.inbound_added_ms_p95)} p95",
            f"bridge added delay, OpenAI->caller {ms(self.outbound_first_frame_ms)}"
            " (first reply delta to first frame at the caller)",
            f"greeting (media socket opens after) {self.greeting_ms:.0f} ms",
            f"first reply: caller audio held waiting for Realtime: {self.held_ms:.0f} ms",
            f"assistant                          {s.get('assistant', '?')} "
            f"(version {s.get('assistant_version', '?')})",
            f"bridge summary                     end_reason={s.get('end_reason', '?')!r}",
        ]

    @property
    def held_ms(self) -> float:
        """Caller audio (ms) the bridge held while its Realtime session was not ready (the
        summary line's ``held_ms``)."""
        return float(self.bridge_summary.get("held_ms", 0.0))


class _SummaryCatcher(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.summaries: list[dict[str, Any]] = []
        self.logged = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        summary = getattr(record, "summary", None)
        if isinstance(summary, dict):
            self.summaries.append(summary)
            self.logged.set()


async def _bind(book: Assistants, name: str, to_number: str) -> None:
    """Bind ``to_number`` to the assistant ``name`` (made from the default if missing).

    Raises:
        ValueError: see :func:`simulate_call`.
    """
    number = e164(to_number)
    if book.store is None or number is None:
        raise ValueError("assistants need the call-record database")
    try:
        found = await book.store.get(name)
        base = found or book.default.model_copy(update={"name": name, "numbers": ()})
        numbers = base.numbers if number in base.numbers else (*base.numbers, number)
        await book.store.put(Assistant.model_validate({**base.public_json(), "numbers": numbers}))
    except BridgeError as exc:
        raise ValueError(f"assistant {name!r}: {exc.message}") from None
    except ValidationError as exc:
        raise ValueError(f"assistant {name!r}: {exc.errors()[0]['msg']}") from None


def _inbound_delay_ms(
    send_log: list[tuple[float, int]],
    append_log: list[tuple[float, int]],
    skip_ms: float,
    rates: _Rates = _RATES["vonage"],
) -> list[float]:
    """For each append, when it arrived minus when the caller sent that much audio."""
    send_t = [t for t, _ in send_log]
    send_ms = [b / rates.caller for _, b in send_log]
    out: list[float] = []
    for t_recv, cum in append_log:
        ms = cum / rates.realtime
        if ms < skip_ms:
            continue
        i = bisect.bisect_left(send_ms, ms)
        if i < len(send_t):
            out.append((t_recv - send_t[i]) * 1000.0)
    return out


async def simulate_call(
    wav: Path = CALLER_WAV,
    *,
    out_wav: Path | None = None,
    env_overrides: dict[str, str] | None = None,
    realtime_options: FakeRealtimeOptions | None = None,
    timeout_s: float = 30.0,
    front_door: str = "vonage",
    greeting_ms: float = 0.0,
    prewarm: bool = True,
    assistant: str | None = None,
    vonage_rate_hz: int = 16_000,
) -> SimReport:
    """Run one call end to end on loopback and measure it.

    Args:
        wav: the caller's speech: mono 16-bit PCM at 16 kHz (converted to 8 kHz mu-law for
            a Twilio call).
        out_wav: where to write what the caller heard (``vonage_rate_hz`` for Vonage, 8 kHz
            for Twilio), if given.
        env_overrides: extra bridge settings.
        realtime_options: knobs of the fake Realtime server.
        timeout_s: the whole call must finish within this.
        front_door: ``"vonage"`` or ``"twilio"``.
        greeting_ms: time between the answer URL and the media socket: the carrier playing
            the NCCO ``talk`` / TwiML ``<Say>`` greeting (real time passes).
        prewarm: False: the answer URL opens no Realtime session, the media socket opens
            it (as before pre-warm), to compare.
        assistant: the assistant that answers (bound to the number the caller dials); None:
            whichever the bridge picks (the default).
        vonage_rate_hz: the L16 rate the bridge asks Vonage for (``VONAGE_AUDIO_RATE``:
            16000 or 24000; the caller's speech is resampled to it, and ``out_wav`` written
            at it).
    Raises:
        ValueError: if ``wav`` is not 16 kHz mono PCM16, ``front_door`` is unknown, or the
            assistant cannot be bound (no database, its name is invalid, the number is
            another assistant's).
        TimeoutError: if the reply does not come back in time.
    """
    if front_door not in FRONT_DOORS:
        raise ValueError(f"front_door must be one of {FRONT_DOORS}, not {front_door!r}")
    rates = _RATES[front_door]
    pcm, rate = read_wav_pcm16(wav)
    if rate != 16_000:
        raise ValueError(f"{wav} is {rate} Hz; the simulation needs 16000 Hz")
    if front_door == "vonage":
        audio = resample_pcm16(pcm, rate, vonage_rate_hz)
        rates = _Rates(vonage_rate_hz / 500, rates.realtime, vonage_rate_hz // 25)
        env_overrides = {"VONAGE_AUDIO_RATE": str(vonage_rate_hz), **(env_overrides or {})}
    else:
        audio = pcm16_to_mulaw(pcm, rate)
    catcher = _SummaryCatcher()
    bridge_log = logging.getLogger("vonage_bridge.records")
    old_level = bridge_log.level
    bridge_log.setLevel(logging.INFO)  # the summary line is INFO, whatever the root level
    bridge_log.addHandler(catcher)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout_s):
            account_sid = new_account_sid()
            async with (
                FakeRealtimeServer(options=realtime_options) as fake,
                FakeTwilioApi(account_sid, TWILIO_SIM_AUTH_TOKEN) as twilio_api,
                RunningBridge(
                    sim_env(
                        fake.base_url,
                        TWILIO_ACCOUNT_SID=account_sid,
                        TWILIO_AUTH_TOKEN=TWILIO_SIM_AUTH_TOKEN,
                        TWILIO_API_URL=twilio_api.base_url,
                        **(env_overrides or {}),
                    )
                ) as bridge,
                aiohttp.ClientSession() as http,
            ):
                bridge.app[WARM_SESSIONS].enabled = prewarm
                caller: FakeVonageCaller | FakeTwilioCaller
                if front_door == "vonage":
                    caller = FakeVonageCaller(http, f"{bridge.url}/incoming-call")
                else:
                    caller = FakeTwilioCaller(
                        http,
                        f"{bridge.url}/twilio/incoming-call",
                        auth_token=TWILIO_SIM_AUTH_TOKEN,
                        account_sid=account_sid,
                    )
                    twilio_api.add_call(caller.call_sid)
                if assistant is not None and assistant != DEFAULT_NAME:
                    await _bind(bridge.app[ASSISTANTS], assistant, caller.to_number)
                await caller.answer()
                if greeting_ms > 0:  # the carrier says the greeting, then opens the socket
                    await asyncio.sleep(greeting_ms / 1000.0)
                await caller.connect()
                # The caller speaks as soon as the line opens, whether Realtime is ready or not.
                session = asyncio.create_task(fake.wait_for_session(timeout=timeout_s))
                try:
                    await caller.stream_audio(audio)
                except BaseException:
                    session.cancel()
                    raise
                rt = await session
                speech_end = loop.time()
                silence = asyncio.create_task(caller.stream_silence(TRAILING_SILENCE_MS))
                try:
                    done = await rt.wait_responses_done(1, timeout=timeout_s)
                    reply_bytes_rt = done[0].total_bytes
                    expected = int(reply_bytes_rt * rates.caller / rates.realtime)
                    await caller.wait_heard(expected - rates.frame, timeout=timeout_s)
                finally:
                    silence.cancel()
                    await asyncio.gather(silence, return_exceptions=True)
                await caller.hang_up()
                await rt.closed.wait()
                await catcher.logged.wait()  # logged when the call's task finishes
    finally:
        bridge_log.removeHandler(catcher)
        bridge_log.setLevel(old_level)

    delays = _inbound_delay_ms(caller.send_log, rt.append_log, skip_ms=1000.0, rates=rates)
    delays.sort()
    heard = bytes(caller.heard)
    if isinstance(caller, FakeVonageCaller):
        first_frame_at = caller.first_frame_at
        bad = len(caller.bad_frames)
        if out_wav is not None:
            write_wav_pcm16(out_wav, heard, vonage_rate_hz)
    else:
        first_frame_at = caller.first_media_at
        bad = len(caller.bad_messages)
        if out_wav is not None:
            write_wav_mulaw(out_wav, heard)
    return SimReport(
        speech_ms=len(audio) / rates.caller,
        front_door=front_door,
        frames_sent=len(caller.send_log),
        frames_received=caller.bytes_received // rates.frame,
        bad_frames=bad,
        caller_underruns=caller.underruns,
        greeting_ms=greeting_ms,
        bridge_summary=catcher.summaries[-1],
        reply_expected_ms=reply_bytes_rt / rates.realtime,
        reply_heard_ms=len(heard) / rates.caller,
        end_of_speech_to_first_frame_ms=(
            (first_frame_at - speech_end) * 1000.0 if first_frame_at else None
        ),
        inbound_added_ms_median=statistics.median(delays) if delays else None,
        inbound_added_ms_p95=delays[int(len(delays) * 0.95)] if delays else None,
        outbound_first_frame_ms=(
            (first_frame_at - rt.reply_log[0][0]) * 1000.0
            if first_frame_at and rt.reply_log
            else None
        ),
        heard_pcm=heard,
    )

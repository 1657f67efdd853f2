"""``vonage-bridge-sim serve`` and ``vonage-bridge-sim call``: the fakes, run by hand.

``serve`` starts, on 127.0.0.1 (ports fixed by default, 0 for any free one):

- the fake OpenAI Realtime server (``realtime.py``), which accepts only the key ``sk-sim``
  and answers ``GET /v1/models/{model}`` too (``vonage-bridge doctor``);
- the fake Vonage API on ONE base URL, as ``VONAGE_API_URL`` is one variable: the Voice API
  (``vonage_api.py``: ``POST /v1/calls``, ``PUT /v1/calls/{uuid}``, application JWT checked
  against a key written to a temporary file) and the Application API v2
  (``vonage_app_api.py``: ``GET|PUT /v2/applications/{id}``, Basic auth);
- the fake Twilio REST API (``twilio_api.py``: Call updates, IncomingPhoneNumbers with one
  number), any call SID accepted;

then prints the variables that point the bridge at them (``KEY=value`` lines; ``--env-file``
writes them to a file too, e.g. ``.env``) and the commands to try next, and serves until
SIGINT/SIGTERM.

``call --url http://127.0.0.1:3000`` places one simulated Vonage call against a RUNNING
bridge (started with ``ALLOW_UNSIGNED_WEBHOOKS=true``: the fake caller does not sign): answer
URL, media socket, the speech recording in real time, then it waits for the reply (the fake
Realtime plays the caller's words back) and hangs up. Exit 0 when a reply was heard in
whole 20 ms frames.
Sources: https://developer.vonage.com/en/voice/voice-api/webhook-reference,
https://developer.vonage.com/en/voice/voice-api/concepts/websockets
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import tempfile
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives import serialization

from .audio import CALLER_WAV, read_wav_pcm16, write_wav_pcm16
from .realtime import FakeRealtimeServer
from .twilio_api import FakeTwilioApi, FakeTwilioApiOptions, new_account_sid
from .vonage import FakeVonageCaller
from .vonage_api import FakeVoiceApi, application_test_key
from .vonage_app_api import FakeVonageApplicationApi

SIM_OPENAI_KEY = "sk-sim"
"""The only key the fake Realtime server accepts."""
SIM_TWILIO_AUTH_TOKEN = "simulation-twilio-auth-token-not-a-secret"
SIM_TWILIO_NUMBER = "+15005550006"
SIM_CONNECT_API_KEY = "sim-connect-api-key-not-a-secret"
SIM_VONAGE_NUMBER = "447700900001"
DEFAULT_PORTS = {"realtime": 8765, "vonage": 8766, "twilio": 8767, "bridge": 3000}
READY_LINE = "# fakes ready; Ctrl-C stops them"
FRAME_BYTES = 640
"""A 20 ms L16 frame at 16 kHz."""
REPLY_WAIT_MS = 1000
"""``call`` hangs up once this much reply has been heard."""


def sim_variables(
    realtime: FakeRealtimeServer,
    vonage: FakeVoiceApi,
    app_api: FakeVonageApplicationApi,
    twilio: FakeTwilioApi,
    *,
    key_path: Path,
    bridge_port: int,
) -> dict[str, str]:
    """The bridge's (and ``change_url.py``'s, ``doctor``'s) variables for the fakes."""
    return {
        "SERVER_URL": f"http://127.0.0.1:{bridge_port}",
        "HOST": "127.0.0.1",
        "PORT": str(bridge_port),
        "OPENAI_API_KEY": SIM_OPENAI_KEY,
        "OPENAI_BASE_URL": realtime.base_url,
        "ALLOW_UNSIGNED_WEBHOOKS": "true",
        "VONAGE_API_URL": vonage.base_url,
        "VONAGE_APPLICATION_ID": app_api.application_id,
        "VONAGE_PRIVATE_KEY_PATH": str(key_path),
        "VONAGE_API_KEY": app_api.api_key,
        "VONAGE_API_SECRET": app_api.api_secret,
        "VONAGE_OUTBOUND_FROM": SIM_VONAGE_NUMBER,
        "CONNECT_API_KEY": SIM_CONNECT_API_KEY,
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": SIM_TWILIO_AUTH_TOKEN,
        "TWILIO_API_URL": twilio.base_url,
        "TWILIO_PHONE_NUMBER": SIM_TWILIO_NUMBER,
    }


async def serve(
    ports: dict[str, int], *, env_file: Path | None = None, stop: asyncio.Event | None = None
) -> None:
    """Start the fakes, print the variables (and write ``env_file``), serve until ``stop``
    is set or SIGINT/SIGTERM.

    Raises:
        OSError: a port cannot be bound (in use: choose another, or 0).
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    key = application_test_key()
    with tempfile.TemporaryDirectory(prefix="vonage-bridge-sim-") as tmp:
        key_path = Path(tmp) / "vonage-application.key"
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        app_api = FakeVonageApplicationApi()
        voice = FakeVoiceApi(public_key=key.public_key(), application_id=app_api.application_id)
        # One base URL for both Vonage APIs: the Application API's handler on the Voice fake.
        voice.app.router.add_route("*", "/v2/applications/{tail:.*}", app_api._handle)
        twilio = FakeTwilioApi(
            account_sid=new_account_sid(),
            auth_token=SIM_TWILIO_AUTH_TOKEN,
            options=FakeTwilioApiOptions(accept_any_call=True),
        )
        twilio.add_number(SIM_TWILIO_NUMBER)
        realtime = FakeRealtimeServer(api_key=SIM_OPENAI_KEY)
        try:
            await realtime.start(port=ports["realtime"])
            await voice.start(port=ports["vonage"])
            await twilio.start(port=ports["twilio"])
            env = sim_variables(
                realtime, voice, app_api, twilio, key_path=key_path, bridge_port=ports["bridge"]
            )
            text = "".join(f"{k}={v}\n" for k, v in env.items())
            if env_file is not None:
                env_file.write_text(text, encoding="utf-8")
            _print_banner(realtime, voice, twilio, env_file, env["SERVER_URL"], text)
            await stop.wait()
        finally:
            for fake in (realtime, voice, twilio):
                await fake.close()


def _print_banner(
    realtime: FakeRealtimeServer,
    voice: FakeVoiceApi,
    twilio: FakeTwilioApi,
    env_file: Path | None,
    server_url: str,
    text: str,
) -> None:
    env_arg = f" --env-file {env_file}" if env_file is not None else ""
    print(
        f"# fake OpenAI Realtime         {realtime.base_url}  (key {SIM_OPENAI_KEY})\n"
        f"# fake Vonage Voice + Application API  {voice.base_url}\n"
        f"# fake Twilio REST             {twilio.base_url}  (number {SIM_TWILIO_NUMBER})\n"
        f"# Point the bridge at them with these variables"
        f"{f' (written to {env_file})' if env_file else ' (put them in .env)'}:\n"
        f"{text}"
        "# Then, in other terminals:\n"
        f"#   python change_url.py local --force      # the fake application -> {server_url}\n"
        f"#   vonage-bridge{env_arg}\n"
        f"#   vonage-bridge doctor --allow-local{env_arg}\n"
        f"#   vonage-bridge-sim call --url {server_url}\n"
        f"#   curl -H 'X-API-Key: {SIM_CONNECT_API_KEY}' {server_url}/calls\n"
        f"{READY_LINE}",
        flush=True,
    )


async def place_call(url: str, *, wav: Path, out: Path | None, timeout_s: float) -> list[str]:
    """One simulated Vonage call against the bridge at ``url``; the report lines.

    Raises:
        TimeoutError: no reply within ``timeout_s``.
        aiohttp.ClientError: the bridge cannot be reached or refused the call.
        ValueError: ``wav`` is not 16 kHz mono PCM16.
    """
    pcm, rate = read_wav_pcm16(wav)
    if rate != 16_000:
        raise ValueError(f"{wav} is {rate} Hz; the call needs 16000 Hz")
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as http, asyncio.timeout(timeout_s):
        async with FakeVonageCaller(http, url.rstrip("/") + "/incoming-call") as caller:
            ncco = await caller.answer()
            await caller.connect()
            await caller.stream_audio(pcm)
            speech_end = loop.time()
            silence = asyncio.create_task(caller.stream_silence(int(timeout_s * 1000)))
            try:
                await caller.wait_heard(REPLY_WAIT_MS * 32, timeout=timeout_s)
            finally:
                silence.cancel()
                await asyncio.gather(silence, return_exceptions=True)
            await caller.hang_up()
    first = caller.first_frame_at
    if out is not None:
        write_wav_pcm16(out, bytes(caller.heard), 16_000)
    return [
        f"call {caller.call_uuid}: answer URL gave {len(ncco)} NCCO action(s)",
        f"spoke {len(pcm) // 32} ms; frames sent {len(caller.send_log)}, "
        f"received {caller.bytes_received // FRAME_BYTES}, bad {len(caller.bad_frames)}",
        f"first reply frame {((first - speech_end) * 1000.0) if first else float('nan'):.0f} ms "
        f"after the end of speech; heard {len(caller.heard) // 32} ms",
        "result: " + ("reply heard" if not caller.bad_frames else "BAD FRAMES"),
    ]


def serve_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="vonage-bridge-sim serve",
        description="Run the fake OpenAI Realtime, Vonage and Twilio APIs on 127.0.0.1.",
    )
    for name, port in DEFAULT_PORTS.items():
        what = "the bridge's PORT the variables name" if name == "bridge" else f"fake {name}"
        parser.add_argument(f"--{name}-port", type=int, default=port, help=f"{what} ({port})")
    parser.add_argument("--env-file", type=Path, help="also write the variables to this file")
    args = parser.parse_args(argv)
    ports = {name: getattr(args, f"{name}_port") for name in DEFAULT_PORTS}
    try:
        asyncio.run(serve(ports, env_file=args.env_file))
    except OSError as exc:
        print(f"vonage-bridge-sim serve: {exc} (choose other ports, or 0)", file=sys.stderr)
        return 1
    return 0


def call_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="vonage-bridge-sim call",
        description="Place one simulated Vonage call against a running bridge.",
    )
    parser.add_argument("--url", required=True, help="the bridge, e.g. http://127.0.0.1:3000")
    parser.add_argument("--wav", type=Path, default=CALLER_WAV, help="caller speech, 16 kHz")
    parser.add_argument("--out", type=Path, help="write what the caller heard to this WAV")
    parser.add_argument("--timeout", type=float, default=30.0, help="whole call, s (30)")
    args = parser.parse_args(argv)
    try:
        lines = asyncio.run(
            place_call(args.url, wav=args.wav, out=args.out, timeout_s=args.timeout)
        )
    except (TimeoutError, aiohttp.ClientError, ValueError, OSError) as exc:
        print(f"vonage-bridge-sim call: failed: {exc!r}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0 if lines[-1] == "result: reply heard" else 1

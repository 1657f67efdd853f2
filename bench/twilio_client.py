"""Twilio REST: the ``twilio`` SDK's async client against our aiohttp request, on loopback.

Run: ``.venv/bin/python bench/twilio_client.py [--requests 500] [--rounds 3]``. Figures are
printed, never asserted; the decision they support is written in ``vonage_bridge/rest.py``.

- import time: what ``twilio.rest`` + ``AsyncTwilioHttpClient`` (and the lazily loaded Call
  resource) add to a process that already imports aiohttp and the twilio validator/TwiML
  modules (as the bridge does); median of 9 fresh interpreters;
- per request: CPU (``time.process_time``) and wall time of one ``Calls(sid).update`` with a
  ``Twiml`` form field, through :class:`vonage_bridge.twilio.rest.TwilioApi` and through
  ``client.api.v2010.accounts(sid).calls(sid).update_async`` with ``client.api.base_url``
  pointed at the same loopback fake (``sim/twilio_api.py``). Client and fake share one
  process, so the fake's cost is in both figures; the difference is the client's.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp

PRELUDE = "import aiohttp, twilio.request_validator, twilio.twiml.voice_response, time\n"
SDK_IMPORT = (
    "import twilio.rest, twilio.http.async_http_client\n"
    "twilio.rest.Client('AC' + '0' * 32, 'x').api.v2010.accounts('AC' + '0' * 32).calls\n"
)


def import_ms(statement: str, runs: int = 9) -> float:
    """Median wall time of ``statement`` in a fresh interpreter, after :data:`PRELUDE`."""
    code = f"{PRELUDE}t = time.perf_counter()\n{statement}\nprint(time.perf_counter() - t)\n"
    times = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(runs)
    ]
    return statistics.median(times) * 1e3


async def per_request(requests: int, rounds: int) -> None:
    from twilio.http.async_http_client import AsyncTwilioHttpClient
    from twilio.rest import Client

    from vonage_bridge.config import TwilioSettings
    from vonage_bridge.sim.twilio_api import FakeTwilioApi, new_account_sid
    from vonage_bridge.twilio.rest import TwilioApi

    account, token, twiml = new_account_sid(), "t" * 32, "<Response/>"
    async with (
        FakeTwilioApi(account_sid=account, auth_token=token) as fake,
        aiohttp.ClientSession() as http,
    ):
        sid = fake.add_call()
        ours = TwilioApi(
            http, TwilioSettings(account_sid=account, auth_token=token, api_url=fake.base_url)
        )
        sdk_http = AsyncTwilioHttpClient()
        client = Client(account, token, http_client=sdk_http)
        client.api.base_url = fake.base_url  # a public attribute: the fake, over plain http

        async def sdk_update() -> object:
            return await client.api.v2010.accounts(account).calls(sid).update_async(twiml=twiml)

        clients: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("aiohttp (rest.request_json)", lambda: ours.update_twiml(sid, twiml)),
            ("twilio SDK update_async", sdk_update),
        ]
        try:
            for _ in range(rounds):
                for name, update in clients:
                    for _ in range(20):  # warm-up
                        await update()
                    cpu0, wall0 = time.process_time(), time.perf_counter()
                    for _ in range(requests):
                        await update()
                    cpu = (time.process_time() - cpu0) / requests * 1e3
                    wall = (time.perf_counter() - wall0) / requests * 1e3
                    print(f"  {name:28s} {cpu:5.2f} ms CPU, {wall:5.2f} ms wall per request")
        finally:
            if sdk_http.session is not None:
                await sdk_http.session.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"import: twilio.rest + async client + Call resource: +{import_ms(SDK_IMPORT):.0f} ms")
    print(f"import: twilio.rest alone: +{import_ms('import twilio.rest'):.0f} ms")
    print(f"per request ({args.requests} requests per round, {args.rounds} rounds):")
    asyncio.run(per_request(args.requests, args.rounds))


if __name__ == "__main__":
    main()

"""What the set-up tools ask the fakes: the fake Realtime's ``GET /v1/models/{model}`` and
the fake Twilio REST's IncomingPhoneNumbers list and update."""

from __future__ import annotations

import aiohttp

from vonage_bridge.sim.realtime import FakeRealtimeServer
from vonage_bridge.sim.twilio_api import FakeTwilioApi, new_account_sid


async def test_fake_realtime_answers_the_model_lookup_like_the_api() -> None:
    async with FakeRealtimeServer(api_key="sk-sim") as fake, aiohttp.ClientSession() as http:
        good = {"Authorization": "Bearer sk-sim"}
        async with http.get(f"{fake.base_url}/models/gpt-realtime", headers=good) as resp:
            assert resp.status == 200
            assert (await resp.json())["id"] == "gpt-realtime"
        async with http.get(f"{fake.base_url}/models/gpt-4o", headers=good) as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["code"] == "model_not_found"
        bad = {"Authorization": "Bearer sk-other"}
        async with http.get(f"{fake.base_url}/models/gpt-realtime", headers=bad) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "invalid_api_key"


async def test_fake_twilio_lists_and_updates_numbers() -> None:
    sid = new_account_sid()
    async with FakeTwilioApi(account_sid=sid, auth_token="token") as fake:
        pn = fake.add_number("+14155550123", "https://old.example.app/voice")
        fake.add_number("+14155550999")
        base = f"{fake.base_url}/2010-04-01/Accounts/{sid}/IncomingPhoneNumbers"
        auth = {"Authorization": aiohttp.encode_basic_auth(sid, "token")}
        async with aiohttp.ClientSession() as http:
            query = {"PhoneNumber": "+14155550123"}
            async with http.get(f"{base}.json", params=query, headers=auth) as resp:
                assert resp.status == 200
                found = (await resp.json())["incoming_phone_numbers"]
            assert [n["sid"] for n in found] == [pn]
            form = {"VoiceUrl": "https://new.example.app/twilio/incoming-call"}
            async with http.post(f"{base}/{pn}.json", data=form, headers=auth) as resp:
                assert resp.status == 200
                assert (await resp.json())["voice_url"] == form["VoiceUrl"]
            async with http.post(f"{base}/PN{'0' * 32}.json", data=form, headers=auth) as resp:
                assert resp.status == 404
            wrong = {"Authorization": aiohttp.encode_basic_auth(sid, "wrong")}
            async with http.get(f"{base}.json", headers=wrong) as resp:
                assert resp.status == 401
        assert fake.numbers[pn]["voice_url"] == form["VoiceUrl"]

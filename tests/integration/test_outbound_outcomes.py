"""Outbound calls beyond dialling, on loopback: the per-call context reaching the Realtime
session, the signed ``status_url`` callbacks for every outcome, records of calls never
answered, voicemail detection, and ``"via": "twilio"``, against the fake Vonage Voice API and
the fake Twilio REST API posting their status webhooks as the carriers do.

Sources: https://developer.vonage.com/en/voice/voice-api/webhook-reference#event-webhook,
https://developer.vonage.com/en/api/voice#createCall,
https://www.twilio.com/docs/voice/api/call-resource#statuscallback,
https://www.twilio.com/docs/voice/answering-machine-detection,
https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import WSCloseCode, web
from standardwebhooks import Webhook
from support import SECOND, Call, StartCall
from test_outbound import API_KEY, no_live_calls, post_connect, vonage_env
from test_vonage_call import speech

from vonage_bridge.callbacks import message_id
from vonage_bridge.logs import CallContextFilter
from vonage_bridge.outbound import OUTBOUND, VOICEMAIL_REASON
from vonage_bridge.sim.server import LoopbackServer
from vonage_bridge.sim.twilio import FakeTwilioCaller
from vonage_bridge.sim.twilio_api import FakeTwilioApi, FakeTwilioApiOptions
from vonage_bridge.sim.vonage_api import FakeVoiceApi, application_test_key
from vonage_bridge.store import CallRecord
from vonage_bridge.web.keys import STORE

SECRET = "whsec_" + base64.b64encode(b"callback-secret-for-tests-32byte").decode()
APP_ID = "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"
TO = "+818012345678"
TW_TOKEN = "twilio-auth-token-for-tests-0123456789"
TW_ACCOUNT = "AC" + "b" * 32
TW_FROM = "+14155550100"


@dataclass
class CallbackReceiver(LoopbackServer):
    """The deployer's ``status_url``: records each POST (headers, raw body); answers with the
    next of ``answers`` (then 200); ``hold`` keeps every request waiting until it is set."""

    answers: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    hold: asyncio.Event | None = None

    def __post_init__(self) -> None:
        self._init_server()
        self.app.router.add_post("/outcomes", self._post)

    @property
    def url(self) -> str:
        return f"{self.origin}/outcomes"

    async def _post(self, request: web.Request) -> web.Response:
        raw = await request.read()
        await self._record(lambda: self.received.append((dict(request.headers), raw)))
        if self.hold is not None:
            await self.hold.wait()
        return web.Response(status=self.answers.pop(0) if self.answers else 200)

    async def wait_count(self, n: int) -> None:
        await self._wait_recorded(lambda: True if len(self.received) >= n else None, 5 * SECOND)

    def verified(self) -> list[dict[str, Any]]:
        """Every body, checked with ``standardwebhooks`` as a deployer would."""
        webhook = Webhook(SECRET)
        return [webhook.verify(raw, headers) for headers, raw in self.received]

    async def statuses(self, n: int) -> list[dict[str, Any]]:
        await self.wait_count(n)
        return self.verified()


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    async with CallbackReceiver() as server:
        yield server


@pytest.fixture
async def voice_api() -> AsyncIterator[FakeVoiceApi]:
    api = FakeVoiceApi(application_test_key().public_key(), APP_ID)
    await api.start()
    yield api
    await api.close()


async def start_vonage(start_call: StartCall, api: FakeVoiceApi, **env: str) -> Call:
    call = await start_call(**vonage_env(api, CALLBACK_SECRET=SECRET, **env))
    sender = call.bridge.app[OUTBOUND].sender
    assert sender is not None
    sender.backoff_s = 0.01  # retries without waiting long (nothing asserts timing)
    return call


async def record_of(call: Call, call_id: str) -> CallRecord:
    store = call.bridge.app[STORE]
    await call.bridge.app[OUTBOUND].drain()
    record = await store.get(call_id)
    assert record is not None
    return record


async def get_json(call: Call, path: str) -> Any:
    async with call.http.get(f"{call.bridge.url}{path}", headers={"X-API-Key": API_KEY}) as r:
        assert r.status == 200
        return await r.json()


async def put_assistant(call: Call, name: str, body: dict[str, Any]) -> None:
    url = f"{call.bridge.url}/assistants/{name}"
    async with call.http.put(url, headers={"X-API-Key": API_KEY}, json=body) as r:
        assert r.status in (200, 201), await r.text()


# --- per-call context --------------------------------------------------------------------------


async def test_instructions_and_variables_reach_the_session_and_metadata_the_record(
    start_call: StartCall, voice_api: FakeVoiceApi, receiver: CallbackReceiver
) -> None:
    call = await start_vonage(start_call, voice_api)
    await put_assistant(call, "sales", {"instructions": "You sell boats to {name}."})
    status, body = await post_connect(
        call,
        {
            "to": "+81 80-1234-5678",
            "assistant": "sales",
            "instructions": "Remind {name} of the visit on {date}. Keep {unknown}.",
            "variables": {"name": "Ann", "date": "Monday"},
            "metadata": {"crm_id": 42, "tags": ["vip"]},
            "status_url": receiver.url,
        },
    )
    assert status == 201, body
    uuid = body["uuid"]
    sent = voice_api.created_call(uuid)["body"]
    assert sent["to"] == [{"type": "phone", "number": "818012345678"}]
    assert "advanced_machine_detection" not in sent
    assert call.bridge.app[OUTBOUND].get(uuid).context.assistant == "sales"  # type: ignore[union-attr]

    for event in ("started", "ringing", "answered"):
        assert await voice_api.post_event(uuid, event) == 204
    caller = call.caller("/answer", call_uuid=uuid, from_number="815031023332")
    await caller.answer()
    await caller.connect()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    update = await rt.wait_for_event("session.update")
    instructions = update["session"]["instructions"]
    assert instructions.startswith("You sell boats to Ann.")  # the named assistant's
    assert "Remind Ann of the visit on Monday. Keep {unknown}." in instructions
    await caller.hang_up()
    await no_live_calls(call)
    assert await voice_api.post_event(uuid, "completed", duration_s=7) == 204

    outcomes = await receiver.statuses(3)
    assert [o["status"] for o in outcomes] == ["ringing", "answered", "completed"]
    assert all(o["call_uuid"] == uuid for o in outcomes)
    assert all(o["metadata"] == {"crm_id": 42, "tags": ["vip"]} for o in outcomes)
    assert all(o["at"].endswith("+00:00") for o in outcomes)
    done = outcomes[-1]
    assert done["end_reason"] and isinstance(done["duration_s"], float)
    assert done["record_url"] == f"{call.bridge.url}/calls/{uuid}"

    record = await record_of(call, uuid)
    assert record.metadata == {"crm_id": 42, "tags": ["vip"]}
    assert record.direction == "outbound" and record.amd is None
    assert (record.end_reason, record.duration_s) == (done["end_reason"], done["duration_s"])
    listed = await get_json(call, "/calls")
    assert listed["calls"][0]["metadata"] == {"crm_id": 42, "tags": ["vip"]}
    assert (await get_json(call, f"/calls/{uuid}"))["metadata"]["crm_id"] == 42
    assert call.bridge.app[OUTBOUND].get(uuid) is None  # forgotten after its last outcome


async def test_an_unknown_assistant_is_400_and_nothing_is_dialled(
    start_call: StartCall, voice_api: FakeVoiceApi
) -> None:
    call = await start_vonage(start_call, voice_api)
    status, body = await post_connect(call, {"to": TO, "assistant": "nobody"})
    assert status == 400, body
    assert body["error"]["code"] == "assistant_not_found"
    assert "assistant" in body["error"]["message"]
    assert voice_api.created == []


async def test_inbound_calls_keep_the_plain_persona(
    start_call: StartCall, voice_api: FakeVoiceApi
) -> None:
    call = await start_vonage(start_call, voice_api)
    status, body = await post_connect(
        call, {"to": TO, "instructions": "Only for the outbound call {x}.", "variables": {"x": "1"}}
    )
    assert status == 201
    caller = call.caller()  # another call, inbound
    await caller.answer()
    await caller.connect()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    update = await rt.wait_for_event("session.update")
    assert "Only for the outbound call" not in update["session"]["instructions"]
    await caller.hang_up()
    await no_live_calls(call)
    record = await record_of(call, caller.call_uuid)
    assert record.metadata is None and record.direction == "inbound"


# --- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "detail"),
    [
        ("busy", None),
        ("rejected", "declined"),
        ("unanswered", "unavailable"),
        ("timeout", None),
        ("failed", "cannot_route"),
        ("cancelled", None),
    ],
)
async def test_a_call_never_answered_gets_its_outcome_and_a_record(
    start_call: StartCall,
    voice_api: FakeVoiceApi,
    receiver: CallbackReceiver,
    event: str,
    detail: str | None,
) -> None:
    call = await start_vonage(start_call, voice_api)
    status, body = await post_connect(
        call, {"to": TO, "status_url": receiver.url, "metadata": {"n": 1}}
    )
    assert status == 201
    uuid = body["uuid"]
    await voice_api.post_event(uuid, "started")
    await voice_api.post_event(uuid, "ringing")
    await voice_api.post_event(uuid, event, detail=detail)
    await voice_api.post_event(uuid, "completed")  # nothing more after the failure
    outcomes = await receiver.statuses(2)
    await call.bridge.app[OUTBOUND].drain()
    assert [o["status"] for o in receiver.verified()] == ["ringing", event]
    assert "duration_s" not in outcomes[1]
    record = await record_of(call, uuid)
    assert record.end_reason == (event if detail is None else f"{event} ({detail})")
    assert record.direction == "outbound" and record.duration_s == 0.0
    assert record.to_number == "818012345678" and record.metadata == {"n": 1}
    assert record.front_door == "vonage"


# --- callback delivery ---------------------------------------------------------------------------


async def test_callbacks_are_retried_with_the_same_id_until_delivered(
    start_call: StartCall, voice_api: FakeVoiceApi, receiver: CallbackReceiver
) -> None:
    receiver.answers = [500, 503, 429]
    call = await start_vonage(start_call, voice_api)
    status, body = await post_connect(call, {"to": TO, "status_url": receiver.url})
    assert status == 201
    await voice_api.post_event(body["uuid"], "ringing")
    await receiver.wait_count(4)
    ids = {headers["webhook-id"] for headers, _ in receiver.received}
    assert ids == {message_id(body["uuid"], "ringing")}  # what any instance would send
    assert [o["status"] for o in receiver.verified()] == ["ringing"] * 4
    task = call.bridge.app[OUTBOUND].get(body["uuid"]).last_callback  # type: ignore[union-attr]
    assert task is not None and await task is True
    sender = call.bridge.app[OUTBOUND].sender
    assert sender is not None
    assert (sender.delivered, sender.given_up) == (1, 0)


async def test_a_callback_given_up_is_logged_with_the_call_uuid(
    start_call: StartCall,
    voice_api: FakeVoiceApi,
    receiver: CallbackReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver.answers = [500] * 10
    call = await start_vonage(start_call, voice_api)
    status, body = await post_connect(call, {"to": TO, "status_url": receiver.url})
    assert status == 201
    uuid = body["uuid"]
    caplog.handler.addFilter(CallContextFilter())  # what setup_logging puts on its handler
    with caplog.at_level(logging.INFO):
        await voice_api.post_event(uuid, "ringing")
        await receiver.wait_count(4)  # the first attempt and 3 retries
        sender = call.bridge.app[OUTBOUND].sender
        assert sender is not None
        task = call.bridge.app[OUTBOUND].get(uuid).last_callback  # type: ignore[union-attr]
        assert task is not None and await task is False
    assert len(receiver.received) == 4
    (line,) = [r for r in caplog.records if "given up" in r.getMessage()]
    assert line.levelno == logging.WARNING and "HTTP 500" in line.getMessage()
    assert line.call_uuid == uuid  # type: ignore[attr-defined]
    assert "/outcomes" not in line.getMessage()  # the host only, not the URL


async def test_a_4xx_answer_is_final(
    start_call: StartCall, voice_api: FakeVoiceApi, receiver: CallbackReceiver
) -> None:
    receiver.answers = [410]
    call = await start_vonage(start_call, voice_api)
    _, body = await post_connect(call, {"to": TO, "status_url": receiver.url})
    await voice_api.post_event(body["uuid"], "ringing")
    task = call.bridge.app[OUTBOUND].get(body["uuid"]).last_callback  # type: ignore[union-attr]
    assert task is not None and await task is False
    assert len(receiver.received) == 1


async def test_shutdown_cancels_pending_callbacks_without_blocking(
    start_call: StartCall, voice_api: FakeVoiceApi, receiver: CallbackReceiver
) -> None:
    receiver.hold = asyncio.Event()  # the deployer's server never answers
    call = await start_vonage(start_call, voice_api)
    _, body = await post_connect(call, {"to": TO, "status_url": receiver.url})
    await voice_api.post_event(body["uuid"], "ringing")  # answered 204 at once
    await receiver.wait_count(1)
    task = call.bridge.app[OUTBOUND].get(body["uuid"]).last_callback  # type: ignore[union-attr]
    assert task is not None and not task.done()
    async with asyncio.timeout(10 * SECOND):
        await call.bridge.close()
    assert task.cancelled()
    receiver.hold.set()


async def test_status_url_needs_the_callback_secret(
    start_call: StartCall, voice_api: FakeVoiceApi
) -> None:
    call = await start_call(**vonage_env(voice_api))  # no CALLBACK_SECRET
    status, answer = await post_connect(call, {"to": TO, "status_url": "https://h.example/x"})
    assert status == 400
    assert answer["error"]["code"] == "callback_secret_missing"
    assert answer["error"]["field"] == "status_url"
    assert voice_api.created == []


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"to": TO, "colour": "blue"}, "unknown_field", "body"),
        ({"to": TO, "status_url": "http://hooks.example/x"}, "invalid_field", "status_url"),
        ({"to": "080-1234-5678"}, "invalid_number", "to"),
        ({"to": TO, "variables": {"a": 1}}, "invalid_field", "variables"),
        ({"to": TO, "metadata": [1]}, "invalid_field", "metadata"),
        ({"to": TO, "via": "plivo"}, "invalid_field", "via"),
    ],
)
async def test_bad_fields_are_400_and_nothing_is_dialled(
    start_call: StartCall,
    voice_api: FakeVoiceApi,
    body: dict[str, Any],
    code: str,
    field: str,
) -> None:
    call = await start_vonage(start_call, voice_api)
    status, answer = await post_connect(call, body)
    assert status == 400
    assert (answer["error"]["code"], answer["error"]["field"]) == (code, field)
    assert voice_api.created == []


async def test_a_national_number_with_region_is_dialled_in_e164(
    start_call: StartCall, voice_api: FakeVoiceApi
) -> None:
    call = await start_vonage(start_call, voice_api)
    status, _ = await post_connect(call, {"to": "080-1234-5678", "region": "JP"})
    assert status == 201
    assert voice_api.created[0]["body"]["to"][0]["number"] == "818012345678"


# --- voicemail (Vonage) ----------------------------------------------------------------------


async def test_machine_with_hangup_is_hung_up_at_once(
    start_call: StartCall, voice_api: FakeVoiceApi, receiver: CallbackReceiver
) -> None:
    call = await start_vonage(start_call, voice_api)
    status, body = await post_connect(
        call,
        {"to": TO, "status_url": receiver.url, "machine_detection": {"on_machine": "hangup"}},
    )
    assert status == 201
    uuid = body["uuid"]
    assert voice_api.created_call(uuid)["body"]["advanced_machine_detection"] == {
        "behavior": "continue",
        "mode": "detect_beep",
        "beep_timeout": 45,
    }
    await voice_api.post_event(uuid, "answered")
    await voice_api.post_event(uuid, "machine")
    assert await voice_api.wait_hangup(uuid, timeout=5 * SECOND) == {"action": "hangup"}
    await voice_api.post_event(uuid, "machine", sub_state="beep_start")  # no second hang-up
    await voice_api.post_event(uuid, "completed", duration_s=6)
    outcomes = await receiver.statuses(3)
    assert [o["status"] for o in outcomes] == ["answered", "machine", "completed"]
    assert (outcomes[-1]["end_reason"], outcomes[-1]["duration_s"]) == ("machine", 6.0)
    record = await record_of(call, uuid)
    assert record.amd == "machine" and record.end_reason == "machine"
    assert record.duration_s == 6.0 and record.metadata is None
    assert len(voice_api.hangups) == 1
    # as Vonage sends them: machine events name the call with call_uuid, not uuid
    machine = [body for _, body, _ in voice_api.events if body["status"] == "machine"]
    assert all("call_uuid" in b and "uuid" not in b for b in machine)
    assert machine[-1]["sub_state"] == "beep_start"
    completed = voice_api.events[-1][1]
    assert completed["uuid"] == uuid and completed["duration"] == "6"


async def test_machine_with_leave_message_speaks_it_at_the_beep(
    start_call: StartCall, voice_api: FakeVoiceApi, receiver: CallbackReceiver
) -> None:
    call = await start_vonage(start_call, voice_api)
    md = {"on_machine": "leave_message", "message": "Please call us back."}
    _, body = await post_connect(
        call, {"to": TO, "status_url": receiver.url, "machine_detection": md}
    )
    uuid = body["uuid"]
    await voice_api.post_event(uuid, "answered")
    await voice_api.post_event(uuid, "machine")
    await call.bridge.app[OUTBOUND].drain()
    assert voice_api.hangups == []  # waits for the beep
    await voice_api.post_event(uuid, "machine", sub_state="beep_start")
    put = await voice_api.wait_hangup(uuid, timeout=5 * SECOND)
    assert put == {
        "action": "transfer",
        "destination": {
            "type": "ncco",
            "ncco": [{"action": "talk", "text": "Please call us back.", "language": "en-US"}],
        },
    }
    await voice_api.post_event(uuid, "completed", duration_s=9)
    outcomes = await receiver.statuses(3)
    assert [o["status"] for o in outcomes] == ["answered", "machine", "completed"]
    assert (await record_of(call, uuid)).amd == "machine"


async def test_leave_message_is_said_by_the_assistant_when_the_media_socket_is_live(
    start_call: StartCall, voice_api: FakeVoiceApi, receiver: CallbackReceiver
) -> None:
    call = await start_vonage(start_call, voice_api)
    md = {"on_machine": "leave_message", "message": "Please call us back."}
    _, body = await post_connect(
        call, {"to": TO, "status_url": receiver.url, "machine_detection": md}
    )
    uuid = body["uuid"]
    await voice_api.post_event(uuid, "answered")
    caller = call.caller("/answer", call_uuid=uuid)
    await caller.answer()
    await caller.connect()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    await rt.wait_for_event("session.update")

    # the machine answers: its greeting starts a reply (the fake's VAD), cancelled at once
    await voice_api.post_event(uuid, "machine")
    await caller.stream_audio(speech(), realtime=True)
    await caller.stream_silence(900)
    cancel = await rt.wait_for_event("response.cancel", timeout=5 * SECOND)
    held = rt.responses[0]
    assert cancel["response_id"] == held.response_id
    await rt.wait_responses_done(1, timeout=5 * SECOND)
    assert held.status == "cancelled"
    assert caller.bytes_received == 0  # nothing was said over the greeting
    assert voice_api.hangups == []  # waits for the beep

    await voice_api.post_event(uuid, "machine", sub_state="beep_start")
    create = await rt.wait_for_event("response.create", timeout=5 * SECOND)
    assert "Please call us back." in create["response"]["instructions"]
    put = await voice_api.wait_hangup(uuid, timeout=10 * SECOND)
    assert put == {"action": "hangup"}  # over REST, no transfer to a talk NCCO
    reply = rt.responses[-1]
    assert reply is not held and reply.status == "completed"
    # all of it was played to the callee before the hang-up (24 kHz PCM16 -> 16 kHz L16)
    assert len(caller.heard) >= reply.total_bytes * 2 // 3 - 640
    await caller.wait_closed(timeout=5 * SECOND)
    assert caller.close_code == WSCloseCode.GOING_AWAY
    await voice_api.post_event(uuid, "completed", duration_s=12)
    outcomes = await receiver.statuses(3)
    assert [o["status"] for o in outcomes] == ["answered", "machine", "completed"]
    assert outcomes[-1]["end_reason"] == VOICEMAIL_REASON
    record = await record_of(call, uuid)
    assert (record.amd, record.end_reason) == ("machine", VOICEMAIL_REASON)
    assert [body for u, body in voice_api.hangups if u == uuid] == [{"action": "hangup"}]


async def test_human_carries_on_and_the_record_says_so(
    start_call: StartCall, voice_api: FakeVoiceApi, receiver: CallbackReceiver
) -> None:
    call = await start_vonage(start_call, voice_api)
    _, body = await post_connect(
        call,
        {"to": TO, "status_url": receiver.url, "machine_detection": {"on_machine": "hangup"}},
    )
    uuid = body["uuid"]
    await voice_api.post_event(uuid, "answered")
    caller = call.caller("/answer", call_uuid=uuid)
    await caller.answer()
    await caller.connect()
    await voice_api.post_event(uuid, "human")
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    await rt.wait_for_event("session.update")
    await caller.hang_up()
    await no_live_calls(call)
    await voice_api.post_event(uuid, "completed")
    outcomes = await receiver.statuses(2)
    assert [o["status"] for o in outcomes] == ["answered", "completed"]
    assert voice_api.hangups == []
    assert (await record_of(call, uuid)).amd == "human"


async def test_signed_events_from_the_fake_are_accepted(
    start_call: StartCall, receiver: CallbackReceiver
) -> None:
    signing = "vonage-signature-secret-for-tests-0123456789"
    api = FakeVoiceApi(application_test_key().public_key(), APP_ID, signature_secret=signing)
    await api.start()
    try:
        call = await start_vonage(start_call, api, VONAGE_SIGNATURE_SECRET=signing)
        _, body = await post_connect(call, {"to": TO, "status_url": receiver.url})
        assert await api.post_event(body["uuid"], "ringing") == 204
        assert [o["status"] for o in await receiver.statuses(1)] == ["ringing"]
        api.signature_secret = "another-secret-entirely-0123456789abcd"
        assert await api.post_event(body["uuid"], "busy") == 401  # not signed by Vonage
    finally:
        await api.close()


async def test_http_status_url_is_refused_without_the_insecure_opt_out(
    start_call: StartCall, voice_api: FakeVoiceApi, receiver: CallbackReceiver
) -> None:
    call = await start_vonage(
        start_call,
        voice_api,
        VONAGE_SIGNATURE_SECRET="vonage-signature-secret-for-tests-0123456789",
        ALLOW_UNSIGNED_WEBHOOKS="false",
    )
    status, answer = await post_connect(call, {"to": TO, "status_url": receiver.url})
    assert status == 400
    assert answer["error"]["field"] == "status_url"
    assert "ALLOW_UNSIGNED_WEBHOOKS" in answer["error"]["message"]
    assert voice_api.created == []


# --- via Twilio ----------------------------------------------------------------------------------


@pytest.fixture
async def twilio_api() -> AsyncIterator[FakeTwilioApi]:
    async with FakeTwilioApi(TW_ACCOUNT, TW_TOKEN) as api:
        yield api


async def start_twilio(start_call: StartCall, api: FakeTwilioApi, **env: str) -> Call:
    call = await start_call(
        **{
            "TWILIO_ACCOUNT_SID": TW_ACCOUNT,
            "TWILIO_AUTH_TOKEN": TW_TOKEN,
            "TWILIO_API_URL": api.base_url,
            "TWILIO_OUTBOUND_FROM": TW_FROM,
            "CONNECT_API_KEY": API_KEY,
            "CALLBACK_SECRET": SECRET,
            **env,
        }
    )
    sender = call.bridge.app[OUTBOUND].sender
    assert sender is not None
    sender.backoff_s = 0.01
    return call


async def test_via_twilio_dials_with_our_twiml_url_and_status_callback(
    start_call: StartCall, twilio_api: FakeTwilioApi, receiver: CallbackReceiver
) -> None:
    call = await start_twilio(start_call, twilio_api)
    status, body = await post_connect(
        call,
        {
            "to": "+1 415 555 0199",
            "via": "twilio",
            "status_url": receiver.url,
            "instructions": "Ask {name} about the order.",
            "variables": {"name": "Bo"},
            "metadata": {"order": "A1"},
        },
    )
    assert status == 201, body
    sid = body["uuid"]
    assert body["conversation_uuid"] is None and sid.startswith("CA")
    sent = twilio_api.created[sid]
    assert sent["To"] == "+14155550199" and sent["From"] == TW_FROM
    assert sent["Url"] == f"{call.bridge.url}/twilio/incoming-call"
    assert sent["StatusCallback"] == f"{call.bridge.url}/twilio/call-status"
    assert sent["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert "MachineDetection" not in sent

    assert await twilio_api.post_status(sid, "ringing") == 204
    assert await twilio_api.post_status(sid, "in-progress") == 204
    caller = FakeTwilioCaller(
        call.http,
        f"{call.bridge.url}/twilio/incoming-call",
        auth_token=TW_TOKEN,
        account_sid=TW_ACCOUNT,
        call_sid=sid,
        from_number=TW_FROM,
        to_number="+14155550199",
        extra_params={"Direction": "outbound-api"},
    )
    await caller.answer()
    await caller.connect()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    update = await rt.wait_for_event("session.update")
    assert "Ask Bo about the order." in update["session"]["instructions"]
    await caller.hang_up()
    await no_live_calls(call)
    assert await twilio_api.post_status(sid, "completed", duration_s=4) == 204
    outcomes = await receiver.statuses(3)
    assert [o["status"] for o in outcomes] == ["ringing", "answered", "completed"]
    assert outcomes[-1]["record_url"] == f"{call.bridge.url}/calls/{sid}"
    record = await record_of(call, sid)
    assert record.front_door == "twilio" and record.direction == "outbound"
    assert record.metadata == {"order": "A1"}


@pytest.mark.parametrize(
    ("call_status", "outcome"),
    [
        ("busy", "busy"),
        ("no-answer", "unanswered"),
        ("failed", "failed"),
        ("canceled", "cancelled"),
    ],
)
async def test_via_twilio_failures(
    start_call: StartCall,
    twilio_api: FakeTwilioApi,
    receiver: CallbackReceiver,
    call_status: str,
    outcome: str,
) -> None:
    call = await start_twilio(start_call, twilio_api)
    _, body = await post_connect(
        call, {"to": TO, "via": "twilio", "status_url": receiver.url, "metadata": {"k": "v"}}
    )
    sid = body["uuid"]
    await twilio_api.post_status(sid, "ringing")
    await twilio_api.post_status(sid, call_status)
    outcomes = await receiver.statuses(2)
    assert [o["status"] for o in outcomes] == ["ringing", outcome]
    record = await record_of(call, sid)
    assert record.end_reason == outcome and record.front_door == "twilio"
    assert record.to_number == TO and record.metadata == {"k": "v"}


async def test_via_twilio_machine_detection_hangs_up_on_a_machine(
    start_call: StartCall, twilio_api: FakeTwilioApi, receiver: CallbackReceiver
) -> None:
    call = await start_twilio(start_call, twilio_api)
    _, body = await post_connect(
        call,
        {
            "to": TO,
            "via": "twilio",
            "status_url": receiver.url,
            "machine_detection": {"on_machine": "hangup"},
        },
    )
    sid = body["uuid"]
    sent = twilio_api.created[sid]
    assert sent["MachineDetection"] == "Enable" and sent["AsyncAmd"] == "true"
    assert sent["AsyncAmdStatusCallback"] == f"{call.bridge.url}/twilio/call-status"
    await twilio_api.post_status(sid, "in-progress")
    assert await twilio_api.post_amd(sid, "machine_start") == 204
    hang_up = await twilio_api.wait_hangup(sid, timeout=5 * SECOND)
    assert hang_up.fields == {"Status": "completed"}
    await twilio_api.post_status(sid, "completed", duration_s=3)
    outcomes = await receiver.statuses(3)
    assert [o["status"] for o in outcomes] == ["answered", "machine", "completed"]
    assert (await record_of(call, sid)).amd == "machine"


async def test_via_twilio_leave_message_is_said_by_the_assistant_at_the_message_end(
    start_call: StartCall, twilio_api: FakeTwilioApi, receiver: CallbackReceiver
) -> None:
    call = await start_twilio(start_call, twilio_api)
    md = {"on_machine": "leave_message", "message": "Please call us back."}
    status, body = await post_connect(
        call, {"to": TO, "via": "twilio", "status_url": receiver.url, "machine_detection": md}
    )
    assert status == 201
    sid = body["uuid"]
    sent = twilio_api.created[sid]
    assert sent["MachineDetection"] == "DetectMessageEnd" and sent["AsyncAmd"] == "true"
    await twilio_api.post_status(sid, "in-progress")
    caller = FakeTwilioCaller(
        call.http,
        f"{call.bridge.url}/twilio/incoming-call",
        auth_token=TW_TOKEN,
        account_sid=TW_ACCOUNT,
        call_sid=sid,
        from_number=TW_FROM,
        to_number=TO,
        extra_params={"Direction": "outbound-api"},
    )
    await caller.answer()
    await caller.connect()
    rt = await call.fake.wait_for_session(timeout=5 * SECOND)
    await rt.wait_for_event("session.update")

    assert await twilio_api.post_amd(sid, "machine_end_beep") == 204
    create = await rt.wait_for_event("response.create", timeout=5 * SECOND)
    assert "Please call us back." in create["response"]["instructions"]
    hang_up = await twilio_api.wait_hangup(sid, timeout=10 * SECOND)
    assert hang_up.fields == {"Status": "completed"}
    reply = rt.responses[-1]
    assert reply.status == "completed"
    # all of it was played to the callee before the hang-up (mu-law: 8 bytes a ms)
    assert len(caller.heard) >= reply.total_bytes
    assert not any("Twiml" in r.fields for r in twilio_api.requests)  # not Twilio's <Say>
    await caller.wait_closed(timeout=5 * SECOND)
    await twilio_api.post_status(sid, "completed", duration_s=9)
    outcomes = await receiver.statuses(3)
    assert [o["status"] for o in outcomes] == ["answered", "machine", "completed"]
    assert outcomes[-1]["end_reason"] == VOICEMAIL_REASON
    record = await record_of(call, sid)
    assert (record.amd, record.end_reason) == ("machine", VOICEMAIL_REASON)


async def test_via_twilio_leave_message_without_a_live_socket_is_said_by_twilio(
    start_call: StartCall, twilio_api: FakeTwilioApi, receiver: CallbackReceiver
) -> None:
    call = await start_twilio(start_call, twilio_api)
    md = {"on_machine": "leave_message", "message": "Please call us back <soon> & thanks."}
    _, body = await post_connect(
        call, {"to": TO, "via": "twilio", "status_url": receiver.url, "machine_detection": md}
    )
    sid = body["uuid"]
    await twilio_api.post_status(sid, "in-progress")
    with pytest.raises(ValueError, match="not a verdict of MachineDetection='DetectMessageEnd'"):
        await twilio_api.post_amd(sid, "machine_start")  # Twilio sends that with Enable only
    assert await twilio_api.post_amd(sid, "machine_end_silence") == 204
    twiml = await twilio_api.wait_twiml(sid, timeout=5 * SECOND)
    assert twiml == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Say language="en-US">'
        "Please call us back &lt;soon&gt; &amp; thanks.</Say><Hangup /></Response>"
    )
    await twilio_api.post_status(sid, "completed", duration_s=7)
    outcomes = await receiver.statuses(3)
    assert [o["status"] for o in outcomes] == ["answered", "machine", "completed"]
    assert (outcomes[-1]["end_reason"], outcomes[-1]["duration_s"]) == ("machine", 7.0)
    assert (await record_of(call, sid)).amd == "machine"


async def test_via_twilio_needs_the_twilio_account(
    start_call: StartCall, voice_api: FakeVoiceApi
) -> None:
    call = await start_vonage(start_call, voice_api)
    status, answer = await post_connect(call, {"to": TO, "via": "twilio"})
    assert status == 503
    assert answer["error"]["code"] == "twilio_not_configured"


async def test_via_twilio_without_from_or_default_is_400(
    start_call: StartCall, twilio_api: FakeTwilioApi
) -> None:
    call = await start_twilio(start_call, twilio_api, TWILIO_OUTBOUND_FROM="")
    status, answer = await post_connect(call, {"to": TO, "via": "twilio"})
    assert status == 400
    assert answer["error"]["field"] == "from"
    assert "TWILIO_OUTBOUND_FROM" in answer["error"]["message"]


async def test_via_twilio_refused_by_twilio_is_502(
    start_call: StartCall, twilio_api: FakeTwilioApi
) -> None:
    twilio_api.options = FakeTwilioApiOptions(update_status=500)
    call = await start_twilio(start_call, twilio_api)
    status, answer = await post_connect(call, {"to": TO, "via": "twilio"})
    assert status == 502
    assert answer["error"]["code"] == "twilio_api_error"
    assert answer["error"]["twilio"]["status"] == 500


async def test_twilio_status_callback_must_be_signed(
    start_call: StartCall, twilio_api: FakeTwilioApi, receiver: CallbackReceiver
) -> None:
    call = await start_twilio(start_call, twilio_api)
    _, body = await post_connect(call, {"to": TO, "via": "twilio", "status_url": receiver.url})
    form = {"CallSid": body["uuid"], "CallStatus": "busy"}
    async with call.http.post(f"{call.bridge.url}/twilio/call-status", data=form) as resp:
        assert resp.status == 403
    await call.bridge.app[OUTBOUND].drain()
    assert receiver.received == []
    assert call.bridge.app[OUTBOUND].get(body["uuid"]) is not None


async def test_callbacks_are_json_with_the_standard_webhooks_headers(
    start_call: StartCall, voice_api: FakeVoiceApi, receiver: CallbackReceiver
) -> None:
    call = await start_vonage(start_call, voice_api)
    _, body = await post_connect(call, {"to": TO, "status_url": receiver.url})
    await voice_api.post_event(body["uuid"], "ringing")
    await receiver.wait_count(1)
    headers, raw = receiver.received[0]
    assert headers["Content-Type"] == "application/json"
    assert headers["webhook-signature"].startswith("v1,")
    assert headers["webhook-timestamp"].isdigit()
    assert json.loads(raw)["status"] == "ringing"
    with pytest.raises(Exception):  # noqa: B017 - any verification error
        Webhook("whsec_" + base64.b64encode(b"x" * 32).decode()).verify(raw, headers)

"""Fake Twilio caller: emulates Twilio's side of one inbound call over Media Streams.

Entry ring (I/O): used by the integration tests and the local simulation, never by the core.
The Twilio twin of ``sim/vonage.py``'s ``FakeVonageCaller``. This module is the call: it
POSTs the Voice webhook, follows the TwiML's ``<Connect><Stream>`` and opens the stream. The
jobs it delegates live next to it:

- ``sim/twilio_webhook.py``: the Voice webhook, POSTed with Twilio's form fields (``CallSid``,
  ``AccountSid``, ``From``, ``To``, ``Direction``, ``CallStatus``, ``ApiVersion`` ...) and
  signed with ``X-Twilio-Signature`` when an Auth Token is given (the stream's upgrade too),
  and the TwiML answer (``<Say>`` text, then ``<Connect><Stream url=...>`` and its
  ``<Parameter>`` children);
- ``sim/twilio_stream.py``: the Media Stream (``TwilioMediaStream``, this class's base): the
  media clock, playback, marks and clears, and what it records for the tests (``heard``,
  ``send_log``, ``recv_log``, ``play_log``, ``marks_echoed``, ``bad_messages``,
  ``underruns`` ...);
- ``sim/twilio_messages.py``: the Media Streams messages, as sent and as checked;
- ``sim/audio.py``: mu-law and WAV helpers (re-exported here, where callers import them).

Sources (cited below by their bracketed names):

- [Media Streams messages] https://www.twilio.com/docs/voice/media-streams/websocket-messages
- [TwiML Stream] https://www.twilio.com/docs/voice/twiml/stream
- [Twilio webhooks] https://www.twilio.com/docs/usage/webhooks/voice-webhooks
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

import aiohttp

from .audio import (
    CALLER_WAV,
    MULAW_SILENCE,
    mulaw_to_pcm16,
    pcm16_to_mulaw,
    read_wav_mulaw,
    write_wav_mulaw,
)
from .phone import FRAME_MS
from .twilio_messages import FRAME_BYTES, MalformedKind
from .twilio_stream import SAMPLE_RATE_HZ, TwilioCallerOptions, TwilioMediaStream
from .twilio_webhook import (
    API_VERSION,
    SignatureMode,
    TwilioCallerError,
    TwimlAnswer,
    parse_twiml,
    post_voice_webhook,
    signed_request,
)

__all__ = [
    "CALLER_WAV",
    "FRAME_BYTES",
    "FRAME_MS",
    "MULAW_SILENCE",
    "SAMPLE_RATE_HZ",
    "FakeTwilioCaller",
    "MalformedKind",
    "SignatureMode",
    "TwilioCallerError",
    "TwilioCallerOptions",
    "TwimlAnswer",
    "mulaw_to_pcm16",
    "parse_twiml",
    "pcm16_to_mulaw",
    "read_wav_mulaw",
    "write_wav_mulaw",
]


class FakeTwilioCaller(TwilioMediaStream):
    """One inbound call as Twilio sees it: Voice webhook, TwiML, then a Media Stream.

    Usage::

        async with FakeTwilioCaller(http, f"{base}/twilio/incoming-call", auth_token=t) as c:
            await c.answer()
            await c.connect()
            await c.stream_audio(read_wav_mulaw(CALLER_WAV))
            await c.wait_heard_ms(1000)
            await c.hang_up()

    or ``await caller.run(audio)`` for answer, connect, audio and a silent tail in one call.
    The media clock, the playback emulation, underruns, bad messages and what the stream
    records are :class:`~.twilio_stream.TwilioMediaStream`'s.

    Attributes:
        webhook_url: the bridge's Voice webhook URL (what the request goes to).
        auth_token: the Auth Token signing requests, or None (requests are unsigned).
        from_number: the caller, E.164 with ``+``.
        to_number: the Twilio number that was called, E.164 with ``+``.
        webhook_params: the form fields posted to the webhook, once ``answer`` has run.
        answer_info: the parsed TwiML, once ``answer`` has run.
        greeting: the ``<Say>`` texts joined by a space ("" if none), once answered.
        (and the stream's: ``options``, the SIDs, ``heard``, ``send_log`` ...)

    Source: [Media Streams messages], [TwiML Stream], [Twilio webhooks].
    """

    def __init__(
        self,
        http: aiohttp.ClientSession,
        webhook_url: str,
        *,
        auth_token: str | None = None,
        call_sid: str | None = None,
        account_sid: str | None = None,
        stream_sid: str | None = None,
        from_number: str = "+14155550100",
        to_number: str = "+14155550199",
        extra_params: Mapping[str, str] | None = None,
        options: TwilioCallerOptions | None = None,
    ) -> None:
        """Prepare a call; nothing is sent until ``answer``.

        Args:
            http: session used for the webhook and the WebSocket.
            webhook_url: the bridge's Voice webhook, e.g. ``http://127.0.0.1:8080/twilio/
                incoming-call``.
            auth_token: Auth Token to sign requests with; None sends no signatures.
            call_sid: ``CA...``; random by default.
            account_sid: ``AC...``; random by default.
            stream_sid: ``MZ...``; random by default.
            from_number: caller number, E.164 with ``+``.
            to_number: called (Twilio) number, E.164 with ``+``.
            extra_params: more webhook form fields, added to (or overriding) the defaults.
            options: knobs; defaults to ``TwilioCallerOptions()``.
        """
        self.webhook_url = webhook_url
        self.auth_token = auth_token
        self.from_number = from_number
        self.to_number = to_number
        self._extra_params = dict(extra_params or {})
        self.webhook_params: dict[str, str] | None = None
        self.answer_info: TwimlAnswer | None = None
        self.greeting = ""
        self._init_stream(
            http, call_sid=call_sid, account_sid=account_sid, stream_sid=stream_sid, options=options
        )

    # -- Voice webhook and TwiML ---------------------------------------------------------------

    async def answer(self) -> TwimlAnswer:
        """POST the Voice webhook as Twilio does and parse the TwiML into ``answer_info``.

        Returns:
            The parsed TwiML.

        Raises:
            TwilioCallerError: if the bridge's answer is refused, as in
                :func:`~.twilio_webhook.post_voice_webhook` (status, content type, TwiML).
        Source: [TwiML Stream]; [Twilio webhooks].
        """
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": self.call_sid,
            "CallStatus": "ringing",
            "Called": self.to_number,
            "Caller": self.from_number,
            "Direction": "inbound",
            "From": self.from_number,
            "To": self.to_number,
            **self._extra_params,
        }
        self.webhook_params = params
        self.answer_info = await post_voice_webhook(
            self._http,
            self.webhook_url,
            params,
            auth_token=self.auth_token,
            mode=self.options.webhook_signature,
            public_base_url=self.options.public_base_url,
        )
        self.greeting = " ".join(self.answer_info.say)
        return self.answer_info

    # -- Media Stream ------------------------------------------------------------------------

    async def connect(self) -> None:
        """Follow ``<Connect><Stream>``: open the socket, send ``connected`` and ``start``.

        Starts the receive task and the media clock.

        Raises:
            TwilioCallerError: if ``answer`` has not run, the stream URL is not ws(s)://, the
                upgrade is refused (``status`` is the HTTP status) or the connection fails
                (``status`` None).
        Source: [Media Streams messages] connected and start messages.
        """
        if self.answer_info is None:
            raise TwilioCallerError("connect() before answer()")
        if self._ws is not None:
            raise TwilioCallerError("already connected")
        url = self.answer_info.stream_url
        scheme = urlsplit(url).scheme
        if scheme not in ("ws", "wss"):
            raise TwilioCallerError(f"stream url must be ws:// or wss://, not {url!r}")
        # The upgrade is signed over the stream URL alone: a GET has no form fields.
        target, headers = signed_request(
            url,
            {},
            webhook_url=self.webhook_url,
            auth_token=self.auth_token,
            mode=self.options.stream_signature,
            public_base_url=self.options.public_base_url,
        )
        await self._start_stream(target, headers, self.answer_info.parameters)

    async def run(
        self, mulaw: bytes = b"", *, tail_ms: int | None = None, realtime: bool = True
    ) -> None:
        """Answer and connect (if not done yet), send ``mulaw``, then a silent tail.

        Args:
            mulaw: the caller's speech, 8 kHz mu-law (see ``read_wav_mulaw``).
            tail_ms: send this much silence after the speech and return once it is sent.
                None: turn ``idle_silence`` on and return right after the speech; the line
                stays open and silent until ``stop_silence`` or ``hang_up``.
            realtime: pace the speech at 20 ms per frame.

        Raises:
            TwilioCallerError: as ``answer`` and ``connect``.
        """
        if self.answer_info is None:
            await self.answer()
        if self._ws is None:
            await self.connect()
        await self.stream_audio(mulaw, realtime=realtime)
        if tail_ms is None:
            self.start_silence()
        else:
            await self.stream_silence(tail_ms, realtime=realtime)

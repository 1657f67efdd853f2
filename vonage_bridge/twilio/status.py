"""Twilio's status callback for the calls ``POST /connect`` places through Twilio
(``"via": "twilio"``): ``POST /twilio/call-status``. Shell.

Twilio posts a form for each step asked for (``StatusCallbackEvent``: initiated, ringing,
answered, completed; ``CallStatus`` says which, busy / no-answer / failed / canceled included)
and, with asynchronous answering machine detection, one with ``AnsweredBy``. Each request must
carry a valid ``X-Twilio-Signature`` when ``TWILIO_AUTH_TOKEN`` is set (403 JSON otherwise);
the fields go to the outbound calls (``outbound.note_twilio_status``); the answer is 204.

Sources: https://www.twilio.com/docs/voice/api/call-resource#statuscallback,
https://www.twilio.com/docs/voice/answering-machine-detection,
https://www.twilio.com/docs/usage/webhooks/webhooks-security.
"""

from __future__ import annotations

from aiohttp import web

from ..outbound import note_twilio_status
from ..web.middleware import claim_call
from .routes import _check_signature, _read_form

routes = web.RouteTableDef()

STATUS_PATH = "/twilio/call-status"


@routes.post(STATUS_PATH)
async def call_status(request: web.Request) -> web.Response:
    """A status (or AMD) callback: checked, noted, 204."""
    form = await _read_form(request)
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    claim_call(request, fields.get("CallSid", "-")[:64])
    _check_signature(request, fields)
    note_twilio_status(request.app, fields)
    return web.Response(status=204)

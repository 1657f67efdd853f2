"""What every answer webhook does before it answers (the Vonage answer URL, Twilio's Voice
webhook): name the call, apply the unsigned-call limit, log the call, mint its media token.

A webhook that names no call still gets an answer, under an id made up with
``calls.UNKNOWN_CALL_PREFIX`` (such a call cannot be hung up or transferred over REST). An
unsigned webhook (``ALLOW_UNSIGNED_WEBHOOKS=true``) counts against
``UNSIGNED_CALLS_PER_MINUTE`` (``web.guards``), all front doors together; past it, 429
``too_many_calls``.

Sources: https://developer.vonage.com/en/voice/voice-api/webhook-reference (answer webhook),
https://www.twilio.com/docs/usage/webhooks/voice-webhooks (Voice webhook),
https://www.rfc-editor.org/rfc/rfc6585#section-4 (429).
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from aiohttp import web

from ..calls import UNKNOWN_CALL_PREFIX
from ..core.media_token import MediaToken
from ..logs import call_context
from .keys import GUARDS, SIGNER
from .middleware import count_rejection, error_response

__all__ = ["AnswerWebhook", "admit_call"]


@dataclass(frozen=True, slots=True)
class AnswerWebhook:
    """How one front door's answer webhook names its call and is logged.

    Attributes:
        log: the front door's logger.
        id_field: the field holding the call id (``"call_uuid"``, ``"call_sid"``).
        missing: what to call a webhook without one (``"answer URL without a call uuid"``).
        arrived: the INFO line for an admitted call, a ``str.format`` template over the
            fields (``"call from {from} to {to}"``); a field that is absent shows as ``?``.
    """

    log: logging.Logger
    id_field: str
    missing: str
    arrived: str


class _OrUnknown(dict[str, str]):
    """Fields for :attr:`AnswerWebhook.arrived`: an absent one reads ``?``."""

    def __missing__(self, key: str) -> str:
        return "?"


def admit_call(
    request: web.Request, door: AnswerWebhook, fields: dict[str, str], *, signed: bool
) -> MediaToken | web.Response:
    """Admit the call an answer webhook announces, or refuse it.

    Args:
        request: the answer webhook, its signature already checked when ``signed``.
        door: the front door's words (:class:`AnswerWebhook`).
        fields: the webhook's fields, already bounded. Without ``door.id_field`` an id is
            made up and ``"{door.missing}; using <id>"`` logged as a warning; either way
            ``fields[door.id_field]`` holds the call id on return.
        signed: whether the front door checks signatures; False (unsigned webhooks allowed)
            takes one place of the unsigned-call limit.
    Returns:
        The call's media token (its ``call_uuid`` is the call id), or the 429
        ``too_many_calls`` response to send as it is: raising it would have the middleware
        log every request of a flood; the guard logs refusals once a minute.
    """
    call_id = fields.get(door.id_field)
    named = call_id is not None
    if call_id is None:
        call_id = fields[door.id_field] = f"{UNKNOWN_CALL_PREFIX}{uuid.uuid4()}"
    with call_context(call_id):
        if not signed:
            refused = request.app[GUARDS].refuse_unsigned_call(time.monotonic())
            if refused is not None:
                count_rejection(request, refused)
                return error_response(refused.http_status, refused.code, refused.message)
        if not named:
            door.log.warning("%s; using %s", door.missing, call_id)
        door.log.info("%s", door.arrived.format_map(_OrUnknown(fields)))
    return request.app[SIGNER].mint(call_id, time.time())

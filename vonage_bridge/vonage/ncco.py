"""NCCOs: the answer (a spoken greeting, then ``connect`` to our media WebSocket) and the
transfer (``connect`` to a phone). Pure.

Built with the Vonage SDK's NCCO models (``vonage_voice.Talk``, ``Connect``,
``WebsocketEndpoint``, ``PhoneEndpoint``, ``WebsocketAuthorization``), which validate the
shapes, then dumped with Vonage's wire names (``from``, ``content-type``). The SDK's
``Connect`` requires ``from`` (E.164 digits) or ``randomFromNumber``, even where the NCCO
reference leaves ``from`` optional; both NCCOs give the number the caller dialled (ours) as
``from`` and fall back to ``randomFromNumber`` when it is unknown. Nothing follows the answer's
``connect``: Vonage runs actions after a websocket ``connect`` as soon as the socket is up.

Source: NCCO reference (https://developer.vonage.com/en/voice/voice-api/ncco-reference,
``talk``, ``connect``, phone and websocket endpoints); WebSockets guide
(https://developer.vonage.com/en/voice/voice-api/concepts/websockets); ``vonage-voice`` 1.5.1
models (https://pypi.org/project/vonage-voice/; ``WebsocketEndpoint.authorization``) and
``vonage-utils`` ``PhoneNumber`` (``^[1-9]\\d{6,14}$``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vonage_voice import Connect, PhoneEndpoint, Talk, WebsocketEndpoint
from vonage_voice.models.common import WebsocketAuthorization

_E164_DIGITS = re.compile(r"^[1-9]\d{6,14}$")


def connect_from_number(called: str | None) -> str | None:
    """The ``from`` for ``connect``: the number that was called (ours), as E.164 digits.

    Returns ``None`` when it is not a plausible E.164 number (empty, a SIP user name, an
    app user); the caller then asks Vonage for ``randomFromNumber`` (the SDK requires one of
    the two).
    """
    if not called:
        return None
    digits = called.lstrip("+")
    return digits if _E164_DIGITS.match(digits) else None


def _connect(endpoint: WebsocketEndpoint | PhoneEndpoint, from_number: str | None) -> Connect:
    if from_number:
        return Connect(endpoint=[endpoint], from_=from_number)
    return Connect(endpoint=[endpoint], randomFromNumber=True)


def _dump(actions: list[Talk | Connect]) -> list[dict[str, Any]]:
    return [a.model_dump(mode="json", by_alias=True, exclude_none=True) for a in actions]


def answer_ncco(
    *,
    websocket_uri: str,
    headers: Mapping[str, str],
    greeting_text: str,
    greeting_language: str,
    from_number: str | None,
    sample_rate_hz: int = 16_000,
    signed_handshake: bool = False,
) -> list[dict[str, Any]]:
    """The NCCO returned from the answer URL.

    Args:
        websocket_uri: ``ws(s)://`` URI of our media socket, query already URL-encoded.
        headers: from :func:`bounded_headers`.
        greeting_text: spoken first; empty means no ``talk`` action.
        greeting_language: BCP-47 tag for the ``talk``, e.g. ``en-US``.
        from_number: from :func:`connect_from_number`, or ``None``.
        sample_rate_hz: 8000, 16000 or 24000 (L16; ``VONAGE_AUDIO_RATE``).
        signed_handshake: ask Vonage to sign the socket's opening handshake
            (``"authorization": {"type": "vonage"}``: an ``Authorization: Bearer <JWT>``
            header signed with the account's signature secret).
    Returns:
        A JSON-ready list of NCCO actions.
    Raises:
        pydantic.ValidationError: if a value breaks the SDK's NCCO models (a bug, or bad
            configuration that ``config.py`` should have caught).
    """
    endpoint = WebsocketEndpoint(
        uri=websocket_uri,
        contentType=f"audio/l16;rate={sample_rate_hz}",
        headers=dict(headers),
        authorization=WebsocketAuthorization(type="vonage") if signed_handshake else None,
    )
    actions: list[Talk | Connect] = []
    if greeting_text:
        actions.append(Talk(text=greeting_text, language=greeting_language))
    actions.append(_connect(endpoint, from_number))
    return _dump(actions)


def transfer_ncco(number: str, caller_id: str | None) -> list[dict[str, Any]]:
    """The NCCO a call is transferred to: ``connect`` the caller to the phone ``number``.

    Args:
        number: the transfer target, E.164 digits (no ``+``).
        caller_id: the number the caller dialled (ours, as Vonage gave it in ``to``; ``+`` is
            dropped); shown to the transfer target. When it is not an E.164 number
            (see :func:`connect_from_number`), Vonage picks one of the application's numbers
            (``randomFromNumber``).
    Returns:
        ``[{"action": "connect", "from": ..., "endpoint": [{"type": "phone", "number": ...}]}]``
        for the Voice API's ``transfer`` (``destination.ncco``).
    Raises:
        pydantic.ValidationError: ``number`` is not E.164 digits.
    """
    return _dump([_connect(PhoneEndpoint(number=number), connect_from_number(caller_id))])

"""The answer NCCO: a spoken greeting, then ``connect`` to our media WebSocket. Pure.

Built with the Vonage SDK's NCCO models (``vonage_voice.Talk``, ``Connect``,
``WebsocketEndpoint``), which validate the shapes, then dumped with Vonage's wire names.
Nothing follows the ``connect``: Vonage runs actions after a websocket ``connect`` as soon as
the socket is up (field-notes.md 1.9).

Source: protocols.md A2 [V-NCCO], [V-WSG], [SDK-VOICE].
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vonage_voice import Connect, Talk, WebsocketEndpoint

_E164_DIGITS = re.compile(r"^[1-9]\d{6,14}$")


def connect_from_number(called: str | None) -> str | None:
    """The ``from`` for ``connect``: the number that was called (ours), as E.164 digits.

    Returns ``None`` when it is not a plausible E.164 number; the caller then asks Vonage for
    ``randomFromNumber`` (the SDK requires one of the two). [SDK-UTILS types.py]
    """
    if not called:
        return None
    digits = called.lstrip("+")
    return digits if _E164_DIGITS.match(digits) else None


def answer_ncco(
    *,
    websocket_uri: str,
    headers: Mapping[str, str],
    greeting_text: str,
    greeting_language: str,
    from_number: str | None,
    sample_rate_hz: int = 16_000,
) -> list[dict[str, Any]]:
    """The NCCO returned from the answer URL.

    Args:
        websocket_uri: ``ws(s)://`` URI of our media socket, query already URL-encoded.
        headers: from :func:`bounded_headers`.
        greeting_text: spoken first; empty means no ``talk`` action.
        greeting_language: BCP-47 tag for the ``talk``, e.g. ``en-US``.
        from_number: from :func:`connect_from_number`, or ``None``.
        sample_rate_hz: 8000 or 16000 (L16).
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
    )
    if from_number:
        connect = Connect(endpoint=[endpoint], from_=from_number)
    else:
        connect = Connect(endpoint=[endpoint], randomFromNumber=True)
    actions: list[Talk | Connect] = []
    if greeting_text:
        actions.append(Talk(text=greeting_text, language=greeting_language))
    actions.append(connect)
    return [a.model_dump(mode="json", by_alias=True, exclude_none=True) for a in actions]

"""Opens the OpenAI Realtime WebSocket with aiohttp's client. Shell: does I/O.

URL ``<OPENAI_BASE_URL with ws/wss scheme>/realtime?model=<model>`` for a media call's own
session, or ``...?call_id=<call id>`` for the sideband of an accepted SIP call; header
``Authorization: Bearer <key>``; never the ``OpenAI-Beta`` header (the beta shape is refused
with close 4000). With ``OPENAI_API_VERSION`` set (Azure OpenAI) the key goes in ``api-key``
and the version in the ``api-version`` query parameter, on both kinds of socket.

Sources: Realtime WebSocket guide (https://platform.openai.com/docs/guides/realtime-websocket),
Realtime SIP guide, sideband connection
(https://platform.openai.com/docs/guides/realtime-sip), Azure OpenAI Realtime
(https://learn.microsoft.com/azure/foundry/openai/how-to/realtime-audio-websockets).
"""

from __future__ import annotations

import asyncio

import aiohttp

from ..config import OpenAISettings
from ..errors import RealtimeConnectError

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""Largest server event we accept (a long audio delta is well under 1 MiB)."""


def realtime_request(
    openai: OpenAISettings, call_id: str | None = None
) -> tuple[str, dict[str, str], dict[str, str]]:
    """URL, query parameters and headers of the Realtime upgrade request.

    Args:
        openai: the settings (base URL, key, model, ``api_version``).
        call_id: the SIP call whose sideband to join (``call_id`` instead of ``model``);
            None opens a new session of ``openai.model``.
    """
    params = {"model": openai.model} if call_id is None else {"call_id": call_id}
    if openai.api_version:
        params["api-version"] = openai.api_version
        headers = {"api-key": openai.api_key.get_secret_value()}
    else:
        headers = {"Authorization": f"Bearer {openai.api_key.get_secret_value()}"}
    return openai.realtime_url, params, headers


async def open_realtime(
    http: aiohttp.ClientSession, openai: OpenAISettings, *, call_id: str | None = None
) -> aiohttp.ClientWebSocketResponse:
    """Open a Realtime session socket within ``openai.connect_timeout_s`` seconds.

    Args:
        http: the app's shared client session.
        openai: the settings.
        call_id: join the sideband of this accepted SIP call instead of opening a new
            session (see :func:`realtime_request`).

    Raises:
        RealtimeConnectError: on a refused handshake (bad key -> HTTP 401, 5xx, ...), a
            timeout, or a network error; the message names the cause and never the key.
    """
    url, params, headers = realtime_request(openai, call_id)
    try:
        async with asyncio.timeout(openai.connect_timeout_s):
            return await http.ws_connect(
                url,
                params=params,
                headers=headers,
                max_msg_size=MAX_MESSAGE_BYTES,
                autoping=True,
                heartbeat=20.0,
            )
    except aiohttp.WSServerHandshakeError as exc:
        hint = " (check OPENAI_API_KEY)" if exc.status in (401, 403) else ""
        raise RealtimeConnectError(
            f"Realtime handshake refused: HTTP {exc.status} {exc.message}{hint}"
        ) from exc
    except TimeoutError:
        raise RealtimeConnectError(
            f"Realtime did not answer within {openai.connect_timeout_s:g} s"
        ) from None
    except (aiohttp.ClientError, OSError) as exc:
        raise RealtimeConnectError(f"cannot reach Realtime at {url}: {exc}") from exc

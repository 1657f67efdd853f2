"""The JSON object body of an API request (``POST /connect``, ``PUT /assistants/{name}``).
Shell: reads the request.

One reader, so every JSON API refuses the same bodies the same way: 400 ``invalid_json``
for a body larger than the route allows (checked on ``Content-Length`` before reading, and on
what was read when the body is chunked), empty, not JSON, nested deeper than 32 levels
(:func:`~..core.jsonbody.loads_bounded`), or not an object.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..core.jsonbody import loads_object
from ..errors import InvalidRequest


def _invalid(reason: str) -> InvalidRequest:
    return InvalidRequest(reason, code="invalid_json")


async def read_json_object(request: web.Request, *, max_bytes: int, shape: str) -> dict[str, Any]:
    """The request body as a JSON object.

    Args:
        request: the API request.
        max_bytes: the largest body the route takes, bytes.
        shape: what the object should be, for the message of a body that is not one, e.g.
            ``'like {"to": "+14155550100"}'`` or ``"(an assistant)"``.
    Raises:
        InvalidRequest: ``invalid_json`` (400), naming the problem.
    """
    if (request.content_length or 0) > max_bytes:
        raise _invalid(f"body is larger than {max_bytes} bytes")
    raw = await request.read()  # bounded by aiohttp's client_max_size even when chunked
    if len(raw) > max_bytes:
        raise _invalid(f"body is larger than {max_bytes} bytes")
    not_object = f"body must be a JSON object {shape}"
    if not raw.strip():
        raise _invalid(not_object)

    def invalid(reason: str) -> InvalidRequest:
        """The ``invalid_json`` error for ``reason``, said as ``shape`` when the JSON is no
        object."""
        return _invalid(not_object if reason.endswith("not a JSON object") else reason)

    return loads_object(raw, invalid, what="body")

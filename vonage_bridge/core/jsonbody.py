"""JSON from untrusted senders, with its nesting bounded. Pure: no I/O.

``json.loads`` recurses once per nested array or object, so ``[[[[...]]]]`` a few thousand
levels deep raises ``RecursionError``, which no ``except ValueError`` catches: a webhook
answered 500, a media socket closed with 1011. :func:`loads_bounded` measures the nesting
before parsing, without recursion, and refuses anything deeper than ``max_depth`` with
``errors.JsonTooDeep`` (a 400, and a ``ValueError``). Every message and webhook the bridge
reads is at most four levels deep. :func:`loads_object` is the form every reader of a JSON
object uses (wire messages, webhooks, Realtime server events): anything but an object raises
the reader's own error class.

Cost: a text with at most ``max_depth`` brackets in all (every Twilio ``media`` message,
every Vonage text message) pays one ``isinstance`` and two ``str.count`` calls: about 0.4 us
for a 386-character ``media`` message, 0.75 us with the call, on top of ``json.loads``'s 2 us
(measured with ``timeit`` on the development machine). Only texts with more brackets than
that are scanned: strings blanked out with one regular expression, then a running sum over
the remaining brackets; every step is linear in the length of the text.

Source: RFC 8259 section 9 ("An implementation may set limits on the maximum depth of
nesting"), https://www.rfc-editor.org/rfc/rfc8259#section-9.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from itertools import accumulate
from typing import Any

from ..errors import JsonTooDeep

__all__ = ["MAX_DEPTH", "JsonTooDeep", "loads_bounded", "loads_object", "nesting_depth"]

MAX_DEPTH = 32
"""Default bound on nesting: arrays and objects inside each other, the outermost counted."""

# A JSON string from its opening quote; one that is never closed runs to the end of the text
# (as the decoder reads it), so the match never fails and the scan stays linear.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest in ``text``: 0 for a scalar, 1 for ``[1, 2]``.

    Brackets inside strings do not count. On text that is not JSON the figure is only an
    estimate (the decoder refuses that text anyway). Linear in ``len(text)``; no recursion.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def loads_bounded(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads(text)``, refusing nesting deeper than ``max_depth`` before parsing.

    Args:
        text: a JSON document; bytes are decoded as ``json.loads`` decodes them (UTF-8, -16
            or -32, detected; a UTF-8 BOM allowed).
        max_depth: most arrays/objects allowed inside each other (the outermost counts 1).
    Returns:
        The decoded value.
    Raises:
        JsonTooDeep: nesting deeper than ``max_depth`` (also a ``ValueError``).
        ValueError: not JSON (``json.JSONDecodeError``), bytes that do not decode
            (``UnicodeDecodeError``), or an integer of more than 4300 digits.
    """
    if not isinstance(text, str):
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    # At most max_depth brackets in all cannot nest deeper (every frame of audio ends here).
    if text.count("[") + text.count("{") > max_depth and nesting_depth(text) > max_depth:
        raise JsonTooDeep(max_depth)
    return json.loads(text)


def loads_object(
    text: str | bytes,
    error: Callable[[str], Exception],
    what: str = "text message",
    max_depth: int | None = MAX_DEPTH,
) -> dict[str, Any]:
    """A JSON object from ``text``, as :func:`loads_bounded` decodes it, or ``error(reason)``.

    Args:
        text: the message or body (bytes decoded as ``json.loads`` decodes them).
        error: the reader's error class (or factory), called with the reason, e.g.
            ``errors.RemoteProtocolError`` for a wire message, ``errors.WebhookRejected``.
        what: names the text in the reasons: ``"{what} is not JSON"``, ``"{what} is not a
            JSON object"``.
        max_depth: as for :func:`loads_bounded`; None: no bound, for a peer we trust with
            large messages (Realtime server events: counting the brackets of a 100 ms audio
            delta costs about as much as parsing it).
    Returns:
        The decoded object.
    Raises:
        Exception: ``error(reason)``, where the reason is :class:`JsonTooDeep`'s message
            ("JSON nested deeper than 32 levels"), or says the text is not JSON or not an
            object.
    """
    try:
        doc = json.loads(text) if max_depth is None else loads_bounded(text, max_depth)
    except JsonTooDeep as exc:
        raise error(exc.message) from None
    except ValueError:
        raise error(f"{what} is not JSON") from None
    if not isinstance(doc, dict):
        raise error(f"{what} is not a JSON object")
    return doc

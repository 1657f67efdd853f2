"""Logging set-up: stdout, the call UUID on every line, text on a TTY or JSON lines.

A :class:`contextvars.ContextVar` carries the call UUID. Tasks copy the context they start in,
so every record emitted inside a call's tasks (aiohttp's included) carries it through
:class:`CallContextFilter`. Nothing is logged per frame anywhere in the project. A record is
one line in either format, whatever a client put in what is logged (the call id it claims,
its path): JSON escapes control characters, and :class:`TextFormatter` writes them as escapes.

aiohttp's own loggers get a :class:`LibraryLogFilter`: its HTTP parser logs a rejected request
line or header line whole, at ERROR with a traceback (an ``Authorization`` value with a NUL
byte, a ``?token=`` in a malformed request line). Those records become one INFO line that
says what was wrong without quoting the request; anything else aiohttp logs has the values of
credential-like headers and query parameters redacted.

Sources: the ``logging`` filters and records
(https://docs.python.org/3/library/logging.html#filter-objects), aiohttp's loggers
(https://docs.aiohttp.org/en/stable/logging.html).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime

from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

call_uuid_var: ContextVar[str] = ContextVar("call_uuid", default="-")

_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [call=%(call_uuid)s] %(message)s"
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "call_uuid"}


class CallContextFilter(logging.Filter):
    """Copies the current call UUID onto every record as ``record.call_uuid``."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Set ``record.call_uuid`` unless the record has one; always keeps the record."""
        if not hasattr(record, "call_uuid"):
            record.call_uuid = call_uuid_var.get()
        return True


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROL.update({0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r", 0x2028: "\\u2028", 0x2029: "\\u2029"})
"""Control characters (C0, DEL, C1) and Unicode line separators, as escapes."""


def escape_controls(text: str) -> str:
    """``text`` with every control character and line separator written as an escape
    (``\\n``, ``\\r``, ``\\x1b`` ...): on one line, and nothing a terminal acts on."""
    return text.translate(_CONTROL)


class TextFormatter(logging.Formatter):
    """The text log (``LOG_FORMAT=text``): one line per record, whatever a client put in the
    parts that are logged (the call id a request claims, its path). Control characters in the
    record line are escaped, so a CR or LF cannot start a forged line (CWE-117,
    https://cwe.mitre.org/data/definitions/117.html); a traceback stays below it as is."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        """The record line with control characters escaped (:func:`escape_controls`)."""
        return escape_controls(super().formatMessage(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, call_uuid, msg and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON object on one line; a traceback goes in ``exc``."""
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "call_uuid": getattr(record, "call_uuid", "-"),
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def setup_logging(level: str = "INFO", fmt: str = "auto") -> None:
    """Send every log record to stdout with the call UUID.

    Args:
        level: a logging level name.
        fmt: ``"text"``, ``"json"``, or ``"auto"`` (text on a TTY, JSON otherwise).
    """
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(CallContextFilter())
    use_json = fmt == "json" or (fmt == "auto" and not sys.stdout.isatty())
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    redact_library_logs()


# ------------------------------------------------------------------ library loggers

LIBRARY_LOGGERS = (
    "aiohttp.access",
    "aiohttp.client",
    "aiohttp.internal",
    "aiohttp.server",
    "aiohttp.web",
    "aiohttp.websocket",
)
"""The loggers :func:`redact_library_logs` filters (a logger's filters see only the records
logged on that very logger, so each one is named)."""

_SENSITIVE = r"[\w-]*(?:auth|token|secret|key|sig|passw|cookie|session)[\w-]*"
_HEADER_VALUE = re.compile(
    rf"(?i)(?<![\w-])(?![\w-]*(?:error|exception|warning)\b)({_SENSITIVE})([ \t]*:[ \t]*)[^\r\n]*"
)
"""``Authorization: Bearer ...`` and the like: the value, to the end of the line."""
_QUERY_VALUE = re.compile(rf"(?i)([?&;]{_SENSITIVE}=)[^&\s'\"]*")
"""``?token=...`` and the like: the value, to the next parameter."""
_QUOTED = re.compile(r"\s*b?['\"]")
"""Where aiohttp starts quoting the request (``b'X-API-Key: ...'``) in an error message."""
REDACTED = "<redacted>"


def redact(text: str) -> str:
    """``text`` with the values of credential-like headers (``Authorization: ...``,
    ``X-API-Key: ...``, to the end of the line) and query parameters (``?token=...``)
    replaced by ``<redacted>``."""
    text = _HEADER_VALUE.sub(rf"\1\2{REDACTED}", text)
    return _QUERY_VALUE.sub(rf"\1{REDACTED}", text)


def client_error_reason(exc: BaseException) -> str:
    """What was wrong with a request, on one short line that quotes nothing of it.

    aiohttp's parser errors quote the offending bytes (``Invalid header value char:
    b'Authorization: ...'``); only the words before the quote are kept, with the error's
    class: ``BadHttpMessage: Invalid header value char``. A ``RequestPayloadError`` is
    described by the error that caused it (``ContentEncodingError: Can not decode
    content-encoding: deflate``).
    """
    cause = exc.__cause__
    http = (
        exc
        if isinstance(exc, HttpProcessingError)
        else cause
        if isinstance(cause, HttpProcessingError)
        else None
    )
    source: BaseException = http if http is not None else exc
    text = http.message if http is not None else str(exc)
    first = text.strip().split("\n", 1)[0]
    words = redact(_QUOTED.split(first, 1)[0]).rstrip(" :.,")[:120]
    name = type(source).__name__
    return f"{name}: {words}" if words else name


def _client_error(exc: BaseException | None) -> bool:
    """A request the client got wrong: one aiohttp answers 4xx itself, or a body it could not
    read (``RequestPayloadError``)."""
    if isinstance(exc, RequestPayloadError):
        return True
    return isinstance(exc, HttpProcessingError) and 400 <= exc.code < 500


class LibraryLogFilter(logging.Filter):
    """Rewrites records of aiohttp's loggers so no credential reaches the log, and a client's
    mistake is not logged as our error.

    - A record carrying a client error (aiohttp's parser refused the request: a header with a
      NUL byte or a bare CR, a line over 8190 bytes, a bad request line): one line at INFO,
      ``bad HTTP request: <class>: <what was wrong> (<aiohttp's message>)``, no traceback.
      A body that could not be read (``RequestPayloadError``) is one line at DEBUG: the
      handler has answered it 400 and logged it already (``web.middleware``), or never read
      the body; aiohttp then fails to drain it and logs "Unhandled exception".
    - Any other record: the values of credential-like headers and query parameters in its
      message and traceback replaced by ``<redacted>``.

    A record turned to INFO or DEBUG is dropped if its logger is not enabled for that level.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite or redact the record as the class docstring says; False drops it."""
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and _client_error(exc):
            reason = client_error_reason(exc)
            if isinstance(exc, RequestPayloadError):
                level = logging.DEBUG
                record.msg = f"unreadable request body left undrained: {reason}"
            else:
                level = logging.INFO
                record.msg = f"bad HTTP request: {reason} ({redact(record.getMessage())})"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
            record.levelno = level
            record.levelname = logging.getLevelName(level)
            return logging.getLogger(record.name).isEnabledFor(level)
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(_FORMATTER.formatException(record.exc_info))
        return True


_FORMATTER = logging.Formatter()
_LIBRARY_FILTER = LibraryLogFilter()


def redact_library_logs() -> None:
    """Put :class:`LibraryLogFilter` on each of :data:`LIBRARY_LOGGERS` (once: calling this
    again changes nothing). :func:`setup_logging` calls it."""
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).addFilter(_LIBRARY_FILTER)


@contextlib.contextmanager
def call_context(call_uuid: str) -> Iterator[None]:
    """Tag every record logged inside the block (and tasks started in it) with ``call_uuid``."""
    token = call_uuid_var.set(call_uuid)
    try:
        yield
    finally:
        call_uuid_var.reset(token)

"""Logging set-up: stdout, the call UUID on every line, text on a TTY or JSON lines.

A :class:`contextvars.ContextVar` carries the call UUID. Tasks copy the context they start in,
so every record emitted inside a call's tasks (aiohttp's included) carries it through
:class:`CallContextFilter`. Nothing is logged per frame anywhere in the project.

Source: style.md 7.6 (structlog's contextvars idea, without the dependency).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime

call_uuid_var: ContextVar[str] = ContextVar("call_uuid", default="-")

_TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [call=%(call_uuid)s] %(message)s"
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "call_uuid"}


class CallContextFilter(logging.Filter):
    """Copies the current call UUID onto every record as ``record.call_uuid``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "call_uuid"):
            record.call_uuid = call_uuid_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, call_uuid, msg and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
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
            doc["exc"] = self.formatException(record.exc_info)
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
    handler.setFormatter(JsonFormatter() if use_json else logging.Formatter(_TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


@contextlib.contextmanager
def call_context(call_uuid: str) -> Iterator[None]:
    """Tag every record logged inside the block (and tasks started in it) with ``call_uuid``."""
    token = call_uuid_var.set(call_uuid)
    try:
        yield
    finally:
        call_uuid_var.reset(token)

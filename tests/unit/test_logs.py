"""``logs``: aiohttp's records never carry a credential, and a client's mistake is one INFO
line without a traceback."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest
from aiohttp.http_exceptions import BadHttpMessage, ContentEncodingError, LineTooLong
from aiohttp.web_protocol import RequestPayloadError

from vonage_bridge.logs import (
    LIBRARY_LOGGERS,
    JsonFormatter,
    LibraryLogFilter,
    client_error_reason,
    redact,
    setup_logging,
)

SECRET = "Sk7-0123456789abcdef"


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {SECRET}",
        f"b'X-API-Key: {SECRET}\\x00rest'",
        f"x-twilio-signature:{SECRET}",
        f"GET /vonage/ws?call_uuid=u1&exp=9&token={SECRET} HTTP/1.1",
        f"webhook-signature: v1,{SECRET}",
    ],
)
def test_redact_removes_credential_values(text: str) -> None:
    clean = redact(text)
    assert SECRET not in clean
    assert "<redacted>" in clean


def test_redact_keeps_ordinary_text_and_exception_names() -> None:
    text = "KeyError: 'uuid' while handling GET /health?call_uuid=u1"
    assert redact(text) == text


def test_client_error_reason_never_quotes_the_request() -> None:
    nul = BadHttpMessage(f"Invalid header value char:\n\n  b'Authorization: {SECRET}\\x00'\n  ^")
    assert client_error_reason(nul) == "BadHttpMessage: Invalid header value char"
    long = LineTooLong(f"X-API-Key: {SECRET}" + "x" * 9000, 8190)
    assert client_error_reason(long) == "LineTooLong: Got more than 8190 bytes when reading"
    payload = RequestPayloadError("400, message: Can not decode content-encoding: deflate")
    payload.__cause__ = ContentEncodingError("Can not decode content-encoding: deflate")
    assert client_error_reason(payload) == (
        "ContentEncodingError: Can not decode content-encoding: deflate"
    )


def record_with(
    exc: BaseException, msg: str = "Error handling request from %s"
) -> logging.LogRecord:
    return logging.LogRecord(
        "aiohttp.server",
        logging.ERROR,
        __file__,
        1,
        msg,
        ("127.0.0.1",),
        (type(exc), exc, exc.__traceback__),
    )


def test_filter_turns_a_parser_error_into_one_info_line_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    record = record_with(BadHttpMessage(f"Invalid header value char:\n\n  b'X-API-Key: {SECRET}'"))
    with caplog.at_level(logging.INFO, logger="aiohttp.server"):
        assert LibraryLogFilter().filter(record)
    assert (record.levelno, record.levelname) == (logging.INFO, "INFO")
    assert record.exc_info is None
    assert record.getMessage() == (
        "bad HTTP request: BadHttpMessage: Invalid header value char "
        "(Error handling request from 127.0.0.1)"
    )


def test_filter_turns_an_undrained_unreadable_body_into_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    record = record_with(RequestPayloadError("bad body"), "Unhandled exception")
    with caplog.at_level(logging.INFO, logger="aiohttp.server"):
        assert not LibraryLogFilter().filter(record)  # not enabled at DEBUG: dropped
    assert record.levelno == logging.DEBUG and record.exc_info is None


def test_filter_redacts_other_records_and_their_tracebacks() -> None:
    try:
        raise RuntimeError(f"upstream said Authorization: Bearer {SECRET}")
    except RuntimeError as exc:
        record = record_with(exc, f"failed GET /x?token={SECRET}")
        record.args = ()
    assert LibraryLogFilter().filter(record)
    assert record.levelno == logging.ERROR
    text = JsonFormatter().format(record)
    assert SECRET not in text
    assert "RuntimeError" in text and "Traceback" in text


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    access_level = logging.getLogger("aiohttp.access").level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(access_level)
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        for f in [f for f in logger.filters if isinstance(f, LibraryLogFilter)]:
            logger.removeFilter(f)


def test_setup_logging_filters_each_aiohttp_logger_once(restored_logging: None) -> None:
    setup_logging("INFO", "text")
    setup_logging("INFO", "text")
    for name in LIBRARY_LOGGERS:
        filters = logging.getLogger(name).filters
        assert sum(isinstance(f, LibraryLogFilter) for f in filters) == 1, name
    assert logging.getLogger().handlers[0].stream is sys.stdout  # type: ignore[attr-defined]

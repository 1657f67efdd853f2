"""A client cannot forge log lines: CR, LF and other control characters in what a refusal
logs (the call id a request claims, its path) are escaped in the text log, as JSON escapes
them in JSON lines.

Found by ``bench/hostile_probe.py --log-format text``: an unsigned ``POST /event`` whose body
claimed the call id ``"x\\n2026-01-01 00:00:00,000 ERROR ..."`` put a whole ERROR line of the
client's making into the log (CWE-117, https://cwe.mitre.org/data/definitions/117.html).
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from support import StartCall
from test_hostile_input import VONAGE_SECRET, all_doors

from vonage_bridge.logs import LIBRARY_LOGGERS, LibraryLogFilter, TextFormatter, setup_logging

FORGED = "2026-01-01 00:00:00,000 ERROR   forged.logger [call=-] a line the client wrote"
RECORD_START = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (\w+) +vonage_bridge\.")
"""How every line the bridge logs in text starts: time, level, one of our loggers."""


@pytest.fixture
def text_log() -> Iterator[io.StringIO]:
    """The service's own text logging (``setup_logging``), written to a buffer instead of
    stdout; the root logger restored afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    setup_logging("INFO", "text")
    (handler,) = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    out = io.StringIO()
    handler.setStream(out)
    yield out
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        for f in [f for f in logger.filters if isinstance(f, LibraryLogFilter)]:
            logger.removeFilter(f)


async def test_refused_requests_cannot_write_lines_of_their_own_into_the_text_log(
    start_call: StartCall, text_log: io.StringIO
) -> None:
    call = await start_call(**all_doors(VONAGE_SIGNATURE_SECRET=VONAGE_SECRET))
    text_log.truncate(0)  # the start-up lines
    text_log.seek(0)
    url = call.bridge.url
    body = json.dumps({"uuid": f"probe\n{FORGED}", "status": "answered"}).encode()
    crlf = f"\r\n{FORGED}"
    requests = [
        ("POST", "/event", body, {"Content-Type": "application/json"}),
        ("POST", "/incoming-call", body, {"Content-Type": "application/json"}),
        ("GET", "/answer?" + urlencode({"uuid": crlf}), b"", {}),
        ("GET", "/vonage/ws?" + urlencode({"call_uuid": crlf, "exp": "1", "token": "x"}), b"", {}),
        ("GET", "/event%0D%0Aforged%0Bline%1B[31m", b"", {}),
        (
            "POST",
            "/twilio/incoming-call",
            urlencode({"CallSid": f"CA{crlf}"}).encode(),
            {"Content-Type": "application/x-www-form-urlencoded"},
        ),
    ]
    for method, path, data, headers in requests:
        async with call.http.request(method, url + path, data=data, headers=headers) as resp:
            assert 400 <= resp.status < 500, (path, resp.status)
    lines = text_log.getvalue().splitlines()
    assert len(lines) == len(requests), lines  # one line per refusal, none split
    for line in lines:
        m = RECORD_START.match(line)
        assert m is not None, line
        assert m.group(1) in ("INFO", "WARNING"), line
        assert "\x0b" not in line and "\x1b" not in line, line
    logged = "\n".join(lines)
    assert logged.count("\\n" + FORGED[:30]) == 5  # escaped (call ids are cut to 64 chars)
    assert "/event\\r\\nforged\\x0bline\\x1b[31m" in logged


def test_text_formatter_escapes_the_record_line_and_keeps_a_traceback_below_it() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord(
            "vonage_bridge.x", logging.ERROR, __file__, 1, "bad %s", ("a\r\nb",), sys.exc_info()
        )
    record.call_uuid = "c\u2028d"
    text = TextFormatter().format(record)
    first, *rest = text.split("\n")
    assert first.endswith("[call=c\\u2028d] bad a\\r\\nb")
    assert rest[0] == "Traceback (most recent call last):" and "RuntimeError: boom" in rest[-1]

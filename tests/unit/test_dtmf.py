"""DTMF on the pure CallSession: to the model (configurable) and to the transcript."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from vonage_bridge.core.events import CallerDtmf, ResponseCreated, ResponseDone, TranscriptEntry
from vonage_bridge.core.session import CallSession

NewSession = Callable[..., CallSession]  # the ``new_session`` fixture (conftest.py)
Sent = Callable[[CallSession], list[dict[str, Any]]]  # the ``sent`` fixture (conftest.py)


def test_digit_reaches_the_model_and_the_transcript(session: CallSession, sent: Sent) -> None:
    session.now = 1_700_000_000.0
    session.caller_event(CallerDtmf("5", 260))
    item, create = sent(session)
    assert item["type"] == "conversation.item.create"
    assert item["item"]["role"] == "user"
    assert item["item"]["content"] == [{"type": "input_text", "text": "The caller pressed 5"}]
    assert create == {"type": "response.create"}
    assert session.stats.transcript == [
        TranscriptEntry("dtmf", "5", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC))
    ]
    assert session.stats.dtmf == 1


def test_response_waits_for_the_active_one(session: CallSession, sent: Sent) -> None:
    session.realtime_event(ResponseCreated("resp_1"))
    session.caller_event(CallerDtmf("#"))
    assert [e["type"] for e in sent(session)] == ["conversation.item.create"]
    session.realtime_event(ResponseDone("resp_1", "completed"))
    assert sent(session) == [{"type": "response.create"}]
    session.realtime_event(ResponseDone("resp_1", "completed"))
    assert sent(session) == []


def test_dtmf_to_model_off(new_session: NewSession, sent: Sent) -> None:
    session = new_session(env={"DTMF_TO_MODEL": "false"})
    session.caller_event(CallerDtmf("1"))
    assert sent(session) == []
    assert session.stats.transcript == [TranscriptEntry("dtmf", "1", None)]  # now never set


def test_dtmf_to_model_must_be_a_flag(new_session: NewSession) -> None:
    with pytest.raises(Exception, match="DTMF_TO_MODEL"):
        new_session(env={"DTMF_TO_MODEL": "maybe"})

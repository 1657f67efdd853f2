"""DTMF on the pure CallSession: to the model (configurable) and to the transcript."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from vonage_bridge.audio.path import ResamplingPath
from vonage_bridge.config import Settings
from vonage_bridge.core.events import CallerDtmf, ResponseCreated, ResponseDone, TranscriptEntry
from vonage_bridge.core.session import CallInfo, CallSession
from vonage_bridge.vonage.wire import VONAGE_COMMANDS


def make(tmp_path: Path, **env: str) -> CallSession:
    settings = Settings.from_env(
        {
            "SERVER_URL": "http://127.0.0.1:3000",
            "OPENAI_API_KEY": "sk-test",
            "SYSTEM_MESSAGE_PATH": str(tmp_path / "none.txt"),
            **env,
        }
    )
    s = CallSession(
        CallInfo("call-1"),
        openai=settings.openai,
        call=settings.call,
        path=ResamplingPath(16_000, settings.call.resample_quality),
        commands=VONAGE_COMMANDS,
    )
    s.realtime_opened()
    while s.flush_held():
        pass
    return s


def sent(session: CallSession) -> list[dict[str, Any]]:
    return [json.loads(e) for e in session.drain_realtime()]


def test_digit_reaches_the_model_and_the_transcript(tmp_path: Path) -> None:
    session = make(tmp_path)
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


def test_response_waits_for_the_active_one(tmp_path: Path) -> None:
    session = make(tmp_path)
    session.realtime_event(ResponseCreated("resp_1"))
    session.caller_event(CallerDtmf("#"))
    assert [e["type"] for e in sent(session)] == ["conversation.item.create"]
    session.realtime_event(ResponseDone("resp_1", "completed"))
    assert sent(session) == [{"type": "response.create"}]
    session.realtime_event(ResponseDone("resp_1", "completed"))
    assert sent(session) == []


def test_dtmf_to_model_off(tmp_path: Path) -> None:
    session = make(tmp_path, DTMF_TO_MODEL="false")
    session.caller_event(CallerDtmf("1"))
    assert sent(session) == []
    assert session.stats.transcript == [TranscriptEntry("dtmf", "1", None)]  # now never set


def test_dtmf_to_model_must_be_a_flag(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="DTMF_TO_MODEL"):
        make(tmp_path, DTMF_TO_MODEL="maybe")

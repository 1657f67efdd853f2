"""callbacks.message_id: one webhook-id per call and outcome, the same on every instance."""

from __future__ import annotations

import re

from vonage_bridge.callbacks import message_id


def test_the_same_call_and_outcome_give_the_same_id() -> None:
    assert message_id("call-1", "completed") == message_id("call-1", "completed")
    assert re.fullmatch(r"msg_[0-9a-f]{32}", message_id("call-1", "completed"))


def test_another_outcome_or_call_gives_another_id() -> None:
    ids = {message_id(c, s) for c in ("call-1", "call-2") for s in ("ringing", "completed")}
    assert len(ids) == 4
    assert message_id("a", "bc") != message_id("ab", "c")  # the parts are kept apart


def test_the_call_id_is_not_shown() -> None:
    assert "call-1" not in message_id("call-1", "completed")

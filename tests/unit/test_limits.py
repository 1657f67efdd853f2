"""The call limits as a schedule: time passed in, actions out (``core.limits``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from vonage_bridge.core.limits import GOODBYE_PROMPT, STILL_THERE_PROMPT, CallLimits, LimitAction
from vonage_bridge.core.session import CallSession


def run(limits: CallLimits, until: float, step: float = 1.0, **when: object) -> list[str]:
    """Check every ``step`` s up to ``until``; each action as ``"<t>:<action>"``. ``when``
    maps ``busy_<t>`` / ``heard_<t>`` (t as an int) to True."""
    out = []
    t = limits.started_at
    while t <= until:
        key = int(t)
        action = limits.check(
            t, busy=bool(when.get(f"busy_{key}")), caller_heard=bool(when.get(f"heard_{key}"))
        )
        if action is not None:
            out.append(f"{key}:{action.value}")
        t += step
    return out


def test_silence_asks_once_then_says_goodbye() -> None:
    limits = CallLimits(1800, 60, started_at=0.0)
    assert run(limits, 200) == ["60:still_there", "120:inactivity"]
    assert limits.ending == "inactivity"


def test_assistant_audio_is_not_silence_but_does_not_reset_the_question() -> None:
    limits = CallLimits(1800, 60, started_at=0.0)
    # the question is heard at the checks of 61 to 64 s: the second silence counts from 64 s
    busy = {f"busy_{t}": True for t in range(61, 65)}
    assert run(limits, 200, **busy) == ["60:still_there", "124:inactivity"]


def test_the_caller_answering_resets_the_question() -> None:
    limits = CallLimits(1800, 60, started_at=0.0)
    assert run(limits, 250, heard_70=True) == [
        "60:still_there",
        "130:still_there",
        "190:inactivity",
    ]


def test_a_caller_speaking_throughout_is_never_inactive() -> None:
    limits = CallLimits(1800, 60, started_at=0.0)
    assert run(limits, 300, **{f"busy_{t}": True for t in range(0, 301)}) == []


def test_max_duration_wraps_up_then_ends_even_while_busy() -> None:
    limits = CallLimits(100, 0, started_at=1000.0)
    busy = {f"busy_{t}": True for t in range(1000, 1200)}
    assert run(limits, 1150, **busy) == ["1070:wrap_up", "1100:max_duration"]
    assert limits.ending == "max_duration"
    assert limits.check(1200.0, busy=False, caller_heard=False) is None  # nothing after the end


def test_a_short_call_wraps_up_at_half_and_zero_turns_silence_off() -> None:
    limits = CallLimits(10, 0, started_at=0.0)
    assert limits.wrap_up_s == 5
    assert run(limits, 20) == ["5:wrap_up", "10:max_duration"]
    assert "5 seconds" in limits.prompt(LimitAction.WRAP_UP)


def test_ticks_follow_the_shortest_limit() -> None:
    assert CallLimits(1800, 60, 0.0).tick_s() == 1.0
    assert CallLimits(2, 0.4, 0.0).tick_s() == pytest.approx(0.1)
    assert CallLimits(1.0, 0, 0.0).tick_s() == pytest.approx(0.25)


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        CallLimits(0, 60, 0.0)
    with pytest.raises(ValueError):
        CallLimits(60, -1, 0.0)


def test_goodbye_actions_end_the_call_and_say_so() -> None:
    limits = CallLimits(100, 10, 0.0)
    assert LimitAction.GOODBYE_MAX.ends_call and LimitAction.GOODBYE_SILENT.ends_call
    assert not LimitAction.WRAP_UP.ends_call and not LimitAction.STILL_THERE.ends_call
    assert "goodbye" in limits.prompt(LimitAction.GOODBYE_SILENT)
    assert "still there" in limits.prompt(LimitAction.STILL_THERE)


# ------------------------------------------------------------------ step: the watch timer's tick


Sent = Callable[[CallSession], list[dict[str, Any]]]


def test_step_tells_the_wrap_up_and_asks_for_the_goodbye(
    new_session: Callable[..., CallSession], sent: Sent
) -> None:
    session = new_session()
    sent(session)
    limits = CallLimits(60, 0, started_at=0.0)
    assert limits.step(session, 29.0, busy=False) is None
    assert sent(session) == []
    assert limits.step(session, 30.0, busy=False) is LimitAction.WRAP_UP
    [told] = sent(session)
    assert told["type"] == "conversation.item.create"
    assert told["item"]["role"] == "system"
    assert "30 seconds" in told["item"]["content"][0]["text"]
    assert limits.step(session, 60.0, busy=True) is LimitAction.GOODBYE_MAX
    assert sent(session) == [
        {"type": "response.create", "response": {"instructions": GOODBYE_PROMPT["max_duration"]}}
    ]
    assert not limits.goodbye_said(session)  # no response has ended since
    session.stats.responses += 1  # as response.done counts it
    assert limits.goodbye_said(session)


def test_step_hears_the_caller_through_the_session_stats(
    new_session: Callable[..., CallSession], sent: Sent
) -> None:
    session = new_session()
    sent(session)
    limits = CallLimits(1800, 10, started_at=0.0)
    assert limits.step(session, 10.0, busy=False) is LimitAction.STILL_THERE
    assert sent(session) == [
        {"type": "response.create", "response": {"instructions": STILL_THERE_PROMPT}}
    ]
    session.stats.dtmf += 1  # the caller pressed a key: the question is answered
    assert limits.step(session, 20.0, busy=False) is None
    assert limits.step(session, 30.0, busy=False) is LimitAction.STILL_THERE  # asked again
    assert limits.step(session, 40.0, busy=False) is LimitAction.GOODBYE_SILENT
    assert limits.ending == "inactivity"

"""``core.mint_limit.MintLimit``: at most N tokens in any 60 s; refusals reported once a
minute. Time is passed in."""

from __future__ import annotations

import pytest

from vonage_bridge.core.mint_limit import WINDOW_S, MintLimit


def test_at_most_per_minute_tokens_in_any_window() -> None:
    limit = MintLimit(3)
    assert [limit.take(t) for t in (0.0, 1.0, 2.0, 3.0)] == [True, True, True, False]
    assert not limit.take(59.9)  # the first is still inside the window
    assert limit.take(60.0)  # the first left it: one place free
    assert not limit.take(60.5)
    assert limit.take(61.0) and limit.take(62.0)  # the next two left it too
    assert not limit.take(62.5)


def test_refusals_are_reported_at_once_then_once_a_minute() -> None:
    limit = MintLimit(1)
    assert limit.take(0.0)
    assert limit.report_due(0.0) == 0  # nothing refused yet
    assert not limit.take(1.0)
    assert limit.report_due(1.0) == 1  # the first refusal at once
    for t in range(2, 30):
        assert not limit.take(float(t))
        assert limit.report_due(float(t)) == 0  # then quiet for a minute
    assert limit.report_due(1.0 + WINDOW_S) == 28  # with the count since
    assert limit.report_due(2.0 + WINDOW_S) == 0


def test_bad_limit_is_refused() -> None:
    with pytest.raises(ValueError):
        MintLimit(0)

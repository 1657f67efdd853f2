"""``core/ratelimit.py``: the token bucket that polices caller audio, and the sliding-window
limit on media tokens minted by unsigned answer URLs (refusals reported once a minute). Each
test is a schedule of arrivals; time is passed in."""

from __future__ import annotations

import pytest

from vonage_bridge.core.ratelimit import WINDOW_S, MintLimit, TokenBucket

FRAME_S = 0.020


def test_bucket_lets_real_time_through_forever() -> None:
    bucket = TokenBucket(rate=1.0, burst=1.0, now=0.0)
    assert all(bucket.take(i * FRAME_S, FRAME_S) for i in range(10_000))  # 200 s


def test_bucket_allows_one_burst_then_refuses_the_excess() -> None:
    bucket = TokenBucket(rate=1.0, burst=1.0, now=0.0)
    taken = [bucket.take(0.0, FRAME_S) for _ in range(100)]  # 2 s of audio at once
    assert taken.count(True) == 50  # the 1 s burst
    assert not any(taken[50:])


def test_refused_arrivals_spend_nothing_and_credit_refills_at_the_rate() -> None:
    bucket = TokenBucket(rate=1.0, burst=1.0, now=0.0)
    assert bucket.take(0.0, 1.0)
    assert not bucket.take(0.01, FRAME_S)  # 10 ms of credit: short
    assert bucket.credit(0.01) == pytest.approx(0.01)  # the refusal took nothing
    assert bucket.take(0.02, FRAME_S)
    assert bucket.credit(0.02) == pytest.approx(0.0)


def test_credit_never_exceeds_the_burst() -> None:
    bucket = TokenBucket(rate=1.0, burst=1.0, now=0.0)
    assert bucket.credit(3_600.0) == 1.0  # an hour of silence buys one burst, not an hour
    taken = [bucket.take(3_600.0, FRAME_S) for _ in range(60)]
    assert taken.count(True) == 50


def test_jittered_real_time_arrivals_pass() -> None:
    """Frames held up by the network and delivered in clumps stay within a 1 s burst."""
    bucket = TokenBucket(rate=1.0, burst=1.0, now=0.0)
    for i in range(5_000):  # 100 s in clumps of 25 frames, each arriving 500 ms late at once
        assert bucket.take((i // 25 + 1) * 25 * FRAME_S, FRAME_S)


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1.0), (1.0, 0.0), (-1.0, 1.0)])
def test_bucket_refuses_a_non_positive_rate_or_burst(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(rate=rate, burst=burst, now=0.0)


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


def test_bad_mint_limit_is_refused() -> None:
    with pytest.raises(ValueError):
        MintLimit(0)

"""Retry backoff: the ceiling's growth and cap, jitter bounds, and invalid policies."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.backoff import (
    Jitter,
    RetryPolicy,
    bounds_seconds,
    ceiling_seconds,
    delay_seconds,
)
from conveyor.errors import ValidationError


@pytest.mark.parametrize(
    ("policy", "want"),
    [
        (RetryPolicy(1.0, 2.0, 300.0), [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]),
        (RetryPolicy(0.5, 3.0, 10.0), [0.5, 1.5, 4.5, 10, 10]),
        (RetryPolicy(2.0, 1.0, 5.0), [2, 2, 2, 2]),  # factor 1: constant
        (RetryPolicy(1.0, 2.0, 1.0), [1, 1, 1]),  # max = base: constant
    ],
)
def test_the_ceiling_grows_by_the_factor_up_to_the_cap(
    policy: RetryPolicy, want: list[float]
) -> None:
    got = [ceiling_seconds(attempt, policy) for attempt in range(1, len(want) + 1)]
    assert got == pytest.approx(want)


@pytest.mark.parametrize("attempt", [64, 1_025, 10_000, 10**9, 10**18, 2**200])
@pytest.mark.parametrize("factor", [1.5, 2.0, 10.0, 1e300])
def test_huge_attempt_numbers_stay_at_the_cap(attempt: int, factor: float) -> None:
    policy = RetryPolicy(1.0, factor, 300.0, Jitter.NONE)
    assert ceiling_seconds(attempt, policy) == 300.0
    assert delay_seconds(attempt, policy) == 300.0
    assert bounds_seconds(attempt, policy) == (300.0, 300.0)


def test_a_factor_that_overflows_the_float_still_caps() -> None:
    policy = RetryPolicy(1e300, 1e300, 1e308)
    assert ceiling_seconds(3, policy) == 1e308


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempts_are_one_based(attempt: int) -> None:
    with pytest.raises(ValueError, match="1-based"):
        ceiling_seconds(attempt, RetryPolicy())


@pytest.mark.parametrize(
    ("jitter", "low_share"),
    [(Jitter.FULL, 0.0), (Jitter.EQUAL, 0.5), (Jitter.NONE, 1.0)],
)
@pytest.mark.parametrize("seed", [0, 1, 7, 1234])
def test_jittered_delays_stay_within_their_bounds(
    jitter: Jitter, low_share: float, seed: int
) -> None:
    policy = RetryPolicy(0.25, 2.0, 30.0, jitter)
    rng = random.Random(seed)
    for attempt in range(1, 20):
        ceiling = ceiling_seconds(attempt, policy)
        low, high = bounds_seconds(attempt, policy)
        assert low == pytest.approx(ceiling * low_share)
        assert high == ceiling
        samples = [delay_seconds(attempt, policy, rng) for _ in range(50)]
        assert all(low <= d <= high for d in samples)
        if jitter is not Jitter.NONE:
            assert len(set(samples)) > 1  # it is jittered


def test_the_same_seed_gives_the_same_delays() -> None:
    policy = RetryPolicy(jitter=Jitter.FULL)
    first = [delay_seconds(a, policy, random.Random(99)) for a in range(1, 10)]
    again = [delay_seconds(a, policy, random.Random(99)) for a in range(1, 10)]
    assert first == again


class Fixed:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize(
    ("jitter", "r", "want"),
    [
        (Jitter.FULL, 0.0, 0.0),
        (Jitter.FULL, 0.5, 4.0),
        (Jitter.EQUAL, 0.0, 4.0),
        (Jitter.EQUAL, 0.5, 6.0),
        (Jitter.NONE, 0.3, 8.0),
    ],
)
def test_jitter_formulas(jitter: Jitter, r: float, want: float) -> None:
    policy = RetryPolicy(1.0, 2.0, 300.0, jitter)
    assert delay_seconds(4, policy, Fixed(r)) == want  # ceiling 8 s


positive = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False)


@st.composite
def policies(draw: st.DrawFn) -> RetryPolicy:
    base = draw(positive)
    factor = draw(st.floats(min_value=1.0, max_value=100.0))
    max_seconds = base * draw(st.floats(min_value=1.0, max_value=1e6))
    return RetryPolicy(base, factor, max_seconds, draw(st.sampled_from(Jitter)))


@settings(max_examples=300, deadline=None)
@given(
    policy=policies(),
    attempt=st.integers(min_value=1, max_value=10_000),
    r=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_any_delay_is_within_bounds(policy: RetryPolicy, attempt: int, r: float) -> None:
    low, high = bounds_seconds(attempt, policy)
    delay = delay_seconds(attempt, policy, Fixed(r))
    assert 0.0 <= low <= delay <= high <= policy.max_seconds
    assert math.isfinite(delay)
    assert high >= min(policy.base_seconds, policy.max_seconds)


@settings(max_examples=200, deadline=None)
@given(policy=policies(), attempt=st.integers(min_value=1, max_value=10_000))
def test_the_ceiling_never_shrinks_with_more_attempts(policy: RetryPolicy, attempt: int) -> None:
    assert ceiling_seconds(attempt, policy) <= ceiling_seconds(attempt + 1, policy)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"base_seconds": 0}, "retry_base_seconds"),
        ({"base_seconds": -1}, "retry_base_seconds"),
        ({"base_seconds": math.nan}, "retry_base_seconds"),
        ({"factor": 0.5}, "retry_factor"),
        ({"factor": math.nan}, "retry_factor"),
        ({"base_seconds": 10, "max_seconds": 5}, "retry_max_seconds"),
        ({"max_seconds": math.nan}, "retry_max_seconds"),
    ],
)
def test_invalid_policies_are_refused(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
    assert exc.value.field == field

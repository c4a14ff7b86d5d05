"""Retry backoff: pure functions of the attempt number, the policy and a random source.

``delay = min(max, base * factor ** (attempt - 1))`` then jitter:
- ``full``: uniform in [0, delay] -- spreads a burst of failures the most (AWS
  "Exponential Backoff and Jitter"), the default;
- ``equal``: delay/2 + uniform in [0, delay/2] -- never retries almost at once;
- ``none``: exactly delay.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from conveyor.errors import ValidationError


class Jitter(StrEnum):
    FULL = "full"
    EQUAL = "equal"
    NONE = "none"


class RandomSource(Protocol):
    def random(self) -> float: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_seconds: float = 1.0
    factor: float = 2.0
    max_seconds: float = 300.0
    jitter: Jitter = Jitter.FULL

    def __post_init__(self) -> None:
        if not self.base_seconds > 0:
            raise ValidationError("retry_base_seconds", "must be > 0")
        if not self.factor >= 1:
            raise ValidationError("retry_factor", "must be >= 1")
        if not self.max_seconds >= self.base_seconds:
            raise ValidationError("retry_max_seconds", "must be >= retry_base_seconds")


def ceiling_seconds(attempt: int, policy: RetryPolicy) -> float:
    """The un-jittered delay after failed attempt number `attempt` (1-based)."""
    if attempt < 1:
        raise ValueError("attempt is 1-based")
    # Cap the exponent first: factor ** 10_000 would overflow a float.
    exponent = attempt - 1
    delay = policy.base_seconds
    while exponent > 0 and delay < policy.max_seconds:
        delay *= policy.factor
        exponent -= 1
    return min(policy.max_seconds, delay)


def delay_seconds(attempt: int, policy: RetryPolicy, rng: RandomSource = random) -> float:
    """The jittered delay before the retry that follows failed attempt `attempt`."""
    ceiling = ceiling_seconds(attempt, policy)
    if policy.jitter is Jitter.FULL:
        return ceiling * rng.random()
    if policy.jitter is Jitter.EQUAL:
        return ceiling / 2 + (ceiling / 2) * rng.random()
    return ceiling


def bounds_seconds(attempt: int, policy: RetryPolicy) -> tuple[float, float]:
    """The smallest and largest delay `delay_seconds` can return for this attempt."""
    ceiling = ceiling_seconds(attempt, policy)
    low = {Jitter.FULL: 0.0, Jitter.EQUAL: ceiling / 2, Jitter.NONE: ceiling}[policy.jitter]
    return low, ceiling

"""What happens after a failed attempt: retry (after how long) or fail for good.

Pure decisions; the fail script applies them with a compare-and-set on the job.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from conveyor.backoff import RandomSource, RetryPolicy, delay_seconds
from conveyor.store.consumer import AttemptLimits
from conveyor.worker.errors import PermanentError
from conveyor.worker.registry import Registry


@dataclass(frozen=True, slots=True)
class RetryDecision:
    retryable: bool
    delay_ms: int
    max_attempts: int  # the effective limit the fail script compares attempts against


def effective_max_attempts(job_value: int | None, handler_value: int | None, default: int) -> int:
    """The job's own value wins, then the handler's, then the worker's default."""
    return job_value or handler_value or default


def attempt_limits(registry: Registry, default: int) -> AttemptLimits:
    """The limits the claim script needs to record each attempt's effective max_attempts
    as `effective_max_attempts` decides it: the handlers that set one, and `default`."""
    by_type: dict[str, int] = {}
    for name in registry.names():
        spec = registry.get(name)
        if spec is not None and spec.max_attempts is not None:
            by_type[name] = spec.max_attempts
    return AttemptLimits(default, by_type)


def decide(
    error: BaseException | None,
    attempt: int,
    max_attempts: int,
    policy: RetryPolicy,
    rng: RandomSource = random,
) -> RetryDecision:
    """`error` None means a timeout: retryable like any ordinary failure."""
    if isinstance(error, PermanentError) or attempt >= max_attempts:
        return RetryDecision(False, 0, max_attempts)
    return RetryDecision(True, int(delay_seconds(attempt, policy, rng) * 1000), max_attempts)

"""When a call is tried again: 503s and transport errors, with backoff, within a deadline."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from conveyor.backoff import RetryPolicy, delay_seconds
from conveyor.errors import StoreUnavailable
from conveyor.http_client.calls import Call


@dataclass(frozen=True, slots=True)
class RetryConfig:
    """How 503s and unreachable APIs are retried: at most `attempts` tries in all, waiting
    per `backoff` between them (a 503's Retry-After is honoured up to ``backoff.max_seconds``),
    and never past `deadline_seconds` after the call began."""

    attempts: int = 3
    backoff: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(base_seconds=0.2, factor=2.0, max_seconds=2.0)
    )
    deadline_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")
        if not self.deadline_seconds > 0:
            raise ValueError("deadline_seconds must be > 0")


# Errors raised before the request could reach the API: always safe to send again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: fall back to the backoff
    return seconds if seconds >= 0 else None


class Attempts:
    """The retry decisions of one call, shared by the sync and async clients: after each
    try, either the delay before the next one or the final outcome."""

    def __init__(self, config: RetryConfig, call: Call[Any], timeout: float, where: str):
        self.config = config
        self.call = call
        self.timeout = timeout
        self.where = where
        self.tries = 0
        self.deadline = time.monotonic() + config.deadline_seconds

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def start_try(self) -> float:
        """Count a new try; its timeout (never past the deadline)."""
        self.tries += 1
        return max(min(self.timeout, self.remaining()), 0.001)

    def _delay(self, hint: float | None) -> float | None:
        """The wait before the next try, or None when no try is left for it."""
        if self.tries >= self.config.attempts:
            return None
        delay = delay_seconds(self.tries, self.config.backoff, random)
        if hint is not None:
            delay = max(delay, min(hint, self.config.backoff.max_seconds))
        # Leave room for the next try itself, not just the wait before it.
        return delay if delay < self.remaining() else None

    def after_response(self, response: httpx.Response) -> float | None:
        """The wait before trying again, or None: `response` is the answer."""
        if response.status_code != 503:
            return None
        if not self.call.repeatable:
            # The API's deadline passed while Redis was slow or stopped: its script may still
            # have run (a resumed Redis runs what it had received), so repeating a create
            # without an idempotency key could create the job twice.
            return None
        return self._delay(_retry_after(response))

    def after_error(self, exc: httpx.TransportError) -> float:
        """The wait before trying again; raises `StoreUnavailable` when giving up."""
        sent = not isinstance(exc, _NOT_SENT)
        delay = None if sent and not self.call.repeatable else self._delay(None)
        if delay is not None:
            return delay
        reason = type(exc).__name__
        message = f"the API at {self.where} could not be reached ({reason}, {self.tries} tries)"
        if sent and not self.call.repeatable:
            message = (
                f"the connection to the API at {self.where} failed ({reason}); the "
                f"{self.call.method} {self.call.path} may or may not have been applied"
            )
        raise StoreUnavailable(message) from exc

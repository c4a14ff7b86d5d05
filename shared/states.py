"""The job state machine, as data.

Every transition Conveyor can make is one row of `TRANSITIONS`. The Lua scripts in
``shared/store/lua`` implement the rows (each script's header lists the statuses it
accepts, and a test checks those lists against this table), so this module is the one
place to read what can happen to a job.
"""

from __future__ import annotations

from enum import StrEnum

from conveyor.errors import InvalidTransition


class Status(StrEnum):
    SCHEDULED = "scheduled"  # due later (delay or run_at), in the queue's delayed zset
    PENDING = "pending"  # has an entry on the queue's stream, waiting for a worker
    RUNNING = "running"  # claimed by a worker; its stream entry is in the group's PEL
    RETRYING = "retrying"  # an attempt failed; waits out its backoff in the delayed zset
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    EXPIRED = "expired"  # its expires_at passed before it started: it never ran (again)

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELED, Status.EXPIRED})
DELAYED = frozenset({Status.SCHEDULED, Status.RETRYING})


class Event(StrEnum):
    PROMOTE = "promote"  # the scheduler moves a due job onto the stream
    CLAIM = "claim"  # a worker takes a delivered entry
    RECLAIM = "reclaim"  # a live worker takes over the entry of a dead one
    POISON = "poison"  # a reclaim found the delivery bound exceeded
    COMPLETE = "complete"
    RETRY = "retry"  # an attempt failed and attempts remain
    FAIL = "fail"  # an attempt failed for good (exhausted, unknown type, permanent error)
    CANCEL = "cancel"  # a job that is not running is canceled at once
    REQUEST_CANCEL = "request_cancel"  # a running job is asked to stop (cancel_requested)
    STOP_CANCELED = "stop_canceled"  # a running job stopped because cancel was requested
    REQUEUE = "requeue"  # graceful shutdown returns a running job, attempt not charged
    REPLAY = "replay"  # an operator re-queues a failed or canceled job
    # A job whose expires_at has passed is about to start (claim, reclaim) or to go back
    # onto the stream (promote): it ends without running.
    EXPIRE = "expire"
    # A claim on a paused queue gives the delivered entry back (a new entry at the end of
    # the stream), starting nothing and charging nothing.
    HAND_BACK = "hand_back"
    # A limit keeps a claimed job from starting, uncharged (ADR 0017): a full concurrency
    # limit holds it pending until a slot frees; a rate limit delays it to its reserved start.
    HOLD = "hold"
    RATE_LIMIT = "rate_limit"


S, E = Status, Event

TRANSITIONS: dict[tuple[Status, Event], Status] = {
    (S.SCHEDULED, E.PROMOTE): S.PENDING,
    (S.RETRYING, E.PROMOTE): S.PENDING,
    (S.PENDING, E.CLAIM): S.RUNNING,
    (S.RUNNING, E.RECLAIM): S.RUNNING,
    (S.RUNNING, E.POISON): S.FAILED,
    (S.RUNNING, E.COMPLETE): S.COMPLETED,
    (S.RUNNING, E.RETRY): S.RETRYING,
    (S.RUNNING, E.FAIL): S.FAILED,
    (S.SCHEDULED, E.CANCEL): S.CANCELED,
    (S.PENDING, E.CANCEL): S.CANCELED,
    (S.RETRYING, E.CANCEL): S.CANCELED,
    (S.RUNNING, E.REQUEST_CANCEL): S.RUNNING,
    (S.RUNNING, E.STOP_CANCELED): S.CANCELED,
    (S.RUNNING, E.REQUEUE): S.PENDING,
    (S.FAILED, E.REPLAY): S.PENDING,
    (S.CANCELED, E.REPLAY): S.PENDING,
    (S.SCHEDULED, E.EXPIRE): S.EXPIRED,
    (S.RETRYING, E.EXPIRE): S.EXPIRED,
    (S.PENDING, E.EXPIRE): S.EXPIRED,
    (S.RUNNING, E.EXPIRE): S.EXPIRED,
    (S.PENDING, E.HAND_BACK): S.PENDING,
    (S.RUNNING, E.HAND_BACK): S.PENDING,
    (S.PENDING, E.HOLD): S.PENDING,
    (S.RUNNING, E.HOLD): S.PENDING,
    (S.PENDING, E.RATE_LIMIT): S.SCHEDULED,
    (S.RUNNING, E.RATE_LIMIT): S.SCHEDULED,
}


def next_status(current: Status, event: Event) -> Status:
    """The status after `event`, or `InvalidTransition` when `current` does not allow it."""
    try:
        return TRANSITIONS[(current, event)]
    except KeyError:
        raise InvalidTransition(current.value, event.value) from None


def accepting(event: Event) -> frozenset[Status]:
    """The statuses from which `event` is allowed."""
    return frozenset(s for (s, e) in TRANSITIONS if e is event)


def initial_status(*, delayed: bool) -> Status:
    """A new job is scheduled when it is due later, else pending."""
    return Status.SCHEDULED if delayed else Status.PENDING

"""What the transition scripts answer, read in one place.

Each script replies with a word (``{'missing'}``, ``{'refused', status}``, ...), a list
of words, or, for enqueue, a code and rows. These functions turn the replies into the
outcomes the stores return and the errors they raise, so the meaning of a word is written
down once, next to the scripts' names for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from conveyor.errors import DuplicateJob, IdempotencyConflict, InvalidTransition, JobNotFound
from conveyor.values import CancelOutcome, NewJob

MISSING = "missing"  # cancel, replay: no such job hash
TERMINAL = "terminal"  # cancel: the job already ended (with its status)
REFUSED = "refused"  # replay: the job is neither failed nor canceled (with its status)
REPLAYED = "pending"  # replay: the job is pending again
# enqueue's codes, in place of the time of the write: a job id sent twice in one call, an
# idempotency key used for another request, a key that changed since it was read.
_DUPLICATE, _CONFLICT, _KEY_CHANGED, _RETIRED, _UNIQUE_CHANGED = -1, -2, -3, -4, -5


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _raised(reply: Any) -> Any:
    """A pipelined reply, the error it holds raised."""
    if isinstance(reply, Exception):
        raise reply
    return reply


def word(reply: Any) -> str:
    """The first word of a script's reply."""
    return _text(_raised(reply)[0])


def words(reply: Any) -> list[str]:
    """A reply that is one word per job (finish, renew)."""
    return [_text(w) for w in _raised(reply)]


class Finished(StrEnum):
    """What the finish scripts (complete, fail, requeue) answer for each job: its status
    after the write, or STALE when the attempt was no longer this worker's (nothing was
    written). Being strings, they compare equal to the status words."""

    COMPLETED = "completed"
    RETRYING = "retrying"
    FAILED = "failed"
    CANCELED = "canceled"
    PENDING = "pending"  # requeued: back on its queue
    STALE = "stale"


def finished(reply: Any) -> list[Finished]:
    """A finish script's reply: one `Finished` per job, in the order of its arguments."""
    return [Finished(w) for w in words(reply)]


def cancel_outcome(reply: Any, job_id: str) -> CancelOutcome:
    """cancel.lua's answer: `JobNotFound`, `InvalidTransition` when the job ended."""
    said = word(reply)
    if said == MISSING:
        raise JobNotFound(job_id)
    if said == TERMINAL:
        raise InvalidTransition(_text(reply[1]), "cancel")
    return CancelOutcome(said)


def replayed(reply: Any, job_id: str) -> None:
    """replay.lua's answer: `JobNotFound`, `InvalidTransition` from another status."""
    said = word(reply)
    if said == MISSING:
        raise JobNotFound(job_id)
    if said == REFUSED:
        raise InvalidTransition(_text(reply[1]), "replay")


def replayed_count(replies: Sequence[Any]) -> int:
    """How many of a pipeline of replay.lua calls replayed their job; a job that changed
    status (refused) or went away (missing) since its id was read is skipped."""
    return sum(1 for reply in replies if word(reply) == REPLAYED)


def enqueue_retired(reply: Any) -> bool:
    """True when enqueue.lua refused its chunk because the queue's registration
    generation was retired (its tombstone): register the queue again and resend."""
    return isinstance(reply, list) and len(reply) == 1 and int(reply[0]) == _RETIRED


def enqueue_rows(reply: Any, jobs: Sequence[NewJob]) -> tuple[int, list[tuple[str, str]]] | None:
    """enqueue.lua's answer for `jobs`: the time of the write (epoch ms) and one
    ``(word, value)`` row per job (``created`` and its status, ``repeat``, ``unique`` or
    ``exists`` and the stored job's id); None when an idempotency or unique key changed
    since it was read (read the keys and run again). Raises `DuplicateJob` or
    `IdempotencyConflict`."""
    code = int(_raised(reply)[0])
    if code == _DUPLICATE:
        raise DuplicateJob(jobs[int(reply[1]) - 1].id)
    if code == _CONFLICT:
        raise IdempotencyConflict(jobs[int(reply[1]) - 1].idempotency_key or "", _text(reply[2]))
    if code in (_KEY_CHANGED, _UNIQUE_CHANGED):
        return None
    return code, [(_text(kind), _text(value)) for kind, value in reply[1:]]

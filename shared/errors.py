"""The exception tree of Conveyor. Every layer raises these; the API maps them to problems."""

from __future__ import annotations


class ConveyorError(Exception):
    """Base of every error Conveyor raises on purpose."""


class ValidationError(ConveyorError):
    """A value from outside (HTTP body, CLI flag, client call) is not acceptable.

    `field` names the offending input (a JSON pointer-ish path such as ``payload`` or
    ``jobs/3/type``) so the API can say exactly what is wrong.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class PayloadTooLarge(ValidationError):
    """An encoded payload is larger than the configured limit."""


class JobNotFound(ConveyorError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} not found")
        self.job_id = job_id


class InvalidTransition(ConveyorError):
    """A transition was refused because the job is not in a state that allows it."""

    def __init__(self, current: str, event: str) -> None:
        super().__init__(f"cannot {event} a job that is {current}")
        self.current = current
        self.event = event


class DuplicateJob(ConveyorError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} already exists")
        self.job_id = job_id


class IdempotencyConflict(ConveyorError):
    """An idempotency key was already used for a request with a different body: by an
    earlier call (`job_id` names its job), or by another job of this same call (`job_id`
    None: nothing was created for either)."""

    def __init__(self, key: str, job_id: str | None) -> None:
        where = f"job {job_id}" if job_id else "another job of the same call"
        super().__init__(f"idempotency key {key!r} was used for another request ({where})")
        self.key = key
        self.job_id = job_id


class QueueLimitReached(ConveyorError):
    """A create names a queue not yet in the registry, which already holds `limit` queues
    (`CONVEYOR_MAX_QUEUES`): nothing of the call was written. `queues` are the new names."""

    def __init__(self, limit: int, queues: list[str]) -> None:
        super().__init__(
            f"at most {limit} queues may hold jobs (CONVEYOR_MAX_QUEUES); "
            f"new queue(s) refused: {', '.join(queues)}"
        )
        self.limit = limit
        self.queues = queues


class NotReplicated(ConveyorError):
    """Jobs were written to the primary, but fewer replicas than required (WAIT) confirmed
    them in time. They exist now, unless a failover happens before a replica has them:
    read them back by id, or send the request again with its Idempotency-Key."""

    def __init__(self, job_ids: list[str], acknowledged: int, required: int) -> None:
        super().__init__(
            f"{acknowledged} of {required} replicas acknowledged the write of "
            f"{len(job_ids)} job(s) in time; they may be lost if the primary fails now"
        )
        self.job_ids = job_ids
        self.acknowledged = acknowledged
        self.required = required


class StoreUnavailable(ConveyorError):
    """Redis did not answer in time or refused the connection."""


class ConfigError(ConveyorError):
    """The effective configuration is invalid; `problems` lists every problem found."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems

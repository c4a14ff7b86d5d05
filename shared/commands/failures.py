"""How a command fails: known errors become one-line messages with their exit status."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from conveyor.config import mask_url
from conveyor.errors import (
    ConveyorError,
    DuplicateJob,
    IdempotencyConflict,
    InvalidTransition,
    JobNotFound,
    QueueLimitReached,
    StoreUnavailable,
    ValidationError,
)

USAGE_EXIT = 2  # as click's usage errors
FAILURE_EXIT = 1


class CommandFailed(click.ClickException):
    """A one-line error, exit status 1 (click prints ``Error: <message>``)."""

    exit_code = FAILURE_EXIT


class InvalidInput(CommandFailed):
    """A one-line error about the input, exit status 2 (as click's usage errors)."""

    exit_code = USAGE_EXIT


@contextmanager
def failures(redis_url: str | None) -> Iterator[None]:
    """Known errors as one-line messages with their exit status; never a traceback."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisClusterException, RedisError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from conveyor.http_client import ApiError
    from conveyor.redis_errors import store_not_serving

    try:
        yield
    except ValidationError as exc:
        raise InvalidInput(f"invalid {exc.field}: {exc.message}") from None
    except (
        JobNotFound,
        InvalidTransition,
        IdempotencyConflict,
        DuplicateJob,
        QueueLimitReached,
    ) as exc:
        raise CommandFailed(str(exc)) from None
    except ApiError as exc:
        if exc.status in (401, 403):
            reason = "no valid token" if exc.status == 401 else "the token may only read"
            raise CommandFailed(f"the API refused the request ({reason}): {exc}") from None
        raise CommandFailed(f"the API answered {exc}") from None
    except StoreUnavailable as exc:
        raise CommandFailed(f"unavailable: {exc}") from None
    except (RedisConnectionError, RedisTimeoutError) as exc:
        where = mask_url(redis_url) if redis_url else "Redis"
        raise CommandFailed(f"cannot reach Redis at {where} ({type(exc).__name__})") from None
    except (RedisError, RedisClusterException) as exc:
        if store_not_serving(exc):  # e.g. a Cluster forming or failing over
            where = mask_url(redis_url) if redis_url else "Redis"
            raise CommandFailed(
                f"Redis at {where} is not serving now ({type(exc).__name__}); retry later"
            ) from None
        raise CommandFailed(f"Redis refused the command ({type(exc).__name__})") from None
    except ConveyorError as exc:
        raise CommandFailed(str(exc)) from None

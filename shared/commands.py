"""Producer commands of `conveyor`: enqueue, get, cancel, retry, ls, queues, workers.

Each talks to Redis directly (`shared.client`, with the usual settings: ``--redis-url``,
``--key-prefix``, ``--config``...) or, given ``--api-url`` (or ``CONVEYOR_API_URL``), to a
Conveyor HTTP API (`shared.http_client`), with ``--api-token`` (or ``CONVEYOR_API_TOKEN``)
as its bearer token. Output is a table for people, or with ``--json`` the API's JSON.

Exit status: 0 on success; 1 when the job does not exist, the change is refused (conflict),
the store or API cannot be reached or the API refuses the request; 2 for invalid input.
Errors are one line on stderr; tokens and Redis passwords are never printed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast
from urllib.parse import urlsplit

import click

from shared.cli import main, settings_from_cli, settings_options
from shared.config import mask_url
from shared.errors import (
    ConveyorError,
    DuplicateJob,
    IdempotencyConflict,
    InvalidTransition,
    JobNotFound,
    StoreUnavailable,
    ValidationError,
)
from shared.ids import ms_to_rfc3339
from shared.states import Status

if TYPE_CHECKING:
    from shared.job import Job
    from shared.store.producer import CancelOutcome, Page

F = TypeVar("F", bound=Callable[..., Any])

USAGE_EXIT = 2  # as click's usage errors
FAILURE_EXIT = 1
API_URL_ENV = "CONVEYOR_API_URL"
API_TOKEN_ENV = "CONVEYOR_API_TOKEN"  # noqa: S105 - the name of a variable, not a token
ERROR_WIDTH = 40  # characters of last_error shown in a table


class CommandFailed(click.ClickException):
    """A one-line error, exit status 1 (click prints ``Error: <message>``)."""

    exit_code = FAILURE_EXIT


class InvalidInput(CommandFailed):
    """A one-line error about the input, exit status 2 (as click's usage errors)."""

    exit_code = USAGE_EXIT


class _Producer(Protocol):
    """What the commands need of a client: `shared.client.SyncClient` or `SyncHttpClient`."""

    def enqueue(
        self,
        job_type: str,
        payload: Any = None,
        *,
        queue: str = ...,
        max_attempts: int | None = None,
        timeout_seconds: float | None = None,
        delay_seconds: float | None = None,
        idempotency_key: str | None = None,
    ) -> Job: ...
    def get(self, job_id: str) -> Job: ...
    def cancel(self, job_id: str) -> tuple[CancelOutcome, Job]: ...
    def replay(self, job_id: str) -> Job: ...
    def list(
        self,
        *,
        status: Sequence[str] | None = None,
        queue: str | None = None,
        type: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page: ...
    def queues(self) -> Sequence[Any]: ...
    def workers(self) -> Sequence[Any]: ...
    def close(self) -> None: ...


# --- options -------------------------------------------------------------------------------


def client_options(func: F) -> F:
    """The settings flags plus ``--api-url``, ``--api-token`` and ``--json``."""
    options: list[Callable[[F], F]] = [
        settings_options,
        click.option(
            "--api-url",
            "api_url",
            envvar=API_URL_ENV,
            default=None,
            callback=_api_url,
            metavar="URL",
            help=f"Use the HTTP API at this URL instead of Redis directly [env: {API_URL_ENV}].",
        ),
        click.option(
            "--api-token",
            "api_token",
            envvar=API_TOKEN_ENV,
            default=None,
            metavar="TOKEN",
            help=f"Bearer token for the HTTP API [env: {API_TOKEN_ENV}].",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _api_url(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter("must be an http:// or https:// URL")
    return value


def _payload(_: click.Context, __: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON ({exc})") from None


def _statuses(_: click.Context, __: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    """Repeatable and comma-separated: ``--status failed,canceled --status running``."""
    known = [s.value for s in Status]
    found: list[str] = []
    for value in values:
        for part in value.split(","):
            name = part.strip().lower()
            if name not in known:
                raise click.BadParameter(f"{part.strip()!r} is not one of {', '.join(known)}")
            if name not in found:
                found.append(name)
    return tuple(found)


# --- running a command ---------------------------------------------------------------------


@contextmanager
def _failures(redis_url: str | None) -> Iterator[None]:
    """Known errors as one-line messages with their exit status; never a traceback."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from shared.http_client import ApiError

    try:
        yield
    except ValidationError as exc:
        raise InvalidInput(f"invalid {exc.field}: {exc.message}") from None
    except (JobNotFound, InvalidTransition, IdempotencyConflict, DuplicateJob) as exc:
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
    except RedisError as exc:
        raise CommandFailed(f"Redis refused the command ({type(exc).__name__})") from None
    except ConveyorError as exc:
        raise CommandFailed(str(exc)) from None


@contextmanager
def _producer(
    config: str | None, api_url: str | None, api_token: str | None, flags: Mapping[str, Any]
) -> Iterator[_Producer]:
    """The client the flags ask for, closed afterwards; errors inside become messages."""
    if api_url:
        from shared.http_client import SyncHttpClient

        redis_url = None
        client: _Producer = SyncHttpClient(api_url, token=api_token or None)
    else:
        from shared.client import SyncClient

        settings = settings_from_cli(config, **flags)
        redis_url = settings.redis_url
        client = cast(
            _Producer,
            SyncClient.from_url(
                settings.redis_url,
                key_prefix=settings.key_prefix,
                result_ttl_seconds=settings.result_ttl_seconds,
                max_payload_bytes=settings.max_payload_bytes,
                timeout_seconds=settings.redis_timeout_seconds,
            ),
        )
    with _failures(redis_url):
        try:
            yield client
        finally:
            client.close()


# --- output --------------------------------------------------------------------------------


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _cell(value: Any, width: int | None = None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        text = f"{value:.1f}"
    elif isinstance(value, list | tuple):
        text = ",".join(str(v) for v in value)
    else:
        text = str(value)
    text = " ".join(text.split())  # one line, whatever the error message held
    if width is not None and len(text) > width:
        text = text[: width - 3] + "..."
    return text


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> None:
    if not rows:
        click.echo(empty)
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for line in (headers, *rows):
        click.echo("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def _jobs_table(jobs: Sequence[Job]) -> None:
    rows = [
        [
            job.id,
            job.type,
            job.queue,
            job.status.value + (" (cancel requested)" if job.cancel_requested else ""),
            f"{job.attempts}/{job.max_attempts}" if job.max_attempts else str(job.attempts),
            _cell(ms_to_rfc3339(job.created_at)),
            _cell(job.last_error, ERROR_WIDTH),
        ]
        for job in jobs
    ]
    headers = ["ID", "TYPE", "QUEUE", "STATUS", "ATTEMPTS", "CREATED", "LAST ERROR"]
    _table(headers, rows, "no jobs")


def _job_details(job: Job) -> None:
    data = job.to_json()
    history = data.pop("history")
    width = max(len(name) for name in data)
    for name, value in data.items():
        shown = json.dumps(value, ensure_ascii=False) if name in ("payload", "result") else value
        click.echo(f"{name:<{width}}  {_cell(shown)}")
    for attempt in history:
        click.echo(
            f"attempt {attempt['attempt']}: {attempt['outcome']} on {_cell(attempt['worker'])} "
            f"{_cell(attempt['started_at'])} .. {_cell(attempt['finished_at'])}"
            + (f": {_cell(attempt['error'], 200)}" if attempt["error"] else "")
        )


def _show_job(job: Job, as_json: bool) -> None:
    if as_json:
        _echo_json(job.to_json())
    else:
        _jobs_table([job])


def _as_dict(item: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return dataclasses.asdict(item)
    return dict(item)


def _int(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    try:
        return int(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _time(value: Any) -> str | None:
    ms = _int(value)
    if ms is None and isinstance(value, str):
        try:
            ms = int(float(value))
        except ValueError:
            return None
    return None if ms is None or ms < 0 else ms_to_rfc3339(ms)


def worker_json(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A worker's heartbeat hash (every value a string) as the API shows it."""
    queues = raw.get("queues")
    return {
        "id": raw["id"],
        "host": raw.get("host"),
        "pid": _int(raw.get("pid")),
        "queues": [q for q in queues.split(",") if q] if isinstance(queues, str) else [],
        "concurrency": _int(raw.get("concurrency")),
        "in_flight": _int(raw.get("in_flight")),
        "processed": _int(raw.get("processed")),
        "failed": _int(raw.get("failed")),
        "started_at": _time(raw.get("started_at")),
        "last_seen": _time(raw.get("last_seen")),
    }


# --- the commands --------------------------------------------------------------------------


@main.command("enqueue")
@click.argument("job_type", metavar="TYPE")
@click.option(
    "--payload",
    callback=_payload,
    default=None,
    metavar="JSON",
    help="The job's payload, a JSON document (default: null).",
)
@click.option("--queue", default=None, help="Queue to put the job on (default: default).")
@click.option(
    "--delay",
    "delay_seconds",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Run the job this many seconds from now.",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=None,
    help="Attempts before the job fails for good (default: the handler's or the worker's).",
)
@click.option(
    "--timeout",
    "timeout_seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Time limit of one attempt (default: the handler's or the worker's).",
)
@click.option(
    "--idempotency-key",
    default=None,
    metavar="KEY",
    help="Repeating an enqueue with the same key returns the first job instead of a new one.",
)
@client_options
def enqueue_command(
    job_type: str,
    payload: Any,
    queue: str | None,
    delay_seconds: float | None,
    max_attempts: int | None,
    timeout_seconds: float | None,
    idempotency_key: str | None,
    config: str | None,
    api_url: str | None,
    api_token: str | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """Create a job of TYPE."""
    options: dict[str, Any] = {
        "max_attempts": max_attempts,
        "timeout_seconds": timeout_seconds,
        "delay_seconds": delay_seconds,
    }
    if queue is not None:
        options["queue"] = queue
    if idempotency_key is not None:
        options["idempotency_key"] = idempotency_key
    with _producer(config, api_url, api_token, flags) as client:
        job = client.enqueue(job_type, payload, **options)
    _show_job(job, as_json)


@main.command("get")
@click.argument("job_id", metavar="ID")
@client_options
def get_command(
    job_id: str,
    config: str | None,
    api_url: str | None,
    api_token: str | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """Show the job ID: every field, payload, result and attempt history."""
    with _producer(config, api_url, api_token, flags) as client:
        job = client.get(job_id)
    if as_json:
        _echo_json(job.to_json())
    else:
        _job_details(job)


@main.command("cancel")
@click.argument("job_id", metavar="ID")
@client_options
def cancel_command(
    job_id: str,
    config: str | None,
    api_url: str | None,
    api_token: str | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """Cancel the job ID: at once, or, when it is running, by asking its worker to stop."""
    with _producer(config, api_url, api_token, flags) as client:
        outcome, job = client.cancel(job_id)
    _show_job(job, as_json)
    if not as_json and outcome.value == "requested":
        click.echo("the job is running: its worker was asked to stop", err=True)


@main.command("retry")
@click.argument("job_id", metavar="ID")
@client_options
def retry_command(
    job_id: str,
    config: str | None,
    api_url: str | None,
    api_token: str | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """Run the failed or canceled job ID again (attempts start over; history is kept)."""
    with _producer(config, api_url, api_token, flags) as client:
        job = client.replay(job_id)
    _show_job(job, as_json)


@main.command("ls")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    callback=_statuses,
    metavar="STATUS[,STATUS...]",
    help="Only jobs in these statuses (repeatable).",
)
@click.option("--queue", default=None, help="Only jobs of this queue.")
@click.option("--type", "job_type", default=None, help="Only jobs of this type.")
@click.option(
    "--limit", type=click.IntRange(1, 500), default=50, show_default=True, help="Jobs per page."
)
@click.option("--cursor", default=None, help="Where to continue: the previous page's cursor.")
@client_options
def ls_command(
    statuses: tuple[str, ...],
    queue: str | None,
    job_type: str | None,
    limit: int,
    cursor: str | None,
    config: str | None,
    api_url: str | None,
    api_token: str | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """List jobs, newest first, one page at a time."""
    with _producer(config, api_url, api_token, flags) as client:
        page = client.list(
            status=list(statuses), queue=queue, type=job_type, limit=limit, cursor=cursor
        )
    if as_json:
        _echo_json({"items": [j.to_json() for j in page.items], "next_cursor": page.next_cursor})
        return
    _jobs_table(page.items)
    if page.next_cursor:
        click.echo(f"more: --cursor {page.next_cursor}")


QUEUE_COLUMNS = (
    ("NAME", "name"),
    ("WAITING", "waiting"),
    ("PENDING", "pending_in_group"),
    ("RUNNING", "running"),
    ("SCHEDULED", "scheduled"),
    ("RETRYING", "retrying"),
    ("FAILED", "failed"),
    ("COMPLETED", "completed"),
    ("CANCELED", "canceled"),
    ("CONSUMERS", "consumers"),
    ("OLDEST WAITING (S)", "oldest_waiting_age_seconds"),
)

WORKER_COLUMNS = (
    ("ID", "id"),
    ("HOST", "host"),
    ("PID", "pid"),
    ("QUEUES", "queues"),
    ("CONCURRENCY", "concurrency"),
    ("IN FLIGHT", "in_flight"),
    ("PROCESSED", "processed"),
    ("FAILED", "failed"),
    ("STARTED", "started_at"),
    ("LAST SEEN", "last_seen"),
)


def _show_items(
    items: Sequence[dict[str, Any]],
    columns: Sequence[tuple[str, str]],
    as_json: bool,
    empty: str,
) -> None:
    if as_json:
        _echo_json({"items": list(items)})
        return
    rows = [[_cell(item.get(key)) for _, key in columns] for item in items]
    _table([title for title, _ in columns], rows, empty)


@main.command("queues")
@client_options
def queues_command(
    config: str | None,
    api_url: str | None,
    api_token: str | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """Show every queue: jobs waiting, running, delayed and finished, consumers, backlog age."""
    with _producer(config, api_url, api_token, flags) as client:
        items = sorted((_as_dict(q) for q in client.queues()), key=lambda q: str(q.get("name")))
    _show_items(items, QUEUE_COLUMNS, as_json, "no queues")


@main.command("workers")
@client_options
def workers_command(
    config: str | None,
    api_url: str | None,
    api_token: str | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """Show the live workers: where they run, what they consume, how busy they are."""
    with _producer(config, api_url, api_token, flags) as client:
        workers = client.workers()
    # The API already answers in JSON types; the registry keeps strings.
    items = [dict(w) if api_url else worker_json(w) for w in workers]
    items.sort(key=lambda w: str(w["id"]))
    _show_items(items, WORKER_COLUMNS, as_json, "no live workers")


COMMANDS = (
    enqueue_command,
    get_command,
    cancel_command,
    retry_command,
    ls_command,
    queues_command,
    workers_command,
)

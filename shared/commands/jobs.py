"""The job commands: enqueue, get, cancel, replay (alias: retry) and ls."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import click

from conveyor.client_api import EnqueueOptions
from conveyor.commands.backend import producer
from conveyor.commands.options import client_options, parse_payload, parse_statuses, parse_time
from conveyor.commands.output import echo_json, job_details, jobs_table, show_job
from conveyor.job import BULKY_FIELDS


@click.command("enqueue")
@click.argument("job_type", metavar="TYPE")
@click.option(
    "--payload",
    callback=parse_payload,
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
    "--expire-after",
    "expire_after_seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Never start the job later than this many seconds from now (it ends expired).",
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
@click.option(
    "--limit-key",
    default=None,
    metavar="KEY",
    help="Count the job under this key's concurrency and rate limits too (a tenant id, say).",
)
@click.option(
    "--unique-key",
    default=None,
    metavar="KEY",
    help="While a job of the queue with this key is not finished, return it instead of "
    "creating one.",
)
@click.option(
    "--unique-for",
    "unique_for_seconds",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Keep the --unique-key held this long after the job finished.",
)
@client_options
def enqueue_command(
    job_type: str,
    payload: Any,
    queue: str | None,
    delay_seconds: float | None,
    expire_after_seconds: float | None,
    max_attempts: int | None,
    timeout_seconds: float | None,
    idempotency_key: str | None,
    limit_key: str | None,
    unique_key: str | None,
    unique_for_seconds: float | None,
    config: str | None,
    api_url: str | None,
    api_token: str | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """Create a job of TYPE."""
    options: EnqueueOptions = {
        "max_attempts": max_attempts,
        "timeout_seconds": timeout_seconds,
        "delay_seconds": delay_seconds,
        "expire_after_seconds": expire_after_seconds,
        "idempotency_key": idempotency_key,
        "limit_key": limit_key,
        "unique_key": unique_key,
        "unique_for_seconds": unique_for_seconds,
    }
    if queue is not None:
        options["queue"] = queue
    with producer(config, api_url, api_token, flags) as client:
        job = client.enqueue(job_type, payload, **options)
    show_job(job, as_json)


@click.command("get")
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
    with producer(config, api_url, api_token, flags) as client:
        job = client.get(job_id)
    if as_json:
        echo_json(job.to_json())
    else:
        job_details(job)


@click.command("cancel")
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
    with producer(config, api_url, api_token, flags) as client:
        outcome, job = client.cancel(job_id)
    show_job(job, as_json)
    if not as_json and outcome.value == "requested":
        click.echo("the job is running: its worker was asked to stop", err=True)


@click.command("replay")
@click.argument("job_id", metavar="ID")
@client_options
def replay_command(
    job_id: str,
    config: str | None,
    api_url: str | None,
    api_token: str | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """Run the failed or canceled job ID again (attempts start over; history is kept)."""
    with producer(config, api_url, api_token, flags) as client:
        job = client.replay(job_id)
    show_job(job, as_json)


@click.command("ls")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    callback=parse_statuses,
    metavar="STATUS[,STATUS...]",
    help="Only jobs in these statuses (repeatable).",
)
@click.option("--queue", default=None, help="Only jobs of this queue.")
@click.option("--type", "job_type", default=None, help="Only jobs of this type.")
@click.option(
    "--limit", type=click.IntRange(1, 500), default=50, show_default=True, help="Jobs per page."
)
@click.option("--cursor", default=None, help="Where to continue: the previous page's cursor.")
@click.option(
    "--created-after",
    callback=parse_time,
    default=None,
    metavar="TIME",
    help="Only jobs created at or after this RFC 3339 time (with its offset, e.g. Z).",
)
@click.option(
    "--created-before",
    callback=parse_time,
    default=None,
    metavar="TIME",
    help="Only jobs created at or before this RFC 3339 time (with its offset, e.g. Z).",
)
@click.option(
    "--include",
    "include",
    multiple=True,
    type=click.Choice(["payload", "result"]),
    help="Also read each job's payload or result (repeatable; shown with --json). "
    "Without it a page of large jobs costs their states alone.",
)
@client_options
def ls_command(
    statuses: tuple[str, ...],
    queue: str | None,
    job_type: str | None,
    limit: int,
    cursor: str | None,
    created_after: datetime | None,
    created_before: datetime | None,
    include: tuple[str, ...],
    config: str | None,
    api_url: str | None,
    api_token: str | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """List jobs, newest first, one page at a time."""
    with producer(config, api_url, api_token, flags) as client:
        page = client.list(
            status=list(statuses),
            queue=queue,
            type=job_type,
            limit=limit,
            cursor=cursor,
            created_after=created_after,
            created_before=created_before,
            include=include,
        )
    if as_json:
        omit = BULKY_FIELDS - set(include)
        items = [j.to_json(omit) for j in page.items]
        echo_json({"items": items, "next_cursor": page.next_cursor})
        return
    jobs_table(page.items)
    if page.next_cursor:
        click.echo(f"more: --cursor {page.next_cursor}")


def alias(command: click.Command, name: str) -> click.Command:
    """`command` under another name, left out of ``--help`` (an older name kept working)."""
    twin = copy.copy(command)
    twin.name = name
    twin.hidden = True
    return twin


retry_alias = alias(replay_command, "retry")

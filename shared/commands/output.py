"""What the commands print: tables for people, or the API's JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from conveyor.ids import ms_to_rfc3339

if TYPE_CHECKING:
    from conveyor.job import Job

ERROR_WIDTH = 40  # characters of last_error shown in a table


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def cell(value: Any, width: int | None = None) -> str:
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


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> None:
    if not rows:
        click.echo(empty)
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for line in (headers, *rows):
        click.echo("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def jobs_table(jobs: Sequence[Job]) -> None:
    rows = [
        [
            job.id,
            job.type,
            job.queue,
            job.status.value + (" (cancel requested)" if job.cancel_requested else ""),
            f"{job.attempts}/{job.max_attempts}" if job.max_attempts else str(job.attempts),
            cell(ms_to_rfc3339(job.created_at)),
            cell(job.last_error, ERROR_WIDTH),
        ]
        for job in jobs
    ]
    headers = ["ID", "TYPE", "QUEUE", "STATUS", "ATTEMPTS", "CREATED", "LAST ERROR"]
    table(headers, rows, "no jobs")


def job_details(job: Job) -> None:
    data = job.to_json()
    history = data.pop("history")
    width = max(len(name) for name in data)
    for name, value in data.items():
        shown = json.dumps(value, ensure_ascii=False) if name in ("payload", "result") else value
        click.echo(f"{name:<{width}}  {cell(shown)}")
    for attempt in history:
        click.echo(
            f"attempt {attempt['attempt']}: {attempt['outcome']} on {cell(attempt['worker'])} "
            f"{cell(attempt['started_at'])} .. {cell(attempt['finished_at'])}"
            + (f": {cell(attempt['error'], 200)}" if attempt["error"] else "")
        )


def show_job(job: Job, as_json: bool) -> None:
    if as_json:
        echo_json(job.to_json())
    else:
        jobs_table([job])


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
    ("EXPIRED", "expired"),
    ("PAUSED", "paused"),
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


def show_items(
    items: Sequence[dict[str, Any]],
    columns: Sequence[tuple[str, str]],
    as_json: bool,
    empty: str,
) -> None:
    if as_json:
        echo_json({"items": list(items)})
        return
    rows = [[cell(item.get(key)) for _, key in columns] for item in items]
    table([title for title, _ in columns], rows, empty)

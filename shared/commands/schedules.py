"""`conveyor schedules`: list, show, put and delete periodic schedules (Redis only)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import click

from conveyor.commands.backend import redis_only
from conveyor.commands.options import client_options
from conveyor.commands.output import cell, echo_json, table
from conveyor.ids import ms_to_rfc3339

if TYPE_CHECKING:
    from conveyor.client import SyncClient
    from conveyor.store.schedules import Schedule

COLUMNS = ["NAME", "TYPE", "QUEUE", "WHEN", "OVERLAP", "CATCH UP", "NEXT RUN", "LAST RUN"]


def _client(
    config: str | None, api_url: str | None, flags: Any
) -> AbstractContextManager[SyncClient]:
    return redis_only(
        config,
        api_url,
        flags,
        refusal=(
            "schedules talks to Redis directly: run it without --api-url (and without "
            "CONVEYOR_API_URL), or use the HTTP API's /schedules routes"
        ),
    )


def _when(s: Schedule) -> str:
    if s.spec.every_seconds is not None:
        return f"every {s.spec.every_seconds}s"
    return f"{s.spec.cron} ({s.spec.timezone})"


def _rows(schedules: Sequence[Schedule]) -> list[list[str]]:
    return [
        [
            s.spec.name,
            s.spec.type,
            s.spec.queue,
            _when(s),
            s.spec.overlap.value,
            s.spec.catch_up.value,
            cell(ms_to_rfc3339(s.next_run_at)),
            cell(ms_to_rfc3339(s.last_run_at)),
        ]
        for s in schedules
    ]


@click.group("schedules", invoke_without_command=True)
@click.pass_context
def schedules_command(ctx: click.Context) -> None:
    """Periodic schedules: each fire time creates one job (run by `conveyor scheduler`).

    Without a subcommand, lists them (as `conveyor schedules list`)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_command)


@schedules_command.command("list")
@client_options
def list_command(
    config: str | None = None,
    api_url: str | None = None,
    api_token: str | None = None,
    as_json: bool = False,
    **flags: Any,
) -> None:
    """Every schedule, by name."""
    with _client(config, api_url, flags) as client:
        found = client.schedules()
    if as_json:
        echo_json({"items": [s.to_json() for s in found], "total": len(found)})
    else:
        table(COLUMNS, _rows(found), "no schedules")


@schedules_command.command("show")
@click.argument("name")
@client_options
def show_command(
    name: str,
    config: str | None,
    api_url: str | None,
    api_token: str | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """One schedule, with its next and last fire (as JSON with --json)."""
    with _client(config, api_url, flags) as client:
        found = client.schedule(name)
    if as_json:
        echo_json(found.to_json())
    else:
        table([*COLUMNS, "LAST JOB"], [[*_rows([found])[0], cell(found.last_job_id)]], "")


def _payload(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        raise click.BadParameter("must be JSON") from None


@schedules_command.command("put")
@click.argument("name")
@click.option("--type", "job_type", required=True, help="The type of the jobs it creates.")
@click.option("--cron", default=None, help="5 fields, or 6 with leading seconds.")
@click.option("--timezone", default=None, help="The IANA time zone of --cron (default UTC).")
@click.option("--every", "every_seconds", type=int, default=None, help="Seconds between fires.")
@click.option("--payload", default=None, callback=_payload, help="The jobs' payload (JSON).")
@click.option("--queue", default=None, help="The jobs' queue (default: default).")
@click.option("--max-attempts", type=int, default=None)
@click.option("--timeout", "timeout_seconds", type=float, default=None, help="Seconds per attempt.")
@click.option("--overlap", type=click.Choice(["allow", "skip"]), default=None)
@click.option("--catch-up", "catch_up", type=click.Choice(["one", "none"]), default=None)
@client_options
def put_command(
    name: str,
    job_type: str,
    config: str | None,
    api_url: str | None,
    api_token: str | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Create or replace the schedule NAME (exactly one of --cron and --every)."""
    fields = (
        "cron",
        "timezone",
        "every_seconds",
        "payload",
        "queue",
        "max_attempts",
        "timeout_seconds",
        "overlap",
        "catch_up",
    )
    definition = {k: options.pop(k) for k in fields if options.get(k) is not None}
    for k in fields:
        options.pop(k, None)
    with _client(config, api_url, options) as client:
        stored = client.put_schedule(name, job_type, **definition)
    if as_json:
        echo_json(stored.to_json())
    else:
        click.echo(f"schedule {name} stored; next run at {ms_to_rfc3339(stored.next_run_at)}")


@schedules_command.command("delete")
@click.argument("name")
@client_options
def delete_command(
    name: str,
    config: str | None,
    api_url: str | None,
    api_token: str | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """Delete the schedule NAME; the jobs it created stay."""
    with _client(config, api_url, flags) as client:
        client.delete_schedule(name)
    if as_json:
        echo_json({"name": name, "deleted": True})
    else:
        click.echo(f"schedule {name} deleted")

"""`conveyor limits`: show, set and remove a queue's concurrency and rate limits (ADR
0017). Talks to Redis directly only, as purge does (the HTTP client has no limit calls;
over HTTP, use the /queues/{name}/limits routes)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import click

from conveyor.commands.backend import redis_only
from conveyor.commands.options import client_options
from conveyor.commands.output import echo_json, table

if TYPE_CHECKING:  # the client is imported when a command runs, not at start-up
    from conveyor.client import SyncClient


def _client(
    config: str | None, api_url: str | None, flags: Any
) -> AbstractContextManager[SyncClient]:
    return redis_only(
        config,
        api_url,
        flags,
        refusal=(
            "limits talks to Redis directly: run it without --api-url (and without "
            "CONVEYOR_API_URL), or use the API's /queues/{name}/limits routes"
        ),
    )


@click.group("limits")
def limits_group() -> None:
    """Concurrency and rate limits of a queue, per limit key: `queue` (the whole queue),
    `type:<job type>`, or a value jobs carry in their limit_key."""


@limits_group.command("ls")
@click.option("--queue", required=True, help="The queue whose limits to show.")
@client_options
def limits_ls(
    queue: str,
    config: str | None,
    api_url: str | None,
    api_token: str | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """The limit keys of a queue with their limits, running slots and held jobs."""
    with _client(config, api_url, flags) as client:
        states = client.limits(queue)
    if as_json:
        echo_json({"queue": queue, "limits": [s.to_json() for s in states]})
        return
    rows = [
        [
            s.key,
            "-" if s.limit.max_running is None else str(s.limit.max_running),
            "-" if s.limit.max_per_second is None else f"{s.limit.max_per_second:g}",
            "-" if s.limit.burst is None else str(s.limit.burst),
            str(s.running),
            str(s.held),
        ]
        for s in states
    ]
    headers = ["KEY", "MAX_RUNNING", "MAX_PER_SECOND", "BURST", "RUNNING", "HELD"]
    table(headers, rows, f"queue {queue} has no limits")


@limits_group.command("set")
@click.argument("key")
@click.option("--queue", required=True, help="The queue the limit applies to.")
@click.option("--max-running", type=int, default=None, help="At most this many running at once.")
@click.option(
    "--max-per-second", type=float, default=None, help="Starts spread to this many per second."
)
@click.option("--burst", type=int, default=None, help="With --max-per-second: starts at once.")
@client_options
def limits_set(
    key: str,
    queue: str,
    max_running: int | None,
    max_per_second: float | None,
    burst: int | None,
    config: str | None,
    api_url: str | None,
    api_token: str | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """Set the limits of KEY on a queue (replacing what it had)."""
    with _client(config, api_url, flags) as client:
        created = client.set_limit(
            queue, key, max_running=max_running, max_per_second=max_per_second, burst=burst
        )
    if as_json:
        echo_json({"queue": queue, "key": key, "created": created})
    else:
        click.echo(f"{'set' if created else 'replaced'} the limits of {key} on queue {queue}")


@limits_group.command("rm")
@click.argument("key")
@click.option("--queue", required=True, help="The queue the limit applies to.")
@client_options
def limits_rm(
    key: str,
    queue: str,
    config: str | None,
    api_url: str | None,
    api_token: str | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """Remove the limits of KEY on a queue; the jobs it held start."""
    with _client(config, api_url, flags) as client:
        removed = client.delete_limit(queue, key)
    if as_json:
        echo_json({"queue": queue, "key": key, "removed": removed})
    elif removed:
        click.echo(f"removed the limits of {key} on queue {queue}")
    else:
        click.echo(f"queue {queue} has no limits for {key}")

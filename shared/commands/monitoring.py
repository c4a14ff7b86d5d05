"""The commands that show the system: queues and workers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from time import sleep
from typing import Any

import click

from conveyor.client_api import SyncJobsClient
from conveyor.commands.backend import producer
from conveyor.commands.failures import CommandFailed, InvalidInput
from conveyor.commands.options import client_options
from conveyor.commands.output import QUEUE_COLUMNS, WORKER_COLUMNS, show_items

MIN_INTERVAL_SECONDS = 0.1


@click.command("queues")
@click.option("--watch", is_flag=True, help="Redraw the table every interval until Ctrl-C.")
@click.option(
    "--interval",
    "interval_seconds",
    type=click.FloatRange(min=MIN_INTERVAL_SECONDS),
    default=2.0,
    show_default=True,
    metavar="SECONDS",
    help="Time between two redraws with --watch.",
)
@click.option(
    "--iterations",
    type=click.IntRange(min=1),
    default=None,
    hidden=True,
    help="With --watch: stop after this many redraws.",
)
@client_options
def queues_command(
    watch: bool,
    interval_seconds: float,
    iterations: int | None,
    config: str | None,
    api_url: str | None,
    api_token: str | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """Show every queue: jobs waiting, running, delayed and finished, consumers, backlog age.

    With --watch, the table is read and drawn again every --interval seconds (one read of
    every queue's statistics each time) until Ctrl-C.
    """
    with producer(config, api_url, api_token, flags) as client:
        if not watch:
            _show_queues(client, as_json)
            return
        drawn = 0
        try:
            while True:
                items = _queue_items(client)  # read first: the screen is cleared only after
                if not as_json:
                    click.clear()
                    click.echo(f"every {interval_seconds:g}s, Ctrl-C to stop  {_now()}")
                show_items(items, QUEUE_COLUMNS, as_json, "no queues")
                drawn += 1
                if iterations is not None and drawn >= iterations:
                    return
                sleep(interval_seconds)
        except KeyboardInterrupt:
            return


def _queue_items(client: SyncJobsClient) -> list[dict[str, Any]]:
    return [q.to_json() for q in sorted(client.queues(), key=lambda q: q.name)]


def _show_queues(client: SyncJobsClient, as_json: bool) -> None:
    show_items(_queue_items(client), QUEUE_COLUMNS, as_json, "no queues")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@click.command("workers")
@client_options
def workers_command(
    config: str | None,
    api_url: str | None,
    api_token: str | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """Show the live workers: where they run, what they consume, how busy they are."""
    with producer(config, api_url, api_token, flags) as client:
        workers = client.workers()
    items = [w.to_json() for w in sorted(workers, key=lambda w: w.id)]
    show_items(items, WORKER_COLUMNS, as_json, "no live workers")


@click.command("resize")
@click.argument("target", metavar="WORKER_ID|QUEUE")
@click.argument("concurrency", metavar="N|default")
@click.option(
    "--queue",
    "for_queue",
    is_flag=True,
    help="TARGET is a queue: resize every worker of it (a worker's own size wins).",
)
@client_options
def resize_command(
    target: str,
    concurrency: str,
    for_queue: bool,
    config: str | None,
    api_url: str | None,
    api_token: str | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """Change how many jobs a running worker runs at once (within a second, no restart);
    `default` clears it: back to the queue's size or the worker's own."""
    if concurrency == "default":
        size = None
    elif concurrency.isascii() and concurrency.isdigit():
        size = int(concurrency)
    else:
        raise InvalidInput("concurrency must be a positive integer or 'default'")
    with producer(config, api_url, api_token, flags) as client:
        if for_queue:
            found = client.resize_queue(target, size)
        else:
            found = client.resize_worker(target, size)
    if not found:
        raise CommandFailed(f"no {'queue' if for_queue else 'live worker'} named {target}")
    kind = "queue" if for_queue else "worker"
    if as_json:
        click.echo(json.dumps({kind: target, "concurrency": size}))
    else:
        click.echo(f"{kind} {target}: concurrency {'default' if size is None else size}")

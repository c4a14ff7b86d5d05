"""The commands that pause and resume a queue: while it is paused, none of its jobs starts
(running ones finish); the pause is kept in Redis and outlives restarts."""

from __future__ import annotations

from typing import Any

import click

from conveyor.commands.backend import producer
from conveyor.commands.failures import CommandFailed
from conveyor.commands.options import client_options
from conveyor.commands.output import QUEUE_COLUMNS, echo_json, show_items
from conveyor.values import QueueStats


@click.command("pause")
@click.argument("queue", metavar="QUEUE")
@client_options
def pause_command(
    queue: str,
    config: str | None,
    api_url: str | None,
    api_token: str | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """Pause QUEUE: none of its jobs starts until `conveyor resume QUEUE`.

    Jobs already running finish; new and due jobs wait as pending. Pausing a paused queue
    changes nothing."""
    with producer(config, api_url, api_token, flags) as client:
        _show(queue, client.pause_queue(queue), as_json)


@click.command("resume")
@click.argument("queue", metavar="QUEUE")
@client_options
def resume_command(
    queue: str,
    config: str | None,
    api_url: str | None,
    api_token: str | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """Resume QUEUE: workers start its jobs again (within about a second)."""
    with producer(config, api_url, api_token, flags) as client:
        _show(queue, client.resume_queue(queue), as_json)


def _show(queue: str, stats: QueueStats | None, as_json: bool) -> None:
    if stats is None:
        raise CommandFailed(f"no queue is named {queue}")
    if as_json:
        echo_json(stats.to_json())
    else:
        show_items([stats.to_json()], QUEUE_COLUMNS, False, "no queues")

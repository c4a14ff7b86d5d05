"""The commands that show the system: queues and workers."""

from __future__ import annotations

from typing import Any

from shared.cli import main
from shared.commands.backend import producer
from shared.commands.options import client_options
from shared.commands.output import (
    QUEUE_COLUMNS,
    WORKER_COLUMNS,
    as_dict,
    show_items,
    worker_json,
)


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
    with producer(config, api_url, api_token, flags) as client:
        items = sorted((as_dict(q) for q in client.queues()), key=lambda q: str(q.get("name")))
    show_items(items, QUEUE_COLUMNS, as_json, "no queues")


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
    with producer(config, api_url, api_token, flags) as client:
        workers = client.workers()
    # The API already answers in JSON types; the registry keeps strings.
    items = [dict(w) if api_url else worker_json(w) for w in workers]
    items.sort(key=lambda w: str(w["id"]))
    show_items(items, WORKER_COLUMNS, as_json, "no live workers")

"""The commands that change data wholesale: purge."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import click

from conveyor.commands.failures import CommandFailed, InvalidInput, failures
from conveyor.commands.options import client_options
from conveyor.commands.output import echo_json
from conveyor.commands.settings import settings_from_cli
from conveyor.states import Status

FINISHED = sorted(s.value for s in Status if s.terminal)


@click.command("purge")
@click.option("--queue", required=True, help="The queue whose jobs go.")
@click.option(
    "--status",
    required=True,
    type=click.Choice(FINISHED),
    help="Which finished jobs go.",
)
@click.option("--yes", "assume_yes", is_flag=True, help="Do not ask for confirmation.")
@client_options
def purge_command(
    queue: str,
    status: str,
    assume_yes: bool,
    config: str | None,
    api_url: str | None,
    api_token: str | None,
    as_json: bool,
    **flags: Any,
) -> None:
    """Delete every finished job of one queue in one status now, before its retention ends.

    Purged jobs are gone: they cannot be shown or replayed afterwards. Asks first, showing
    how many jobs would go, unless --yes. Talks to Redis directly only: the HTTP API has no
    purge route.
    """
    if api_url:
        raise InvalidInput(
            "purge talks to Redis directly and the HTTP API has no purge route: "
            "run it without --api-url (and without CONVEYOR_API_URL), with the Redis settings"
        )
    from conveyor.client import SyncClient
    from conveyor.ids import validate_queue

    settings = settings_from_cli(config, **flags)
    with ExitStack() as stack:
        stack.enter_context(failures(settings.redis_url))
        name = validate_queue(queue, "queue")
        client = SyncClient.from_url(
            settings.redis_url,
            key_prefix=settings.key_prefix,
            result_ttl_seconds=settings.result_ttl_seconds,
            timeout_seconds=settings.redis_timeout_seconds,
        )
        stack.callback(client.close)
        stats = client.queue(name)
        if stats is None:
            raise CommandFailed(f"no queue is named {name}")
        count = int(getattr(stats, status))
        if count and not assume_yes:
            click.confirm(
                f"Delete {count} {status} job{'' if count == 1 else 's'} of queue {name}? "
                "They cannot be recovered",
                abort=True,
                err=True,
            )
        purged = client.purge(name, status) if count else 0
    if as_json:
        echo_json({"queue": name, "status": status, "purged": purged})
    else:
        click.echo(f"purged {purged} {status} job{'' if purged == 1 else 's'} of queue {name}")

"""The `conveyor` command group.

The group lives in shared/ and must not import api/ or worker/ (dependencies point inward),
so their commands are plugged in through the ``conveyor.commands`` entry point group and
loaded only when asked for. A command that fails to import is skipped with a warning on
stderr: a broken optional part must not take `conveyor config` down with it.

The producer commands (`conveyor.commands`) know nothing of this group: they are added to
it here, and take their settings flags from `conveyor.commands.settings` (re-exported here
for the API's and the worker's commands), so no module of theirs imports this one.
"""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import click

from conveyor.commands import COMMANDS
from conveyor.commands.settings import CONFIG_ERROR_EXIT as CONFIG_ERROR_EXIT
from conveyor.commands.settings import resolution_from_cli, settings_options
from conveyor.commands.settings import setting_option as setting_option
from conveyor.commands.settings import settings_from_cli as settings_from_cli
from conveyor.config import effective_config

ENTRY_POINT_GROUP = "conveyor.commands"

__all__ = [
    "CONFIG_ERROR_EXIT",
    "ENTRY_POINT_GROUP",
    "main",
    "resolution_from_cli",
    "setting_option",
    "settings_from_cli",
    "settings_options",
]


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _load(ep: EntryPoint) -> click.Command | None:
    try:
        command = ep.load()
    except Exception as exc:
        click.echo(
            f"conveyor: warning: skipping command {ep.name!r} ({ep.value}): "
            f"{type(exc).__name__}: {exc}",
            err=True,
        )
        return None
    if not isinstance(command, click.Command):
        click.echo(
            f"conveyor: warning: skipping command {ep.name!r} ({ep.value}): not a click command",
            err=True,
        )
        return None
    return command


class ConveyorGroup(click.Group):
    """A group whose commands are its own plus those of the entry point group, loaded lazily
    (once each) so `conveyor config` never imports the API or the worker."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plugins: dict[str, click.Command | None] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_entry_points()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        if cmd_name not in self._plugins:
            ep = _entry_points().get(cmd_name)
            if ep is None:
                return None
            self._plugins[cmd_name] = _load(ep)
        return self._plugins[cmd_name]


@click.group(cls=ConveyorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="conveyor", prog_name="conveyor")
def main() -> None:
    """Conveyor: a distributed job processor on Redis Streams.

    Settings come from defaults < a TOML file (--config or CONVEYOR_CONFIG) < CONVEYOR_*
    environment variables < flags. `conveyor config` shows the result.
    """


# --- conveyor config -----------------------------------------------------------------------


@main.command("config")
@settings_options
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead.")
def config_command(config: str | None, as_json: bool, **flags: Any) -> None:
    """Print the effective configuration (passwords masked) and where each value came from.

    Exits with status 2, listing every problem, when the configuration is invalid.
    """
    resolution = resolution_from_cli(config, **flags)
    shown = effective_config(resolution.settings)
    if as_json:
        click.echo(json.dumps(shown, indent=2))
        return
    values = {name: json.dumps(value) for name, value in shown.items()}
    name_width = max(len(name) for name in values)
    value_width = max(len(value) for value in values.values())
    for name, value in values.items():
        source = resolution.sources[name]
        click.echo(f"{name:<{name_width}} = {value:<{value_width}}  ({source})")


for _command in COMMANDS:
    main.add_command(_command)

if __name__ == "__main__":
    main(prog_name="conveyor")

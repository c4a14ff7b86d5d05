"""The `conveyor` command group.

The group lives in shared/ and must not import api/ or worker/ (dependencies point inward),
so their commands are plugged in through the ``conveyor.commands`` entry point group and
loaded only when asked for. A command that fails to import is skipped with a warning on
stderr: a broken optional part must not take `conveyor config` down with it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any, NoReturn, TypeVar

import click

from conveyor.config import (
    SPEC_BY_NAME,
    Resolution,
    Settings,
    effective_config,
    load_resolution,
)
from conveyor.errors import ConfigError

ENTRY_POINT_GROUP = "conveyor.commands"
CONFIG_ERROR_EXIT = 2  # the status click uses for usage errors

F = TypeVar("F", bound=Callable[..., Any])


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


# --- settings on the command line ----------------------------------------------------------


def setting_option(name: str, **kwargs: Any) -> Callable[[F], F]:
    """A ``--flag`` for setting `name`, help taken from the settings table. It defaults to
    None, so a flag that is not given never overrides the file or the environment."""
    spec = SPEC_BY_NAME[name]
    kwargs.setdefault("help", f"{spec.help} [env: {spec.env}]")
    option: Callable[[F], F] = click.option(spec.flag, name, default=None, **kwargs)
    return option


_COMMON_SETTINGS = ("redis_url", "key_prefix", "log_level", "log_format")


def settings_options(func: F) -> F:
    """Add ``--config`` and the flags of the settings every command shares.

    The command receives ``config`` and one keyword per setting; pass them on with
    ``settings_from_cli(config, **flags)``.
    """
    options: list[Callable[[F], F]] = [
        click.option(
            "--config",
            "config",
            default=None,
            metavar="PATH",
            help="TOML file of settings [env: CONVEYOR_CONFIG].",
        ),
        *(setting_option(name) for name in _COMMON_SETTINGS),
    ]
    for option in reversed(options):  # the first option listed comes first in --help
        func = option(func)
    return func


def _fail(problems: list[str]) -> NoReturn:
    click.echo("conveyor: invalid configuration:", err=True)
    for problem in problems:
        click.echo(f"  - {problem}", err=True)
    raise SystemExit(CONFIG_ERROR_EXIT)


def resolution_from_cli(config: str | None, **flags: object) -> Resolution:
    """Like `settings_from_cli`, keeping where each value came from."""
    try:
        return load_resolution(config, os.environ, flags)
    except ConfigError as exc:
        _fail(exc.problems)


def settings_from_cli(config: str | None, **flags: object) -> Settings:
    """The settings for a command: file, environment and the given flags (None = not given).

    An invalid configuration prints every problem to stderr and exits with status 2.
    """
    return resolution_from_cli(config, **flags).settings


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


from conveyor import commands as _commands  # noqa: E402, F401  (registers the job commands)

if __name__ == "__main__":
    main(prog_name="conveyor")

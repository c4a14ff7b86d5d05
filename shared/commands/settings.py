"""Settings on the command line: the flags every command shares, and reading them.

Settings come from defaults < a TOML file (--config or CONVEYOR_CONFIG) < CONVEYOR_*
environment variables < flags (`conveyor.config`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import click

from conveyor.config import SPEC_BY_NAME, Resolution, Settings, load_resolution
from conveyor.config_values import url_holds_password
from conveyor.errors import ConfigError

CONFIG_ERROR_EXIT = 2  # the status click uses for usage errors

F = TypeVar("F", bound=Callable[..., Any])


def setting_option(name: str, **kwargs: Any) -> Callable[[F], F]:
    """A ``--flag`` for setting `name`, help taken from the settings table. It defaults to
    None, so a flag that is not given never overrides the file or the environment."""
    spec = SPEC_BY_NAME[name]
    kwargs.setdefault("help", f"{spec.help} [env: {spec.env}]")
    option: Callable[[F], F] = click.option(spec.flag, name, default=None, **kwargs)
    return option


_COMMON_SETTINGS = ("redis_url", "key_prefix", "log_level", "log_format")


def refuse_secret_argument(ctx: click.Context, param: click.Parameter, what: str) -> NoReturn:
    """Refuse a secret given on the command line, where every user of the machine sees it
    (``ps``, /proc, shell history): exit 2, naming where it belongs, never echoing it."""
    spec = SPEC_BY_NAME.get(param.name or "")
    if spec is not None:
        where = f"the environment variable {spec.env} or the config file (--config)"
    else:
        envvar = param.envvar if isinstance(param, click.Option) else None
        where = f"the environment variable {envvar}" if isinstance(envvar, str) else "a file"
    raise click.BadParameter(
        f"{what} must not be given on the command line, where any user of the machine "
        f"can read it (ps); set it in {where} instead",
        ctx=ctx,
        param=param,
    )


def _no_password_on_argv(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    if value is not None and url_holds_password(value):
        refuse_secret_argument(ctx, param, "a Redis URL holding a password")
    return value


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
        *(
            setting_option(name, callback=_no_password_on_argv)
            if name == "redis_url"
            else setting_option(name)
            for name in _COMMON_SETTINGS
        ),
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

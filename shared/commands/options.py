"""The flags the commands share, and the callbacks that parse their values."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click
from click.core import ParameterSource

from conveyor.commands.settings import refuse_secret_argument, settings_options
from conveyor.states import Status

F = TypeVar("F", bound=Callable[..., Any])

API_URL_ENV = "CONVEYOR_API_URL"
API_TOKEN_ENV = "CONVEYOR_API_TOKEN"  # noqa: S105 - the name of a variable, not a token


def client_options(func: F) -> F:
    """The settings flags plus ``--api-url``, ``--api-token`` and ``--json``."""
    options: list[Callable[[F], F]] = [
        settings_options,
        click.option(
            "--api-url",
            "api_url",
            envvar=API_URL_ENV,
            default=None,
            callback=_api_url,
            metavar="URL",
            help=f"Use the HTTP API at this URL instead of Redis directly [env: {API_URL_ENV}].",
        ),
        click.option(
            "--api-token",
            "api_token",
            envvar=API_TOKEN_ENV,
            default=None,
            metavar="TOKEN",
            callback=_token_from_env_only,
            help=(
                f"Bearer token for the HTTP API, from the environment only [env: {API_TOKEN_ENV}]; "
                "on the command line it is refused."
            ),
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _token_from_env_only(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> str | None:
    """The token, unless it was typed on the command line (see `refuse_secret_argument`)."""
    if value is not None and ctx.get_parameter_source("api_token") is ParameterSource.COMMANDLINE:
        refuse_secret_argument(ctx, param, "an API token")
    return value


def _api_url(_: click.Context, __: click.Parameter, value: str | None) -> str | None:
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter("must be an http:// or https:// URL")
    return value


def parse_payload(_: click.Context, __: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON ({exc})") from None


def parse_statuses(
    _: click.Context, __: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    """Repeatable and comma-separated: ``--status failed,canceled --status running``."""
    known = [s.value for s in Status]
    found: list[str] = []
    for value in values:
        for part in value.split(","):
            name = part.strip().lower()
            if name not in known:
                raise click.BadParameter(f"{part.strip()!r} is not one of {', '.join(known)}")
            if name not in found:
                found.append(name)
    return tuple(found)


def parse_time(_: click.Context, __: click.Parameter, value: str | None) -> datetime | None:
    """An RFC 3339 time with its offset (``2026-11-30T12:00:00Z``); None when not given."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("not an RFC 3339 time (e.g. 2026-11-30T12:00:00Z)") from None
    if moment.tzinfo is None:
        raise click.BadParameter("must include its offset from UTC (e.g. Z or +01:00)")
    return moment

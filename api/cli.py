"""`conveyor api`: serve the HTTP API with uvicorn until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
from typing import Any

import click
import uvicorn

from conveyor.api.app import create_app
from conveyor.api.slow_clients import header_deadline_protocol
from conveyor.cli import CONFIG_ERROR_EXIT, settings_from_cli, settings_options
from conveyor.config import env_name
from conveyor.errors import ConfigError
from conveyor.logs import setup_logging, uvicorn_log_config

log = logging.getLogger("conveyor.api")


@click.command("api")
@settings_options
@click.option(
    "--host",
    "api_host",
    default=None,
    help=f"Address to listen on. [env: {env_name('api_host')}]",
)
@click.option(
    "--port",
    "api_port",
    type=click.IntRange(0, 65535),
    default=None,
    help=f"Port to listen on. [env: {env_name('api_port')}]",
)
def api_command(config: str | None, **flags: Any) -> None:
    """Serve the HTTP API: create, inspect, list, cancel and retry jobs."""
    settings = settings_from_cli(config, **flags)
    setup_logging(settings.log_level, settings.log_format)
    try:
        app = create_app(settings)
    except ConfigError as exc:  # e.g. an unreadable tokens file
        click.echo("conveyor: invalid configuration:", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        raise SystemExit(CONFIG_ERROR_EXIT) from None
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=settings.api_host,
            port=settings.api_port,
            log_config=uvicorn_log_config(),
            lifespan="on",
            loop="auto",
            # Bounded connections: beyond the limit uvicorn answers 503 at once; an idle
            # keep-alive connection, or one whose headers come too slowly, is closed.
            # (timeout_keep_alive is typed int but only given to loop.call_later.)
            limit_concurrency=settings.api_limit_concurrency,
            timeout_keep_alive=settings.api_keepalive_timeout_seconds,  # type: ignore[arg-type]
            http=header_deadline_protocol(settings.api_header_timeout_seconds),
        )
    )
    _ignore_replayed_stop_signals()
    server.run()
    if not server.started:  # could not bind, or the lifespan failed: uvicorn logged why
        raise SystemExit(1)
    log.info("api stopped")


def _ignore_replayed_stop_signals() -> None:
    """uvicorn handles SIGTERM/SIGINT itself (graceful shutdown), then restores the
    handlers it found and raises the signal again. With Python's defaults that replay
    would kill the process (SIGTERM) or raise KeyboardInterrupt (SIGINT) after a clean
    shutdown; with these the stop ends in a plain exit 0."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)

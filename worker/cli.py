"""`conveyor worker` and `conveyor scheduler`."""

from __future__ import annotations

import logging
from typing import Any

import click

from conveyor.cli import settings_from_cli, settings_options
from conveyor.import_path import put_first_on_import_path
from conveyor.logs import setup_logging
from conveyor.metrics import SchedulerMetrics, process_registry
from conveyor.redis_conn import check_redis, connect
from conveyor.store.keys import Keys
from conveyor.worker.handlers import builtin
from conveyor.worker.probes import Health, ready_window, serving_probes
from conveyor.worker.process import (
    exit_now_if_tasks_linger,
    exit_now_if_threads_linger,
    run_until_signalled,
)
from conveyor.worker.registry import Registry, default_registry, import_handler_modules
from conveyor.worker.runtime import Worker
from conveyor.worker.scheduler import MAX_SLEEP, Scheduler

log = logging.getLogger("conveyor.worker")


def build_registry(modules: tuple[str, ...], path: tuple[str, ...] = (".",)) -> Registry:
    """The built-in sample handlers plus every `@handler` of the configured modules,
    imported with the folders of `path` first on the import path."""
    if modules:
        put_first_on_import_path(path)
    import_handler_modules(modules)
    return builtin.merged(default_registry)


@click.command("worker")
@settings_options
@click.option(
    "--queues", default=None, help="Comma-separated queues to consume, in priority order."
)
@click.option("--concurrency", type=int, default=None, help="Jobs run at once by this process.")
@click.option("--handlers", default=None, help="Comma-separated modules that register handlers.")
@click.option(
    "--path",
    "handlers_path",
    default=None,
    help="Comma-separated folders to import the handler modules from (default: .).",
)
def worker_command(config: str | None, **flags: Any) -> None:
    """Run a worker process: consume jobs from the queues and run their handlers."""
    settings = settings_from_cli(config, **flags)
    setup_logging(settings.log_level, settings.log_format)
    try:
        registry = build_registry(settings.handlers, settings.handlers_path)
    except Exception as exc:
        raise click.ClickException(str(exc)) from None
    worker = Worker(settings, registry)

    async def main() -> None:
        for warning in await _redis_warnings(settings):
            log.warning(warning)
        async with serving_probes(settings, worker.metrics.registry, worker.health):
            await worker.run()
        exit_now_if_tasks_linger(worker.abandoned)

    run_until_signalled(main(), worker.request_stop)
    exit_now_if_threads_linger()


@click.command("scheduler")
@settings_options
def scheduler_command(config: str | None, **flags: Any) -> None:
    """Run a scheduler: move due delayed and retrying jobs onto their queues, and fire
    periodic schedules."""
    settings = settings_from_cli(config, **flags)
    setup_logging(settings.log_level, settings.log_format)
    redis = connect(settings)
    scheduler = Scheduler(
        redis,
        Keys(settings.key_prefix),
        result_ttl_seconds=settings.result_ttl_seconds,
        metrics=SchedulerMetrics(process_registry(), max_queues=settings.max_queues),
        health=Health(ready_window(settings, floor=3 * MAX_SLEEP)),
        schedule_grace_seconds=settings.schedule_grace_seconds,
    )

    async def main() -> None:
        for warning in await _redis_warnings(settings):
            log.warning(warning)
        try:
            async with serving_probes(settings, scheduler.metrics.registry, scheduler.health):
                await scheduler.run()
        finally:
            await redis.aclose()

    run_until_signalled(main(), scheduler.request_stop)


async def _redis_warnings(settings: Any) -> list[str]:
    """What `check_redis` says about the server, for the start-up log; nothing when Redis
    cannot be asked yet (the process waits for it and says so anyway)."""
    redis = connect(settings)
    try:
        return (await check_redis(redis)).messages
    except Exception:
        return []
    finally:
        await redis.aclose()

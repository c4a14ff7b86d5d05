"""`conveyor dev`: the whole system on one machine, for trying it out.

Starts an API, one worker and one scheduler as child processes. When nothing answers at
the configured Redis URL and it points at this machine, a private redis-server is started
with AOF under ./.conveyor/redis/ (and stopped on exit).

Unless tokens are configured, the API is started open (``CONVEYOR_API_AUTH=none``), for
local use, and the command says so.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from conveyor.cli import settings_from_cli, settings_options
from conveyor.config_redis import Mode, mode_of
from conveyor.redis_conn import answers, describe_url

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}
INSTALL_HINT = (
    "redis-server is not installed. Install it with `sudo apt-get install redis-server` "
    "(Debian/Ubuntu) or `brew install redis` (macOS), or point CONVEYOR_REDIS_URL at a "
    "running Redis."
)


def _answers(url: str) -> bool:
    return answers(url, timeout_seconds=1.0)  # any mode: standalone, Cluster, Sentinel


def start_private_redis(url: str, directory: Path) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise click.ClickException(INSTALL_HINT)
    port = urlsplit(url).port or 6379
    directory.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            binary, "--port", str(port), "--bind", "127.0.0.1",
            "--dir", str(directory), "--appendonly", "yes", "--appendfsync", "everysec",
            "--maxmemory-policy", "noeviction", "--save", "",
            "--logfile", str(directory / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches us, not Redis: it must outlive the workers
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not _answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            raise click.ClickException(
                f"could not start redis-server on port {port}; see {directory / 'redis.log'}"
            )
        time.sleep(0.05)
    return process


def _conveyor() -> list[str]:
    script = Path(sys.executable).with_name("conveyor")
    return [str(script)] if script.exists() else [sys.executable, "-m", "conveyor.cli"]


@click.command("dev")
@settings_options
def dev_command(config: str | None, **flags: Any) -> None:
    """Run API + one worker + scheduler (and a private Redis if none answers)."""
    settings = settings_from_cli(config, **flags)
    url = settings.redis_url
    redis_process = None
    if not _answers(url):
        standalone = mode_of(url) is Mode.STANDALONE  # a private server stands in for one
        if not standalone or (urlsplit(url).hostname or "") not in LOCAL_HOSTS:
            raise click.ClickException(f"Redis at {describe_url(url)} does not answer")
        click.echo(f"No Redis answers at {describe_url(url)}: starting one in .conveyor/redis")
        redis_process = start_private_redis(url, Path(".conveyor/redis").resolve())
    env = {**os.environ, "CONVEYOR_REDIS_URL": url, "CONVEYOR_KEY_PREFIX": settings.key_prefix}
    env.update(
        {"CONVEYOR_LOG_LEVEL": settings.log_level, "CONVEYOR_LOG_FORMAT": settings.log_format}
    )
    if config:
        env["CONVEYOR_CONFIG"] = str(Path(config).resolve())
    open_api = not (settings.api_tokens or settings.api_read_tokens or settings.api_tokens_file)
    if open_api:
        env["CONVEYOR_API_AUTH"] = "none"
        click.echo(
            "No API token is configured: starting the API with CONVEYOR_API_AUTH=none, open "
            f"to anyone who reaches {settings.api_host}:{settings.api_port} (local use only; "
            "set CONVEYOR_API_TOKENS to close it)."
        )
    # Own sessions: a terminal's Ctrl-C reaches only this process, which forwards it once
    # (a second signal would tell a worker to skip its grace period).
    children = [
        subprocess.Popen([*_conveyor(), role], env=env, start_new_session=True)
        for role in ("api", "worker", "scheduler")
    ]
    click.echo(
        f"Conveyor is running: API on http://{settings.api_host}:{settings.api_port} "
        f"(try: curl -X POST -H 'Content-Type: application/json' "
        f'-d \'{{"type": "echo", "payload": {{"hello": "world"}}}}\' '
        f"http://{settings.api_host}:{settings.api_port}/jobs). Ctrl-C stops everything."
    )
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    try:
        while not stopping and all(c.poll() is None for c in children):
            time.sleep(0.2)
        if not stopping:
            forward(signal.SIGTERM, None)
        for child in children:
            child.wait()
    finally:
        if redis_process is not None:
            redis_process.terminate()
            redis_process.wait(10)
    codes = [c.returncode for c in children]
    sys.exit(0 if stopping and all(code == 0 for code in codes) else 1)

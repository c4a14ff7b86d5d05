"""Fixtures of the fault suite: each test gets its own redis-server (on a free port, in its
own directory), its own key prefix and ledger, and everything it started is killed in
teardown, whatever the test did to it (SIGSTOP included)."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.system import System
from tests.faults.harness.profile import Profile, current
from tests.faults.harness.recorder import Recorder
from tests.faults.harness.supervisor import Supervisor
from tests.helpers.fault_proxy import FaultProxy
from tests.helpers.redis_server import RedisServer

MakeRedis = Callable[..., RedisServer]
MakeSystem = Callable[..., System]
MakeProxy = Callable[[int], FaultProxy]


@pytest.fixture(scope="session")
def profile() -> Profile:
    return current()


@pytest.fixture
def recorder(request: pytest.FixtureRequest, profile: Profile) -> Recorder:
    return Recorder(request.node.nodeid, profile.name)


@pytest.fixture
def make_redis(tmp_path: Path) -> Iterator[MakeRedis]:
    servers: list[RedisServer] = []

    def make(**options: Any) -> RedisServer:
        server = RedisServer(tmp_path / f"redis-{len(servers)}", **options)
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        if server.process and server.process.poll() is None:
            server.process.send_signal(signal.SIGCONT)
        server.kill()


@pytest.fixture
def make_system(tmp_path: Path, make_redis: MakeRedis) -> Iterator[MakeSystem]:
    """A deployment against `url` with a fresh prefix: `make_system(url, **env)`. Torn down
    before the redis-servers (it depends on `make_redis`), so processes stop cleanly."""
    systems: list[System] = []

    def make(url: str, **env: str) -> System:
        workdir = tmp_path / f"system-{len(systems)}"
        workdir.mkdir()
        deployment = System(url, f"f{uuid.uuid4().hex[:10]}", workdir, env_overrides=dict(env))
        systems.append(deployment)
        return deployment

    yield make
    for deployment in systems:
        for p in deployment.processes:
            p.signal(signal.SIGCONT)
        deployment.stop_all()


@pytest.fixture
def supervisors(make_system: MakeSystem) -> Iterator[list[Supervisor]]:
    """Supervisors register here so teardown stops them before the processes go."""
    running: list[Supervisor] = []
    yield running
    for supervisor in running:
        supervisor.stop()


@pytest.fixture
def make_proxy() -> Iterator[MakeProxy]:
    proxies: list[FaultProxy] = []

    def make(upstream_port: int) -> FaultProxy:
        proxy = FaultProxy(upstream_port)
        proxy.start()
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.stop()

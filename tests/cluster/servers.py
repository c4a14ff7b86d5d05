"""Local multi-node Redis deployments for tests: a 3-master Cluster and a Sentinel set.

Every node runs on a free port with its files in a private directory; `stop()` kills
whatever was started. Readiness is polled with deadlines (`CLUSTER INFO` says ok, the
sentinels know the primary and its replica), never waited for with a fixed sleep.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.helpers.redis_server import RedisServer, free_port
from tests.helpers.wait import eventually

SENTINEL_SERVICE = "conveyor"
# Redis 7 waits 5 s before a diskless full sync, so a new replica would stay out of sync
# (and WAIT would count it out) for that long.
NO_SYNC_DELAY = ["--repl-diskless-sync-delay", "0"]


def wait_in_sync(primary_port: int, replicas: int, timeout: float = 15.0) -> None:
    """Until `replicas` replicas of the primary are online (WAIT counts only those)."""

    def online(client: redis.Redis) -> bool:
        info = client.info("replication")
        states = [info.get(f"slave{i}", {}).get("state") for i in range(replicas)]
        return states == ["online"] * replicas

    eventually(
        lambda: _info_ok(primary_port, online),
        timeout=timeout,
        what=f"{replicas} replica(s) of {primary_port} online",
    )


def _info_ok(port: int, check: Callable[[redis.Redis], bool]) -> bool:
    client = redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1)
    try:
        return check(client)
    except redis.RedisError:
        return False
    finally:
        client.close()


def _cluster_ok(client: redis.Redis) -> bool:
    info = client.execute_command("CLUSTER", "INFO")
    text = info.decode() if isinstance(info, bytes) else str(info)
    return "cluster_state:ok" in text


def _slot_ranges(client: redis.Redis) -> list[tuple[int, int, int]]:
    """(first slot, last slot, master's port) of each range a master serves."""
    return [
        (int(r[0]), int(r[1]), int(r[2][1])) for r in client.execute_command("CLUSTER", "SLOTS")
    ]


@dataclass
class LocalCluster:
    """Cluster-enabled redis-servers (three by default) joined into one cluster without
    replicas; a single one takes every slot itself."""

    directory: Path
    masters: int = 3
    appendonly: bool = False
    replicas: int = 0  # per master
    nodes: list[RedisServer] = field(default_factory=list)

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def start(self, timeout: float = 30.0) -> None:
        self.start_nodes()
        self.form(timeout)

    def start_nodes(self) -> None:
        """The cluster-enabled servers, not yet joined: each answers, none serves a slot."""
        for i in range(self.masters * (1 + self.replicas)):
            port = free_port()
            node = RedisServer(
                self.directory / f"node-{i}",
                port=port,
                appendonly=self.appendonly,
                extra=[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(self.directory / f"nodes-{port}.conf"),
                    "--cluster-node-timeout",
                    "2000",
                    # The bus port defaults to port + 10000, which may be taken or too high.
                    "--cluster-port",
                    str(free_port()),
                    *NO_SYNC_DELAY,
                ],
            )
            node.start()
            self.nodes.append(node)

    def form(self, timeout: float = 30.0) -> None:
        """Join the started nodes into one cluster and wait until every node says ok."""
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed (apt-get install redis-tools)")
        if self.masters == 1:  # `--cluster create` wants three: one node takes every slot
            addslots = ["-p", str(self.ports[0]), "CLUSTER", "ADDSLOTSRANGE", "0", "16383"]
            subprocess.run([cli, *addslots], check=True, stdout=subprocess.DEVNULL)
        else:
            self._create(cli, timeout)
        for port in self.ports:
            eventually(
                lambda p=port: _info_ok(p, _cluster_ok),  # type: ignore[misc]
                timeout=timeout,
                what=f"cluster_state:ok on {port}",
            )
        for port in self.master_ports():
            wait_in_sync(port, self.replicas, timeout)

    def _create(self, cli: str, timeout: float) -> None:
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{p}" for p in self.ports),
                "--cluster-replicas",
                str(self.replicas),
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
        )

    def master_ports(self) -> list[int]:
        """The ports of the masters now serving slots."""
        client = redis.Redis(port=self.live_port(), socket_timeout=2)
        try:
            return sorted({port for *_, port in _slot_ranges(client)})
        finally:
            client.close()

    def live_port(self) -> int:
        """A node that is running (after a test killed some)."""
        return next(n.port for n in self.nodes if n.process and n.process.poll() is None)

    def node_on(self, port: int) -> RedisServer:
        return next(n for n in self.nodes if n.port == port)

    def slot_owner(self, slot: int) -> int:
        """The port of the master serving `slot`."""
        client = redis.Redis(port=self.live_port(), socket_timeout=2)
        try:
            for start, end, port in _slot_ranges(client):
                if start <= slot <= end:
                    return port
        finally:
            client.close()
        raise LookupError(f"no master serves slot {slot}")

    def keyslot(self, key: str) -> int:
        client = redis.Redis(port=self.live_port(), socket_timeout=2)
        try:
            return int(client.execute_command("CLUSTER", "KEYSLOT", key))
        finally:
            client.close()

    def queues_on_each_master(self, prefix: str, per_master: int = 1) -> dict[int, list[str]]:
        """Queue names whose slot falls on each master: port -> names."""
        out: dict[int, list[str]] = {p: [] for p in self.master_ports()}
        n = 0
        while any(len(v) < per_master for v in out.values()):
            name = f"q{n}"
            n += 1
            port = self.slot_owner(self.keyslot(f"{prefix}:{{{name}}}:stream"))
            if len(out[port]) < per_master:
                out[port].append(name)
        return out

    def crossslot_errors(self) -> int:
        """CROSSSLOT errors every node answered since it started (INFO errorstats)."""
        total = 0
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                continue
            client = redis.Redis(port=node.port, socket_timeout=2)
            try:
                stats = client.info("errorstats")
            finally:
                client.close()
            total += int(stats.get("errorstat_CROSSSLOT", {}).get("count", 0))
        return total

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()


@dataclass
class LocalSentinel:
    """A primary with two replicas, watched by three sentinels (quorum 2) that fail over
    within about two seconds of the primary's death."""

    directory: Path
    down_after_ms: int = 1000
    servers: list[RedisServer] = field(default_factory=list)
    sentinel_ports: list[int] = field(default_factory=list)
    sentinels: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        nodes = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{nodes}/{SENTINEL_SERVICE}"

    def start(self, timeout: float = 30.0) -> None:
        primary = RedisServer(self.directory / "primary", extra=NO_SYNC_DELAY)
        primary.start()
        self.servers.append(primary)
        for i in range(2):
            replica = RedisServer(
                self.directory / f"replica-{i}",
                extra=["--replicaof", "127.0.0.1", str(primary.port), *NO_SYNC_DELAY],
            )
            replica.start()
            self.servers.append(replica)
        wait_in_sync(primary.port, replicas=2)
        binary = shutil.which("redis-server")
        assert binary is not None
        for i in range(3):
            port = free_port()
            directory = self.directory / f"sentinel-{i}"
            directory.mkdir(parents=True, exist_ok=True)
            config = directory / "sentinel.conf"  # sentinels rewrite their file: a copy each
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
                f"logfile {directory / 'sentinel.log'}\n"
                f"sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {primary.port} 2\n"
                f"sentinel down-after-milliseconds {SENTINEL_SERVICE} {self.down_after_ms}\n"
                f"sentinel failover-timeout {SENTINEL_SERVICE} 3000\n"
                f"sentinel parallel-syncs {SENTINEL_SERVICE} 2\n"
            )
            self.sentinels.append(
                subprocess.Popen(
                    [binary, str(config), "--sentinel"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            self.sentinel_ports.append(port)
        for port in self.sentinel_ports:
            eventually(
                lambda p=port: _info_ok(p, _sentinel_ready),  # type: ignore[misc]
                timeout=timeout,
                what=f"sentinel on {port} knows the replicas and the other sentinels",
            )

    def primary_port(self) -> int:
        client = redis.Redis(port=self.sentinel_ports[0], socket_timeout=2)
        try:
            _, port = client.execute_command(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_SERVICE
            )
            return int(port)
        finally:
            client.close()

    def server_on(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def stop(self) -> None:
        for process in self.sentinels:
            if process.poll() is None:
                process.kill()
                process.wait(10)
        for server in self.servers:
            server.kill()


def _sentinel_ready(client: redis.Redis) -> bool:
    replicas = client.execute_command("SENTINEL", "REPLICAS", SENTINEL_SERVICE)
    others = client.execute_command("SENTINEL", "SENTINELS", SENTINEL_SERVICE)
    return len(replicas) == 2 and len(others) == 2

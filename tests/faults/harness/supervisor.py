"""A process supervisor for worker processes: restarts any that died, as Kubernetes or
systemd would, and records each kill it was asked to make."""

from __future__ import annotations

import random
import signal
import threading
import time
from dataclasses import dataclass, field

from tests.e2e.system import Process, System


@dataclass(frozen=True, slots=True)
class Kill:
    pid: int
    at: float  # time.time()


@dataclass
class Supervisor:
    system: System
    count: int
    env: dict[str, str] = field(default_factory=dict)
    restart_delay: float = 0.1
    workers: list[Process] = field(default_factory=list)
    kills: list[Kill] = field(default_factory=list)
    restarts: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        for _ in range(self.count):
            self.workers.append(self.system.start("worker", **self.env))
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.restart_delay):
            with self._lock:
                for i, process in enumerate(self.workers):
                    if process.popen.poll() is not None and not self._stop.is_set():
                        self.workers[i] = self.system.start("worker", **self.env)
                        self.restarts += 1

    def live(self) -> list[Process]:
        with self._lock:
            return [p for p in self.workers if p.popen.poll() is None]

    def kill_random(self) -> Kill | None:
        """SIGKILL one live worker; the watcher starts a new one."""
        with self._lock:
            live = [p for p in self.workers if p.popen.poll() is None]
            if not live:
                return None
            victim = random.choice(live)
            kill = Kill(victim.popen.pid, time.time())
            victim.signal(signal.SIGKILL)
            victim.popen.wait(10)
            self.kills.append(kill)
            return kill

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

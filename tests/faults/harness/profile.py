"""Sizes of the fault scenarios: a CI profile small enough for every test run, and the full
profile of the reliability report (``CONVEYOR_FAULTS_PROFILE=full``)."""

from __future__ import annotations

import os
from dataclasses import dataclass

PROFILE_ENV = "CONVEYOR_FAULTS_PROFILE"


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    kill_jobs: int  # worker kills: jobs of 10-50 ms
    kill_count: int  # worker kills: SIGKILLs, one a second
    crash_seconds: float  # redis crash: enqueue load before the kill
    crash_runs: int  # redis crash: kills per fsync mode
    pause_seconds: float  # redis pause: SIGSTOP length
    net_fault_seconds: float  # network faults: length of each fault
    net_jobs: int  # network faults: jobs per fault
    delayed_jobs: int  # scheduler faults
    poison_others: int  # poison: normal jobs alongside
    cancel_jobs: int  # cancellation races
    overload_seconds: float  # overload: enqueue at full speed for this long
    hostile_examples: int  # hostile input: generated requests per property
    api_kills: int  # API killed mid-request: SIGKILLs, 1 s apart
    api_clients: int  # API killed mid-request: concurrent clients
    shutdown_rounds: int  # graceful shutdown: SIGTERMs with jobs in flight
    herd_jobs: int  # thundering herd: jobs failing together
    soak_seconds: float  # soak: mixed load with worker kills for this long


CI = Profile(
    name="ci",
    kill_jobs=300,
    kill_count=4,
    crash_seconds=2.0,
    crash_runs=1,
    pause_seconds=3.0,
    net_fault_seconds=2.0,
    net_jobs=40,
    delayed_jobs=200,
    poison_others=60,
    cancel_jobs=100,
    overload_seconds=3.0,
    hostile_examples=25,
    api_kills=2,
    api_clients=8,
    shutdown_rounds=1,
    herd_jobs=200,
    soak_seconds=30.0,
)

FULL = Profile(
    name="full",
    kill_jobs=2000,
    kill_count=30,
    crash_seconds=10.0,
    crash_runs=3,
    pause_seconds=5.0,
    net_fault_seconds=10.0,
    net_jobs=300,
    delayed_jobs=3000,
    poison_others=500,
    cancel_jobs=500,
    overload_seconds=60.0,
    hostile_examples=100,
    api_kills=5,
    api_clients=32,
    shutdown_rounds=3,
    herd_jobs=1000,
    soak_seconds=600.0,
)


def current() -> Profile:
    name = os.environ.get(PROFILE_ENV, "ci").strip().lower()
    if name == "full":
        return FULL
    if name in ("", "ci"):
        return CI
    raise ValueError(f"{PROFILE_ENV} must be 'ci' or 'full'")

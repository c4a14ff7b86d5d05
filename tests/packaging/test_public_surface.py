"""`import conveyor` is the whole public surface: the names below, loaded on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

import conveyor

PUBLIC = {
    "handler",
    "Task",
    "JobContext",
    "PermanentError",
    "JobCancelled",
    "RetryPolicy",
    "Client",
    "SyncClient",
    "HttpClient",
    "SyncHttpClient",
    "Job",
    "Status",
    # the interfaces every client offers, and the values they return
    "AsyncJobsClient",
    "SyncJobsClient",
    "Page",
    "CancelOutcome",
    "QueueStats",
    "WorkerInfo",
    # the exceptions a client raises
    "ConveyorError",
    "ConfigError",
    "ValidationError",
    "PayloadTooLarge",
    "JobNotFound",
    "InvalidTransition",
    "DuplicateJob",
    "IdempotencyConflict",
    "NotReplicated",
    "QueueLimitReached",
    "StoreUnavailable",
    "ApiError",
}


def test_all_is_exactly_the_public_surface() -> None:
    assert set(conveyor.__all__) == PUBLIC
    assert len(conveyor.__all__) == len(PUBLIC)
    assert list(conveyor.__all__) == sorted(conveyor.__all__)


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_public_name_resolves_to_its_definition(name: str) -> None:
    value = getattr(conveyor, name)
    assert getattr(value, "__name__", name) == name
    assert value.__module__.startswith("conveyor.")
    assert name in dir(conveyor)


def test_the_names_are_the_ones_the_internals_use() -> None:
    from conveyor.errors import JobNotFound
    from conveyor.worker.registry import default_registry

    assert conveyor.JobNotFound is JobNotFound
    assert issubclass(conveyor.ApiError, conveyor.ConveyorError)
    assert conveyor.handler.__self__ is default_registry  # type: ignore[attr-defined]


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Registry'"):
        _ = conveyor.Registry  # type: ignore[attr-defined]  # refused by mypy and at run time


def test_importing_conveyor_loads_neither_side_nor_the_http_client() -> None:
    code = (
        "import sys, conveyor; "
        "print(sorted(m for m in sys.modules "
        "if m.startswith(('conveyor.', 'httpx', 'starlette', 'uvicorn'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_producer_does_not_load_the_worker() -> None:
    code = (
        "import sys, conveyor; conveyor.Client; "
        "print([m for m in sys.modules if m.startswith(('conveyor.worker', 'conveyor.api'))])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

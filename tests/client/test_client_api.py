"""Every client class has the interface of `conveyor.client_api`: mypy checks the
assignments below, and the test compares each method's signature with the protocol's."""

from __future__ import annotations

import inspect

import pytest

from conveyor.client import Client, SyncClient
from conveyor.client_api import AsyncJobsClient, SyncJobsClient
from conveyor.http_client import HttpClient, SyncHttpClient

ASYNC_CLIENTS: list[type[AsyncJobsClient]] = [Client, HttpClient]
SYNC_CLIENTS: list[type[SyncJobsClient]] = [SyncClient, SyncHttpClient]


_CONTEXT = {"__aenter__", "__aexit__", "__enter__", "__exit__"}


def _methods(protocol: type) -> list[str]:
    """The methods a protocol declares: its public ones and those of `with`."""
    return [
        name
        for name, value in vars(protocol).items()
        if inspect.isfunction(value) and (not name.startswith("_") or name in _CONTEXT)
    ]


def _shape(function: object) -> list[tuple[str, inspect._ParameterKind, object]]:
    """Parameter names, kinds and defaults (annotations are mypy's to compare)."""
    signature = inspect.signature(function)  # type: ignore[arg-type]
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


@pytest.mark.parametrize(
    ("protocol", "cls"),
    [(AsyncJobsClient, c) for c in ASYNC_CLIENTS] + [(SyncJobsClient, c) for c in SYNC_CLIENTS],
)
def test_each_client_has_the_methods_of_its_protocol(protocol: type, cls: type) -> None:
    methods = _methods(protocol)
    assert {"enqueue", "enqueue_many", "get", "cancel", "replay", "list"} <= set(methods)
    assert {"queues", "queue", "workers"} <= set(methods)
    assert (
        {"aclose", "__aenter__"} if protocol is AsyncJobsClient else {"close", "__enter__"}
    ) <= set(methods)
    for name in methods:
        ours, theirs = getattr(cls, name), getattr(protocol, name)
        assert _shape(ours) == _shape(theirs), f"{cls.__name__}.{name}"
        assert inspect.iscoroutinefunction(ours) == inspect.iscoroutinefunction(theirs), name

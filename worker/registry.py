"""Handler registry: which function runs which job type, with what retry limits, and the
payload type its payloads are validated against.

Handlers register into an explicit `Registry`. `@handler` uses the default registry, which
the worker process builds from the built-in sample handlers plus the modules named in
CONVEYOR_HANDLERS (the API, from CONVEYOR_API_HANDLERS, to validate payloads); tests build
fresh registries of their own. `@handler` returns a `Task`: the function, callable as
before, that also enqueues jobs of its type.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from conveyor.backoff import RetryPolicy
from conveyor.errors import ConfigError
from conveyor.ids import validate_job_type
from conveyor.payloads import PayloadType, handler_payload_type
from conveyor.worker.context import JobContext
from conveyor.worker.task import Task

HandlerFn = Callable[[Any, Any], Any] | Callable[[Any, Any], Awaitable[Any]]
P = TypeVar("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    name: str
    fn: Callable[..., Any]
    is_async: bool
    max_attempts: int | None = None  # None: the job's own value, else the worker default
    timeout_seconds: float | None = None
    backoff: RetryPolicy | None = None  # None: the worker's retry settings
    payload_type: PayloadType | None = None  # None: a plain JSON payload, not validated


class Registry:
    def __init__(self) -> None:
        self._specs: dict[str, HandlerSpec] = {}

    def register(
        self,
        name: str,
        fn: Callable[..., Any],
        *,
        max_attempts: int | None = None,
        timeout: float | None = None,
        backoff: RetryPolicy | None = None,
    ) -> HandlerSpec:
        """Register `fn` (or a `Task`'s function) for job type `name`. TypeError when its
        payload annotation cannot be resolved, or is a dataclass with a field type that
        cannot be checked (see `conveyor.payloads`)."""
        if isinstance(fn, Task):
            fn = fn.fn
        validate_job_type(name, "handler name")
        if name in self._specs and self._specs[name].fn is not fn:
            raise ValueError(f"a handler for {name!r} is already registered")
        if max_attempts is not None and max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be > 0")
        payload_type = handler_payload_type(fn)
        spec = HandlerSpec(name, fn, _is_async(fn), max_attempts, timeout, backoff, payload_type)
        self._specs[name] = spec
        return spec

    def handler(
        self,
        name: str,
        *,
        max_attempts: int | None = None,
        timeout: float | None = None,
        backoff: RetryPolicy | None = None,
    ) -> Callable[[Callable[[JobContext, P], R]], Task[P, R]]:
        """Decorator form of `register`: returns the handler as a `Task` of its payload
        type `P`, which enqueues jobs of type `name` (see `conveyor.worker.task`)."""

        def decorate(fn: Callable[[JobContext, P], R]) -> Task[P, R]:
            spec = self.register(
                name, fn, max_attempts=max_attempts, timeout=timeout, backoff=backoff
            )
            return Task(name, fn, spec.payload_type)

        return decorate

    def get(self, name: str) -> HandlerSpec | None:
        return self._specs.get(name)

    def names(self) -> list[str]:
        return sorted(self._specs)

    def payload_types(self) -> dict[str, PayloadType]:
        """The payload type of every handler that has one, by job type."""
        return {
            name: spec.payload_type
            for name, spec in self._specs.items()
            if spec.payload_type is not None
        }

    def merged(self, other: Registry) -> Registry:
        """Both registries' handlers; a type registered in both is a configuration error
        (a user module silently replacing a built-in would be a surprise)."""
        clashes = sorted(
            name
            for name in self._specs.keys() & other._specs.keys()
            if self._specs[name].fn is not other._specs[name].fn
        )
        if clashes:
            raise ConfigError(
                [
                    f"handler {name!r} is registered twice (pick another type name)"
                    for name in clashes
                ]
            )
        out = Registry()
        out._specs = {**self._specs, **other._specs}
        return out


def _is_async(fn: Callable[..., Any]) -> bool:
    """Coroutine functions, and objects whose ``__call__`` is one."""
    call = getattr(fn, "__call__", None)  # noqa: B004 - the method itself is inspected
    return asyncio.iscoroutinefunction(fn) or asyncio.iscoroutinefunction(call)


default_registry = Registry()
handler = default_registry.handler


def import_handler_modules(modules: Iterable[str], setting: str = "CONVEYOR_HANDLERS") -> None:
    """Import the modules named in `setting` so their `@handler`s register."""
    problems = []
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:
            problems.append(f"{setting}: cannot import {module!r}: {exc}")
    if problems:
        raise ConfigError(problems)

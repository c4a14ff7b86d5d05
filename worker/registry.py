"""Handler registry: which function runs which job type, with what retry limits.

Handlers register into an explicit `Registry`. `@handler` uses the default registry, which
the worker process builds from the built-in sample handlers plus the modules named in
CONVEYOR_HANDLERS; tests build fresh registries of their own.
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

HandlerFn = Callable[[Any, Any], Any] | Callable[[Any, Any], Awaitable[Any]]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    name: str
    fn: Callable[..., Any]
    is_async: bool
    max_attempts: int | None = None  # None: the job's own value, else the worker default
    timeout_seconds: float | None = None
    backoff: RetryPolicy | None = None  # None: the worker's retry settings


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
        validate_job_type(name, "handler name")
        if name in self._specs and self._specs[name].fn is not fn:
            raise ValueError(f"a handler for {name!r} is already registered")
        if max_attempts is not None and max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be > 0")
        spec = HandlerSpec(name, fn, _is_async(fn), max_attempts, timeout, backoff)
        self._specs[name] = spec
        return spec

    def handler(
        self,
        name: str,
        *,
        max_attempts: int | None = None,
        timeout: float | None = None,
        backoff: RetryPolicy | None = None,
    ) -> Callable[[F], F]:
        """Decorator form of `register`."""

        def decorate(fn: F) -> F:
            self.register(name, fn, max_attempts=max_attempts, timeout=timeout, backoff=backoff)
            return fn

        return decorate

    def get(self, name: str) -> HandlerSpec | None:
        return self._specs.get(name)

    def names(self) -> list[str]:
        return sorted(self._specs)

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


def import_handler_modules(modules: Iterable[str]) -> None:
    """Import the modules named in CONVEYOR_HANDLERS so their `@handler`s register."""
    problems = []
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:
            problems.append(f"CONVEYOR_HANDLERS: cannot import {module!r}: {exc}")
    if problems:
        raise ConfigError(problems)

"""Which registered handlers a test runs: a view of a `Registry` limited to some types."""

from __future__ import annotations

from collections.abc import Iterable

from conveyor.worker.registry import HandlerSpec, Registry


class SelectedHandlers(Registry):
    """The handlers of `source` named in `names`; every other type has no handler here,
    as on a worker that did not import its module (its jobs fail with "no handler")."""

    def __init__(self, source: Registry, names: Iterable[str]) -> None:
        super().__init__()
        self._source = source
        self._names = frozenset(names)

    def get(self, name: str) -> HandlerSpec | None:
        return self._source.get(name) if name in self._names else None

    def names(self) -> list[str]:
        return sorted(self._names)


def select(handlers: Iterable[object], source: Registry) -> Registry:
    """`source` limited to `handlers`; all of `source` when `handlers` is empty.

    Each handler is given as its job type name, as an object with a ``name`` attribute
    (a handler handle), or as the function registered in `source`. One that `source` does
    not hold raises ValueError naming it.
    """
    names = [_type_name(h, source) for h in handlers]
    return SelectedHandlers(source, names) if names else source


def _type_name(handler: object, source: Registry) -> str:
    if isinstance(handler, str):
        if source.get(handler) is None:
            raise ValueError(f"handlers: no handler is registered for job type {handler!r}")
        return handler
    name = getattr(handler, "name", None)
    if isinstance(name, str) and source.get(name) is not None:
        return name
    for registered in source.names():
        spec = source.get(registered)
        if spec is not None and spec.fn is handler:
            return registered
    raise ValueError(
        f"handlers: {handler!r} is not registered; decorate it with @conveyor.handler, "
        "or pass the Registry that holds it as registry="
    )

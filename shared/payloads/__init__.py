"""Typed payloads: a handler's payload annotation, when it is a pydantic model or a
dataclass, as a `PayloadType` that validates payloads and converts them to and from JSON.

Any other annotation (none, ``dict``, ``Any``, a ``TypedDict``...) is a plain JSON payload:
it is handed to the handler as it was stored, unchecked, as it always was.

pydantic is optional. A pydantic model is recognised without importing pydantic (a process
that defined one has imported it already); a dataclass is validated by pydantic when it is
installed, otherwise by `plain_dataclass`, which checks JSON field types only.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import inspect
import sys
import typing
from collections.abc import Callable

from conveyor.payloads.base import PAYLOAD_FIELD, InvalidPayload, PayloadType, field_path

__all__ = [
    "PAYLOAD_FIELD",
    "InvalidPayload",
    "PayloadType",
    "field_path",
    "handler_payload_type",
    "payload_type",
]

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def payload_type(annotation: object) -> PayloadType | None:
    """The `PayloadType` of an annotation; None for a plain JSON payload."""
    if not isinstance(annotation, type):
        return None
    if _is_pydantic_model(annotation):
        from conveyor.payloads.with_pydantic import PydanticPayload

        return PydanticPayload(annotation)
    if dataclasses.is_dataclass(annotation):
        if _pydantic_installed():
            from conveyor.payloads.with_pydantic import PydanticPayload

            return PydanticPayload(annotation)
        from conveyor.payloads.plain_dataclass import DataclassPayload

        return DataclassPayload(annotation)
    return None


def handler_payload_type(fn: Callable[..., object]) -> PayloadType | None:
    """The payload type of a handler ``(ctx, payload)``: its second positional parameter's
    annotation, resolved with `typing.get_type_hints` (so ``from __future__ import
    annotations`` is fine). TypeError when that annotation cannot be resolved: whether the
    payload is typed would be a guess."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # no signature to read (some builtins)
        return None
    positional = [p for p in parameters if p.kind in _POSITIONAL]
    if len(positional) < 2 or positional[1].annotation is inspect.Parameter.empty:
        return None
    annotation = positional[1].annotation
    if isinstance(annotation, str):
        annotation = _resolve(annotation, fn)
    return payload_type(annotation)


def _resolve(text: str, fn: Callable[..., object]) -> object:
    """The annotation `text` of a parameter of `fn`, evaluated in `fn`'s module.

    Only this annotation is evaluated (through a holder class, as `get_type_hints` does for
    class attributes), so an unresolvable return or context annotation, which never
    mattered to Conveyor, still does not."""
    holder = type("PayloadAnnotation", (), {"__annotations__": {"payload": text}})
    try:
        return typing.get_type_hints(holder, globalns=_globals_of(fn))["payload"]
    except Exception as exc:
        raise TypeError(
            f"cannot resolve the payload annotation {text!r} of handler {fn!r}: {exc} "
            "(define the payload type at module level, before the handler)"
        ) from exc


def _globals_of(fn: Callable[..., object]) -> dict[str, object]:
    target: object = fn
    while isinstance(target, functools.partial):
        target = target.func
    if callable(target):
        target = inspect.unwrap(target)
    if not inspect.isfunction(target) and not inspect.ismethod(target):
        target = getattr(type(target), "__call__", target)  # noqa: B004 - its method
    namespace = getattr(target, "__globals__", None)
    return namespace if isinstance(namespace, dict) else {}


def _is_pydantic_model(annotation: type) -> bool:
    pydantic = sys.modules.get("pydantic")  # not imported: no model can exist
    return pydantic is not None and issubclass(annotation, pydantic.BaseModel)


@functools.cache
def _pydantic_installed() -> bool:
    try:
        return importlib.util.find_spec("pydantic") is not None
    except (ImportError, ValueError):
        return False

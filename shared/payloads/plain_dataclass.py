"""Dataclass payloads checked without pydantic, for processes that do not have it.

Field types it checks: ``str``, ``int`` (a whole float such as 3.0 counts), ``float`` (an
integer is accepted and made a float), ``bool``, ``None``, ``Any``/``object`` (any JSON
value), ``Literal`` of JSON scalars, unions of these (``X | None``), ``list[X]``,
``dict[str, X]`` and nested dataclasses made of the same. A field with a default may be
absent; keys that are not fields are ignored (as pydantic does by default); the
dataclass's own ``__post_init__`` checks run, a ValueError or TypeError from them becomes
a validation error of the payload.

Any other field type (datetime, Enum, tuple, set, ...) is refused when the handler is
defined, with a TypeError pointing at pydantic, rather than handed to the handler
unchecked.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from conveyor.codec import JsonValue, check_json_value
from conveyor.errors import ValidationError
from conveyor.payloads.base import PAYLOAD_FIELD, InvalidPayload, PayloadType

# A rule's check appends what is wrong to `errors` and returns the converted value, or
# _INVALID when it appended something.
CheckFn = Callable[[object, str, list[ValidationError]], object]
_INVALID: Any = object()
_SCALARS = (str, int, float, bool, type(None))
_WHOLE_FLOAT_LIMIT = 2.0**63  # a whole float beyond it is no integer (pydantic agrees)


@dataclass(frozen=True, slots=True)
class _Rule:
    check: CheckFn
    description: str  # "a string": completes "must be ..."


class DataclassPayload(PayloadType):
    def __init__(self, annotation: type) -> None:
        super().__init__(annotation)
        self._rule = _Compiler().record(annotation)

    def load(self, value: JsonValue, field: str = PAYLOAD_FIELD) -> object:
        errors: list[ValidationError] = []
        loaded = self._rule.check(value, field, errors)
        if errors:
            raise InvalidPayload(errors)
        return loaded

    def to_json(self, value: object, field: str = PAYLOAD_FIELD) -> JsonValue:
        if (
            not dataclasses.is_dataclass(value)
            or isinstance(value, type)
            or not isinstance(value, self.annotation)
        ):
            raise InvalidPayload([ValidationError(field, f"must be a {self.annotation.__name__}")])
        return dataclasses.asdict(value)  # values of other types are refused by `load`


def _fail(errors: list[ValidationError], field: str, description: str) -> Any:
    errors.append(ValidationError(field, f"must be {description}"))
    return _INVALID


def _simple(description: str, accept: Callable[[object], bool]) -> _Rule:
    def check(value: object, field: str, errors: list[ValidationError]) -> object:
        return value if accept(value) else _fail(errors, field, description)

    return _Rule(check, description)


def _integer(value: object, field: str, errors: list[ValidationError]) -> object:
    if isinstance(value, float) and value.is_integer():
        if -_WHOLE_FLOAT_LIMIT < value < _WHOLE_FLOAT_LIMIT:
            return int(value)
        errors.append(ValidationError(field, "is too large for an integer"))
        return _INVALID
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return _fail(errors, field, "an integer")


def _number(value: object, field: str, errors: list[ValidationError]) -> object:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return _fail(errors, field, "a number")
    try:
        return float(value)
    except OverflowError:
        errors.append(ValidationError(field, "is too large for a float"))
        return _INVALID


def _any_json(value: object, field: str, errors: list[ValidationError]) -> object:
    try:
        check_json_value(value, field)
    except ValidationError as exc:
        errors.append(exc)
        return _INVALID
    return value


_NULL = _simple("null", lambda v: v is None)
_BASIC: dict[object, _Rule] = {
    str: _simple("a string", lambda v: isinstance(v, str)),
    bool: _simple("a boolean", lambda v: isinstance(v, bool)),
    type(None): _NULL,
    None: _NULL,
    int: _Rule(_integer, "an integer"),
    float: _Rule(_number, "a number"),
    Any: _Rule(_any_json, "a JSON value"),
    object: _Rule(_any_json, "a JSON value"),
}


class _Compiler:
    """Turns field types into rules; a dataclass is compiled once, so recursive
    dataclasses (a tree of nodes) work."""

    def __init__(self) -> None:
        self._records: dict[type, _Rule] = {}

    def rule(self, annotation: object, where: str) -> _Rule:
        basic = _BASIC.get(annotation) if _hashable(annotation) else None
        if basic is not None:
            return basic
        if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
            return self.record(annotation)
        origin, args = get_origin(annotation), get_args(annotation)
        if origin is Literal and all(isinstance(a, _SCALARS) for a in args):
            return _literal(args)
        if origin is Union or origin is types.UnionType:
            return _union([self.rule(arm, where) for arm in args], type(None) in args)
        if annotation is list or origin is list:
            return _list(self.rule(args[0], where) if args else _BASIC[Any])
        if (annotation is dict or origin is dict) and (not args or args[0] in (str, Any)):
            return _dict(self.rule(args[1], where) if args else _BASIC[Any])
        raise TypeError(
            f"{where}: {annotation!r} is not a JSON type that Conveyor checks without "
            "pydantic; install pydantic (conveyor[pydantic]) to use it in a payload"
        )

    def record(self, cls: type) -> _Rule:
        known = self._records.get(cls)
        if known is not None:
            return known
        fields: list[tuple[str, _Rule, bool]] = []  # name, rule, required

        def check(value: object, field: str, errors: list[ValidationError]) -> object:
            if not isinstance(value, dict):
                return _fail(errors, field, "an object")
            before = len(errors)
            arguments: dict[str, object] = {}
            for name, rule, required in fields:
                path = f"{field}.{name}"
                if name in value:
                    arguments[name] = rule.check(value[name], path, errors)
                elif required:
                    errors.append(ValidationError(path, "is required"))
            if len(errors) > before:
                return _INVALID
            try:
                return cls(**arguments)
            except (TypeError, ValueError) as exc:  # the dataclass's own checks
                errors.append(ValidationError(field, str(exc) or type(exc).__name__))
                return _INVALID

        rule = _Rule(check, "an object")
        self._records[cls] = rule
        try:
            hints = typing.get_type_hints(cls)
        except Exception as exc:
            raise TypeError(f"{cls.__qualname__}: cannot resolve its field types: {exc}") from exc
        for f in dataclasses.fields(cls):
            if f.init:
                required = f.default is dataclasses.MISSING and (
                    f.default_factory is dataclasses.MISSING
                )
                where = f"{cls.__qualname__}.{f.name}"
                fields.append((f.name, self.rule(hints[f.name], where), required))
        return rule


def _hashable(annotation: object) -> bool:
    try:
        hash(annotation)
    except TypeError:
        return False
    return True


def _literal(values: tuple[object, ...]) -> _Rule:
    description = "one of " + ", ".join(repr(v) for v in values)

    def check(value: object, field: str, errors: list[ValidationError]) -> object:
        for allowed in values:
            if type(value) is type(allowed) and value == allowed:
                return value
        return _fail(errors, field, description)

    return _Rule(check, description)


def _union(arms: list[_Rule], nullable: bool) -> _Rule:
    non_null = [arm for arm in arms if arm is not _NULL]
    description = " or ".join(arm.description for arm in arms)

    def check(value: object, field: str, errors: list[ValidationError]) -> object:
        if value is None and nullable:
            return None
        if len(non_null) == 1:  # X | None: X's own errors say more than "X or null"
            return non_null[0].check(value, field, errors)
        for arm in non_null:
            problems: list[ValidationError] = []
            converted = arm.check(value, field, problems)
            if not problems:
                return converted
        return _fail(errors, field, description)

    return _Rule(check, description)


def _list(item: _Rule) -> _Rule:
    def check(value: object, field: str, errors: list[ValidationError]) -> object:
        if not isinstance(value, list):
            return _fail(errors, field, "an array")
        return [item.check(v, f"{field}.{i}", errors) for i, v in enumerate(value)]

    return _Rule(check, "an array")


def _dict(item: _Rule) -> _Rule:
    def check(value: object, field: str, errors: list[ValidationError]) -> object:
        if not isinstance(value, dict):
            return _fail(errors, field, "an object")
        if not all(isinstance(key, str) for key in value):
            errors.append(ValidationError(field, "has a non-string object key"))
            return _INVALID
        return {key: item.check(v, f"{field}.{key}", errors) for key, v in value.items()}

    return _Rule(check, "an object")

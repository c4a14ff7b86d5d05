"""What every typed payload offers: conversion between its type and the JSON that is stored."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from conveyor.codec import JsonValue
from conveyor.errors import ValidationError

PAYLOAD_FIELD = "payload"


class InvalidPayload(ValidationError):
    """A payload does not fit its handler's payload type.

    `errors` holds every problem found, each naming its field (``payload.month``,
    ``payload.items.0.sku``); the first is also this error's own `field` and `message`.
    """

    def __init__(self, errors: Sequence[ValidationError]) -> None:
        if not errors:
            raise ValueError("InvalidPayload needs at least one error")
        first = errors[0]
        super().__init__(first.field, first.message)
        self.errors = list(errors)

    def __str__(self) -> str:
        return "; ".join(f"{e.field}: {e.message}" for e in self.errors)


class PayloadType(ABC):
    """A handler's payload type (a pydantic model or a dataclass) and its JSON form."""

    def __init__(self, annotation: type) -> None:
        self.annotation = annotation

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.annotation.__qualname__})"

    @abstractmethod
    def load(self, value: JsonValue, field: str = PAYLOAD_FIELD) -> object:
        """The instance of the type that a stored JSON payload stands for; `InvalidPayload`
        naming every bad field (under `field`) when it does not fit."""

    @abstractmethod
    def to_json(self, value: object, field: str = PAYLOAD_FIELD) -> JsonValue:
        """The JSON form of an instance (no validation); `InvalidPayload` when it has none."""

    def dump(self, value: object, field: str = PAYLOAD_FIELD) -> JsonValue:
        """The JSON to store for `value`, an instance of the type or its JSON form.

        The JSON is loaded back exactly as the worker will load it, so what is stored is
        known to fit, and it is the JSON form of the loaded instance: equal payloads are
        stored alike (which idempotency keys rely on). `InvalidPayload` names every bad
        field.
        """
        if not isinstance(value, self.annotation):
            value = self.load(value, field)
        return self.to_json(self.load(self.to_json(value, field), field), field)

    def problems(self, value: JsonValue, field: str = PAYLOAD_FIELD) -> list[ValidationError]:
        """What is wrong with a JSON payload: nothing when it loads."""
        try:
            self.load(value, field)
        except InvalidPayload as exc:
            return exc.errors
        return []


def field_path(field: str, location: Sequence[str | int]) -> str:
    """``payload`` and ``("items", 0, "sku")`` -> ``payload.items.0.sku``."""
    return ".".join([field, *(str(part) for part in location)])

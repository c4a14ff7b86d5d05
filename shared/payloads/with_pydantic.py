"""Payload types validated by pydantic: its models, and dataclasses when pydantic is installed.

Only imported once a handler needs it, so a process without typed handlers never imports
pydantic (nor needs it installed).
"""

from __future__ import annotations

from typing import Any

import pydantic
import pydantic_core

from conveyor.codec import JsonValue
from conveyor.errors import ValidationError
from conveyor.payloads.base import PAYLOAD_FIELD, InvalidPayload, PayloadType, field_path


class PydanticPayload(PayloadType):
    """Validation and conversion by a `pydantic.TypeAdapter` of the type, under the type's
    own configuration (its strictness, extra fields, validators)."""

    def __init__(self, annotation: type) -> None:
        super().__init__(annotation)
        self._adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(annotation)

    def load(self, value: JsonValue, field: str = PAYLOAD_FIELD) -> object:
        try:
            return self._adapter.validate_python(value)
        except pydantic.ValidationError as exc:
            raise InvalidPayload(
                [
                    ValidationError(field_path(field, error["loc"]), error["msg"])
                    for error in exc.errors(include_url=False)
                ]
            ) from None

    def to_json(self, value: object, field: str = PAYLOAD_FIELD) -> JsonValue:
        # A value of the wrong type in a field is caught when the JSON is loaded back
        # (see `dump`): pydantic's serializer warnings about it would only repeat that.
        try:
            return self._adapter.dump_python(value, mode="json", warnings=False)
        except pydantic_core.PydanticSerializationError as exc:
            raise InvalidPayload(
                [ValidationError(field, f"cannot be converted to JSON: {exc}")]
            ) from None

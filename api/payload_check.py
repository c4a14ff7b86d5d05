"""Typed payloads in the API: with ``api_handlers`` set, the API imports those handler
modules, and `POST /jobs` and `POST /jobs/batch` check the payload of every job whose type
has a typed handler (a pydantic model or a dataclass payload) as the worker will: a payload
that does not fit is refused with 422, naming its fields, and nothing is written.

Only the modules' registrations are used (the registry), never the worker's runtime.
"""

from __future__ import annotations

from collections.abc import Mapping

from conveyor.config import Settings, env_name
from conveyor.errors import ValidationError
from conveyor.import_path import put_first_on_import_path
from conveyor.payloads import PayloadType
from conveyor.worker.registry import default_registry, import_handler_modules

PayloadTypes = Mapping[str, PayloadType]


def load_payload_types(settings: Settings) -> dict[str, PayloadType]:
    """The payload types of the typed handlers of ``settings.api_handlers``, by job type;
    `ConfigError` when a module cannot be imported."""
    if not settings.api_handlers:
        return {}
    put_first_on_import_path(settings.handlers_path)
    import_handler_modules(settings.api_handlers, setting=env_name("api_handlers"))
    return default_registry.payload_types()


def payload_problems(
    types: PayloadTypes, job_type: object, payload: object, field: str
) -> list[ValidationError]:
    """What is wrong with `payload` for a job of `job_type`, each error named under
    `field`; nothing for a type without a typed handler."""
    kind = types.get(job_type) if isinstance(job_type, str) else None
    return [] if kind is None else kind.problems(payload, field)

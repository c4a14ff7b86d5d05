"""The JSON content-type rule (`api.content_type`) in the OpenAPI document.

Every POST, PUT, PATCH and DELETE operation may be answered 415. One that reads no body
(cancel, retry, purge, retry-failed) declares a JSON body (`EmptyRequest`, any object of
at most 4 KiB, ignored): the header is what the API checks, and a client generated from the
document sends it only with a body. The API accepts these requests with the header and no
body too; any other body (an array, a number, malformed JSON) is refused (422 or 400).
"""

from __future__ import annotations

import copy

from conveyor.api.body import IGNORED_BODY_BYTES, NOT_AN_OBJECT
from conveyor.api.content_type import UNSAFE_METHODS
from conveyor.api.openapi_parts import (
    Schema,
    error_response,
    invalid_response,
    problem_example,
    ref,
)

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
EMPTY_REQUEST = "EmptyRequest"
IGNORED_BODY: Schema = {
    "required": True,
    "description": "Send `{}`: an object's content is ignored, but the request must say "
    "`Content-Type: application/json` (else 415). No body at all, with that header, is "
    "accepted too; any body that is not a JSON object is refused (422, or 400 when it is "
    "not JSON, 413 beyond 4 KiB).",
    "content": {"application/json": {"schema": ref("schemas", EMPTY_REQUEST), "example": {}}},
}

_IGNORED_422 = "A body that is not a JSON object (an array, a number, a string, null)."
_IGNORED_TOO_LARGE: Schema = error_response(
    f"The body (ignored) is larger than {IGNORED_BODY_BYTES} bytes; nothing was changed.",
    {
        "too_large": problem_example(
            413,
            "request-too-large",
            "Content Too Large",
            f"the request body is larger than {IGNORED_BODY_BYTES} bytes",
        )
    },
)


def schemas() -> dict[str, Schema]:
    return {
        EMPTY_REQUEST: {
            "type": "object",
            "description": "The body of an action that reads none: `{}` (any object is ignored).",
        }
    }


def require_json_content_type(paths: dict[str, Schema]) -> None:
    """Mark every unsafe operation of `paths` (in place) with the 415 it may answer."""
    for item in paths.values():
        for method in METHODS:
            op = item.get(method)
            if op is None or method.upper() not in UNSAFE_METHODS:
                continue
            responses = dict(op["responses"])
            if "requestBody" not in op:
                op["requestBody"] = copy.deepcopy(IGNORED_BODY)
                responses.setdefault("400", ref("responses", "MalformedJson"))
                responses.setdefault("413", _IGNORED_TOO_LARGE)
                if "422" in responses:
                    described = copy.deepcopy(responses["422"])
                    described["description"] += f" Or {_IGNORED_422[0].lower()}{_IGNORED_422[1:]}"
                    responses["422"] = described
                else:
                    responses["422"] = invalid_response(_IGNORED_422, [("body", NOT_AN_OBJECT)])
            responses["415"] = ref("responses", "UnsupportedMediaType")
            op["responses"] = dict(sorted(responses.items()))

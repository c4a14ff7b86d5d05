"""The JSON content-type rule (`api.content_type`) in the OpenAPI document.

Every POST, PUT, PATCH and DELETE operation may be answered 415. One that reads no body
(cancel, retry, purge, retry-failed) declares a JSON body (`EmptyRequest`, any object,
ignored): the header is what the API checks, and a client generated from the document sends
it only with a body. The API accepts these requests with the header and no body too.
"""

from __future__ import annotations

import copy

from conveyor.api.content_type import UNSAFE_METHODS
from conveyor.api.openapi_parts import Schema, ref

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
EMPTY_REQUEST = "EmptyRequest"
IGNORED_BODY: Schema = {
    "required": True,
    "description": "Send `{}`: the content is ignored, but the request must say "
    "`Content-Type: application/json` (else 415). No body at all, with that header, is "
    "accepted too.",
    "content": {"application/json": {"schema": ref("schemas", EMPTY_REQUEST), "example": {}}},
}


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
            op.setdefault("requestBody", copy.deepcopy(IGNORED_BODY))
            responses = dict(op["responses"])
            responses["415"] = ref("responses", "UnsupportedMediaType")
            op["responses"] = dict(sorted(responses.items()))

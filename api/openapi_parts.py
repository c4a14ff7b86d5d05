"""The building blocks of the OpenAPI document: references, media types, problem examples,
responses and operations.

`api.openapi` and `api.openapi_queue_actions` both build their parts of the document from
these; neither imports the other's private helpers.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

PROBLEM_JSON = "application/problem+json"
JSON = "application/json"


def ref(kind: str, name: str) -> Schema:
    """A reference to ``#/components/<kind>/<name>``."""
    return {"$ref": f"#/components/{kind}/{name}"}


def schema_ref(name: str) -> Schema:
    return ref("schemas", name)


def anchored(pattern: str) -> str:
    """`pattern` matched whole (JSON Schema patterns match anywhere unless anchored)."""
    return f"^{pattern}$"


def json_content(schema: Schema, examples: dict[str, Any], media: str = JSON) -> Schema:
    return {
        media: {
            "schema": schema,
            "examples": {name: {"value": value} for name, value in examples.items()},
        }
    }


def problem_example(
    status: int,
    slug: str | None,
    title: str,
    detail: str | None,
    errors: list[tuple[str, str]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An RFC 9457 problem as `api.problems` writes it."""
    body: dict[str, Any] = {
        "type": f"urn:conveyor:problem:{slug}" if slug else "about:blank",
        "title": title,
        "status": status,
    }
    if detail is not None:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = [{"field": f, "message": m} for f, m in errors]
    body.update(extra)
    return body


def success_response(description: str, schema: str, examples: dict[str, Any]) -> Schema:
    return {"description": description, "content": json_content(schema_ref(schema), examples)}


def error_response(
    description: str, examples: dict[str, Any], headers: Schema | None = None
) -> Schema:
    response: Schema = {
        "description": description,
        "content": json_content(schema_ref("Problem"), examples, PROBLEM_JSON),
    }
    if headers:
        response["headers"] = headers
    return response


def invalid_response(description: str, errors: list[tuple[str, str]]) -> Schema:
    """A 422 response whose example names each of `errors` (field, message)."""
    detail = "; ".join(f"{f} {m}" for f, m in errors)
    return error_response(
        description,
        {
            "invalid": problem_example(
                422, "validation-error", "Unprocessable Content", detail, errors
            )
        },
    )


def operation(
    operation_id: str,
    summary: str,
    tag: str,
    responses: dict[str, Schema],
    *,
    description: str | None = None,
    parameters: list[Schema] | None = None,
    body: Schema | None = None,
    touches_redis: bool = True,
) -> Schema:
    """One operation; the responses every operation shares (503, 500) are added here,
    according to what the operation does. Authentication (401, 403 and the security
    requirement) is added for the whole document by `api.openapi_auth`."""
    all_responses = dict(responses)
    if touches_redis:
        all_responses["503"] = ref("responses", "Unavailable")
    all_responses["500"] = ref("responses", "InternalError")
    op: Schema = {"operationId": operation_id, "summary": summary, "tags": [tag]}
    if description:
        op["description"] = description
    op["parameters"] = [*(parameters or []), ref("parameters", "CorrelationId")]
    if body is not None:
        op["requestBody"] = body
    op["responses"] = dict(sorted(all_responses.items()))
    return op

"""Authentication in the OpenAPI document, stated as `api.auth` enforces it.

With tokens configured, every operation but the exempt paths requires a bearer token
(401 without a valid one) and the writing operations refuse read-only tokens (403). With
no token configured the API is open: the document then declares no security scheme, no
security requirement and no 401/403 answer, since none can happen.
"""

from __future__ import annotations

from conveyor.api.auth import CHALLENGE, EXEMPT_PATHS, READ_METHODS, is_exempt
from conveyor.api.openapi_parts import Schema, error_response, problem_example, ref

SCHEME = "bearer"
SECURED: list[dict[str, list[str]]] = [{SCHEME: []}]
# The operation keys of an OpenAPI path item.
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def require_bearer_auth(paths: dict[str, Schema], *, metrics_open: bool = True) -> None:
    """Mark every operation of `paths` (in place) with what authentication asks of it.
    `metrics_open`: /metrics needs no token (metrics_auth none)."""
    for path, item in paths.items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            if is_exempt(path, metrics_open=metrics_open) and path in EXEMPT_PATHS:
                op["security"] = []
                continue
            responses = dict(op["responses"])
            responses["401"] = ref("responses", "Unauthorized")
            if method.upper() not in READ_METHODS:
                responses["403"] = ref("responses", "Forbidden")
            op["responses"] = dict(sorted(responses.items()))
            op["security"] = SECURED


def security_schemes() -> dict[str, Schema]:
    return {
        SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "A token from api_tokens / api_tokens_file (full access) "
            "or api_read_tokens (GET only).",
        }
    }


def auth_responses() -> dict[str, Schema]:
    """The 401 and 403 responses the secured operations refer to."""
    return {
        "Unauthorized": error_response(
            "A bearer token is required (the API has tokens configured) and the request "
            "has none, or not a valid one.",
            {
                "unauthorized": problem_example(
                    401,
                    "unauthorized",
                    "Unauthorized",
                    "this request needs a valid bearer token",
                )
            },
            {
                "WWW-Authenticate": {
                    "description": f"Always `{CHALLENGE}`.",
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
        ),
        "Forbidden": error_response(
            "The token may only read (GET).",
            {
                "read_only_token": problem_example(
                    403,
                    "forbidden",
                    "Forbidden",
                    "this token may only read (GET and HEAD requests)",
                )
            },
        ),
    }


def description(bearer_auth: bool, *, metrics_open: bool = True) -> str:
    """What the document's introduction says about authentication."""
    if bearer_auth:
        exempt = ", ".join(
            sorted(p for p in EXEMPT_PATHS if is_exempt(p, metrics_open=metrics_open))
        )
        return (
            f"Every route except {exempt} needs `Authorization: Bearer <token>`; read-only "
            "tokens may only use GET. /readyz shows its detail only with a valid token."
        )
    return (
        "This server runs open (api_auth none): no request needs authentication, anyone "
        "who reaches it may use every route."
    )

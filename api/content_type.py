"""Every state-changing request must be JSON: the API's guard against cross-site forms.

A browser lets any web page send a form (``application/x-www-form-urlencoded``,
``multipart/form-data`` or ``text/plain``) to any address without asking the server first,
but a request with ``Content-Type: application/json`` only after a CORS preflight the API
answers only for the configured origins. So every POST, PUT, PATCH and DELETE must say
``Content-Type: application/json`` (parameters such as ``charset=utf-8`` allowed), body or
not; anything else is 415 before authentication and before anything is read or changed,
whatever the auth mode. Other methods change nothing: GET, HEAD, OPTIONS (the CORS
preflight) are read-only, and any method no route serves (TRACE, QUERY, ...) is 405.

The check applies to the requests a route would take (path and method match): the others
change nothing either and keep their own answer (404, or 405 for a method the path does
not serve).
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from conveyor.api.body import is_json_media_type
from conveyor.api.problems import problem_response

# The methods that may change state; every route that changes anything uses one of them.
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DETAIL = (
    "a request that may change state must carry the header Content-Type: application/json "
    "(even without a body)"
)


def json_content_type(scope: Scope) -> bool:
    """Whether the request has exactly one Content-Type header, and it is JSON."""
    values: list[bytes] = [v for k, v in scope["headers"] if k.lower() == b"content-type"]
    return len(values) == 1 and is_json_media_type(values[0].decode("latin-1"))


class JsonContentTypeMiddleware:
    """Answers 415 problem+json to an unsafe request that is not ``application/json``."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = list(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in UNSAFE_METHODS
            or json_content_type(scope)
            or not self._routed(scope)
        ):
            await self.app(scope, receive, send)
            return
        response = problem_response(415, "unsupported-media-type", "Unsupported Media Type", DETAIL)
        await response(scope, receive, send)

    def _routed(self, scope: Scope) -> bool:
        """Whether a route takes this path with this method."""
        return any(route.matches(scope)[0] is Match.FULL for route in self.routes)

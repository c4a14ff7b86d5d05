"""The correlation id of each request, the last line of defence against errors, the
security headers of every response, and the HTTP metrics."""

from __future__ import annotations

import time
from collections.abc import Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.api.dto import correlation_id
from conveyor.api.problems import internal_error
from conveyor.logs import log_context
from conveyor.metrics import UNMATCHED_ROUTE, ApiMetrics

CORRELATION_HEADER = "X-Correlation-ID"


class CorrelationIdMiddleware:
    """Picks the request's correlation id (the client's when well formed, else a new one),
    stores it in ``request.state.correlation_id``, binds it to every log line written while
    the request is handled, and echoes it in the ``X-Correlation-ID`` response header.

    An exception no handler took is logged here, with the id, and answered with a bare 500
    problem: the client learns nothing about the inside of the process.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cid = correlation_id(Headers(scope=scope))
        scope.setdefault("state", {})["correlation_id"] = cid
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[CORRELATION_HEADER] = cid
            await send(message)

        with log_context(correlation_id=cid):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                response = internal_error(Request(scope), exc)
                if started:
                    raise
                await response(scope, receive, send_with_id)


CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)
HTML_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class SecurityHeadersMiddleware:
    """``X-Content-Type-Options: nosniff`` on every response; on HTML responses (the docs)
    also a strict Content-Security-Policy, no referrer and no framing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                media = headers.get("content-type", "").split(";")[0].strip().lower()
                if media == "text/html":
                    for name, value in HTML_HEADERS.items():
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


class HttpMetricsMiddleware:
    """Counts every HTTP request and times it until its response is sent, by method, route
    template and status (`shared.metrics.ApiMetrics`). The outermost middleware, so 401s,
    404s and the 500s of uncaught errors are counted too.

    The route is the path template of the route that took the request (``/jobs/{job_id}``,
    never the raw path): the one the router recorded in the scope, else (a request answered
    before routing, such as a 401) the first route matching the path; ``unmatched`` when
    none does."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = list(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before responding

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.request(scope["method"], self._route(scope), status, elapsed)

    def _route(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            for candidate in self.routes:
                match, _ = candidate.matches(scope)
                if match is not Match.NONE:
                    route = candidate
                    break
        path = getattr(route, "path", None)
        return path if isinstance(path, str) and path else UNMATCHED_ROUTE

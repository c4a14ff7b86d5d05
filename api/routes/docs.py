"""`/openapi.json` and `/docs`.

`/docs` is Swagger UI served entirely by the app: its static files come from the
swagger-ui-py package (mounted at ``/docs/static``) and its start-up code is a small script
of ours (``/docs/init.js``), so the page needs no CDN and no inline script and works under
``Content-Security-Policy: script-src 'self'``.
"""

from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from conveyor.api.deps import settings_of
from conveyor.api.openapi import openapi_document


def _swagger_ui_static() -> Path:
    """The static files of the swagger-ui-py package, found without importing it."""
    spec = find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


SWAGGER_UI_STATIC = _swagger_ui_static()

# Every URL is relative, so the page also works when the API is served under a path prefix.
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Conveyor API</title>
<link rel="stylesheet" href="docs/static/swagger-ui.css">
<link rel="stylesheet" href="docs/static/index.css">
<link rel="icon" type="image/png" href="docs/static/favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/static/swagger-ui-bundle.js"></script>
<script src="docs/static/swagger-ui-standalone-preset.js"></script>
<script src="docs/init.js"></script>
</body>
</html>
"""

_INIT_JS = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
  });
});
"""

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)
HTML_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


def document_bytes(request: Request) -> bytes:
    """The app's OpenAPI document as JSON, built on first use and kept on ``app.state``."""
    state = request.app.state
    cached: bytes | None = getattr(state, "openapi_json", None)
    if cached is None:
        document = openapi_document(settings_of(request), bearer_auth=state.bearer_auth)
        cached = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        state.openapi_json = cached
    return cached


async def openapi_json(request: Request) -> Response:
    return Response(document_bytes(request), media_type="application/json")


async def docs_page(request: Request) -> Response:
    return HTMLResponse(_PAGE, headers=HTML_HEADERS)


async def docs_init(request: Request) -> Response:
    return Response(
        _INIT_JS,
        media_type="text/javascript",
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
    )


routes: list[BaseRoute] = [
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/docs", docs_page, methods=["GET"]),
    Route("/docs/init.js", docs_init, methods=["GET"], include_in_schema=False),
    Mount("/docs/static", app=StaticFiles(directory=SWAGGER_UI_STATIC), name="docs-static"),
]

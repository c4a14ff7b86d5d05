"""The dashboard: one HTML page at ``/`` and its scripts and styles under ``/ui/static``.

The page is a static shell: it holds no data and is served without a token (see
`api.auth.is_exempt`); its scripts read everything through the API with the token the
operator enters. Every script and style is a file (no inline code), so the page works under
the Content-Security-Policy the security-headers middleware sets on HTML responses
(``script-src 'self'``).
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

UI_DIR = Path(__file__).resolve().parents[1] / "ui"
STATIC_DIR = UI_DIR / "static"
_PAGE = (UI_DIR / "index.html").read_text(encoding="utf-8")


async def dashboard(request: Request) -> Response:
    return HTMLResponse(_PAGE, headers={"Cache-Control": "no-cache"})


routes: list[BaseRoute] = [
    Route("/", dashboard, methods=["GET"], include_in_schema=False),
    Mount("/ui/static", app=StaticFiles(directory=STATIC_DIR), name="ui-static"),
]

"""Bearer-token authentication of the HTTP API, as plain ASGI middleware.

Tokens come from the settings (``api_tokens``, ``api_read_tokens``) and from the lines of
``api_tokens_file``, read once when the application is built. With ``api_auth = "token"``
(the default) at least one token must be configured, else the application refuses to be
built (`ConfigError`); with ``api_auth = "none"`` the API is open and no token is checked.
In token mode every request except the probes (and ``/metrics`` unless ``metrics_auth`` is
``token``) needs ``Authorization: Bearer <token>``: a full token may do anything, a read
token only GET and HEAD (anything else is 403). A missing, malformed or unknown token is 401 with a
``WWW-Authenticate`` challenge, and the problem never says which of the three it was.

On the exempt paths the middleware still looks at the token and records whether the
request may read (`may_read`): `/readyz` shows its detail only then.

The presented token is compared with every configured one, with `hmac.compare_digest` over
SHA-256 digests (equal lengths), and the loop never stops at the first match, so the time
taken does not tell how close a guess was or which kind of token matched. Tokens are never
logged, echoed or kept in an exception message.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from conveyor.api.problems import problem_response
from conveyor.config import Settings
from conveyor.errors import ConfigError

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
METRICS_PATH = "/metrics"
# Where the middleware records, in ``scope["state"]``, whether the request may read.
MAY_READ_STATE = "auth_may_read"
# The dashboard's page and static files hold no data (every data call the page makes goes
# through the guarded API, with the token the operator typed in) and a browser cannot send
# a bearer token when it loads a page, a script or a style sheet.
DASHBOARD_PATHS = frozenset({"/"})
DASHBOARD_ASSETS = "/ui/static/"
READ_METHODS = frozenset({"GET", "HEAD"})
CHALLENGE = 'Bearer realm="conveyor"'

# The same rule as the api_tokens setting: 16 to 256 printable ASCII characters, no spaces.
_TOKEN = re.compile(r"[\x21-\x7e]{16,256}", re.ASCII)
_EXPECTED = "16 to 256 printable ASCII characters without spaces"


def _digest(token: str | bytes) -> bytes:
    data = token.encode("ascii") if isinstance(token, str) else token
    return hashlib.sha256(data).digest()


@dataclass(frozen=True, slots=True)
class Tokens:
    """The accepted tokens, kept only as SHA-256 digests."""

    full: tuple[bytes, ...] = ()
    read: tuple[bytes, ...] = ()

    @classmethod
    def of(cls, full: Iterable[str], read: Iterable[str] = ()) -> Tokens:
        return cls(
            tuple(dict.fromkeys(_digest(t) for t in full)),
            tuple(dict.fromkeys(_digest(t) for t in read)),
        )

    @property
    def enabled(self) -> bool:
        return bool(self.full or self.read)

    def access(self, presented: bytes) -> str | None:
        """``"full"``, ``"read"`` or None (unknown): checked against every token."""
        candidate = _digest(presented)
        full = False
        read = False
        for token in self.full:
            full |= hmac.compare_digest(candidate, token)
        for token in self.read:
            read |= hmac.compare_digest(candidate, token)
        if full:
            return "full"
        return "read" if read else None


def read_tokens_file(path: str) -> list[str]:
    """The tokens of a file: one per line, blank lines and ``#`` comment lines skipped.

    Raises `ConfigError` when the file cannot be read or a line is not a token; the message
    names the file and the line number, never the line's content.
    """
    where = f"api_tokens_file {path}"
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError([f"{where}: cannot be read ({reason})"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([f"{where}: is not UTF-8 text"]) from None
    tokens: list[str] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if _TOKEN.fullmatch(line):
            tokens.append(line)
        else:
            problems.append(f"{where}: line {number} is not a token ({_EXPECTED})")
    if problems:
        raise ConfigError(problems)
    return tokens


def load_tokens(settings: Settings) -> Tokens:
    """Every token the settings give.

    `ConfigError` when the tokens file is unusable or holds no token, and when
    ``api_auth`` is ``token`` and no token is configured at all: the API never starts open
    by accident. With ``api_auth = "none"`` no token is loaded (the settings refuse tokens
    then).
    """
    if settings.api_auth == "none":
        return Tokens()
    full = list(settings.api_tokens)
    if settings.api_tokens_file:
        from_file = read_tokens_file(settings.api_tokens_file)
        if not from_file:
            raise ConfigError(
                [
                    f"api_tokens_file {settings.api_tokens_file}: holds no token (only blank "
                    "or # comment lines): add a token, one per line"
                ]
            )
        full += from_file
    tokens = Tokens.of(full, settings.api_read_tokens)
    if not tokens.enabled:
        raise ConfigError(
            [
                "api_auth: is token, but no token is configured: set api_tokens, "
                "api_read_tokens or api_tokens_file (CONVEYOR_API_TOKENS, "
                "CONVEYOR_API_READ_TOKENS, CONVEYOR_API_TOKENS_FILE), or set "
                "CONVEYOR_API_AUTH=none to serve the API open to anyone who reaches it "
                "(local use only)"
            ]
        )
    return tokens


def bearer_token(headers: Headers) -> bytes | None:
    """The token of a single ``Authorization: Bearer <token>`` header, else None.

    The scheme is case-insensitive and may be followed by several spaces (RFC 9110
    section 11.1, RFC 6750 section 2.1); the token itself is one run of visible characters.
    """
    values = headers.getlist("authorization")
    if len(values) != 1:
        return None
    scheme, _, rest = values[0].partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = rest.lstrip(" ")
    if not token or not token.isascii() or not token.isprintable() or " " in token:
        return None
    return token.encode("ascii")


def route_path(scope: Scope) -> str:
    """The path as the router matches it: without the prefix the app is mounted under."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root + "/") else path


def is_exempt(path: str, *, metrics_open: bool = True) -> bool:
    """Whether `path` is served without a token: the probes, the metrics (when
    `metrics_open`) and the dashboard's static shell."""
    if path == METRICS_PATH:
        return metrics_open
    return path in EXEMPT_PATHS or path in DASHBOARD_PATHS or path.startswith(DASHBOARD_ASSETS)


def may_read(request: Request) -> bool:
    """Whether `request` carries a valid read or full token, or the API is open: what the
    middleware recorded. False when no middleware recorded anything."""
    return bool(request.scope.get("state", {}).get(MAY_READ_STATE, False))


class AuthMiddleware:
    """Refuses HTTP requests without an acceptable bearer token (see the module doc).

    Lets every request through when `tokens` holds none (``api_auth = "none"``: the API is
    open then, and every request may read). `metrics_open`: whether /metrics needs no
    token (``metrics_auth = "none"``).
    """

    def __init__(self, app: ASGIApp, tokens: Tokens, *, metrics_open: bool = True) -> None:
        self.app = app
        self.tokens = tokens
        self.metrics_open = metrics_open

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        if not self.tokens.enabled:
            state[MAY_READ_STATE] = True
            await self.app(scope, receive, send)
            return
        presented = bearer_token(Headers(scope=scope))
        access = None if presented is None else self.tokens.access(presented)
        state[MAY_READ_STATE] = access is not None
        if is_exempt(route_path(scope), metrics_open=self.metrics_open):
            await self.app(scope, receive, send)
            return
        if access is None:
            response = problem_response(
                401,
                "unauthorized",
                "Unauthorized",
                "this request needs a valid bearer token",
                headers={"WWW-Authenticate": CHALLENGE},
            )
            await response(scope, receive, send)
            return
        if access == "read" and scope["method"] not in READ_METHODS:
            response = problem_response(
                403,
                "forbidden",
                "Forbidden",
                "this token may only read (GET and HEAD requests)",
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

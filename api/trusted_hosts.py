"""The Host header check (``trusted_hosts``): a guard against DNS rebinding.

A page on an attacker's domain that rebinds its name to the API's address reaches the API
from the browser with its own name in ``Host``. With ``trusted_hosts`` set, a request whose
host (the port left out) is not one of them, or a subdomain of a ``*.name`` entry, gets 400
problem+json. The probes and ``/metrics`` always answer: kubelets and scrapers address a
pod by its IP.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from conveyor.api.auth import EXEMPT_PATHS, route_path
from conveyor.api.problems import problem_response


def host_of(scope: Scope) -> str:
    """The request's host name, lower case, without its port ('' when absent)."""
    values: list[bytes] = [v for k, v in scope["headers"] if k.lower() == b"host"]
    if len(values) != 1:
        return ""
    host = values[0].decode("latin-1").strip().lower()
    if host.startswith("["):  # [::1]:8000
        end = host.find("]")
        return host[: end + 1] if end > 0 else ""
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class HostRule:
    """The trusted hosts: exact names and ``*.name`` suffixes."""

    def __init__(self, hosts: Iterable[str]) -> None:
        items = [h.lower() for h in hosts]
        self.exact = frozenset(h for h in items if not h.startswith("*."))
        self.suffixes = tuple(h[1:] for h in items if h.startswith("*."))  # ".example.com"

    def allows(self, host: str) -> bool:
        if not host:
            return False
        return host in self.exact or any(
            host.endswith(suffix) and len(host) > len(suffix) for suffix in self.suffixes
        )


class TrustedHostMiddleware:
    """Answers 400 problem+json to a request for a host not in `hosts` (see the module
    doc). Add it only when `hosts` is not empty."""

    def __init__(self, app: ASGIApp, hosts: Iterable[str]) -> None:
        self.app = app
        self.rule = HostRule(hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or route_path(scope) in EXEMPT_PATHS
            or self.rule.allows(host_of(scope))
        ):
            await self.app(scope, receive, send)
            return
        response = problem_response(
            400,
            "untrusted-host",
            "Bad Request",
            "the Host header does not name a host this API serves (trusted_hosts)",
        )
        await response(scope, receive, send)

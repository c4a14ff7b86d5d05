"""A deadline for a request's headers: uvicorn has none of its own.

uvicorn's keep-alive timeout only runs between requests and is cancelled by the first byte
of the next one, and nothing at all runs on a fresh connection: a client that opens a
connection and sends its headers a byte at a time (or never) holds it, and a socket, for
ever. A few hundred such clients exhaust ``limit_concurrency`` or the process's file
descriptors.

`HeaderDeadlineProtocol` is uvicorn's httptools protocol with one timer more: armed when a
connection is made and after each response, cancelled when a request's headers are
complete. When it fires the connection is closed. The time a handler takes, or a body
being uploaded, is not bounded here (the per-request deadline and the body limit do that).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def header_deadline_protocol(timeout_seconds: float) -> type[HeaderDeadlineProtocol]:
    """The protocol class for `uvicorn.Config(http=...)`: it closes a connection whose
    request headers are not complete within `timeout_seconds`."""
    if timeout_seconds <= 0:
        raise ValueError("timeout_seconds must be > 0")
    return type(
        "HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"header_timeout": timeout_seconds}
    )


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, whose connection is closed when no request's headers
    are complete `header_timeout` seconds after it was made or after its last response."""

    header_timeout: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Waiting for the next request (not for a pipelined one already read)?
        idle = not self.pipeline and (self.cycle is None or self.cycle.response_complete)
        if idle and not self.transport.is_closing():
            self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

"""A lean HTTP/1.1 load generator for `POST /jobs` one job per request.

A full-featured client (httpx) spends more CPU per request than the API does to create a
job; on a 2-core machine the load generator would then measure itself. This one keeps a
few keep-alive connections, writes each request as one pre-formatted byte string and reads
only what it needs of the answer (status line, Content-Length, the job id in the body), so
most of the CPU goes to the server being measured. It speaks only the subset of HTTP/1.1
the Conveyor API answers with (Content-Length bodies, no chunked encoding).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlsplit

_HEADER_END = b"\r\n\r\n"


class HttpLoadError(RuntimeError):
    """The API answered something other than 201 Created."""


def _request(host: str, path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(_HEADER_END)
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return status, body


async def post_jobs(
    api_url: str, bodies: list[bytes], connections: int, path: str = "/jobs"
) -> list[str]:
    """POST each body (a JSON job) once over `connections` keep-alive connections; the ids
    of the created jobs. Raises `HttpLoadError` on any answer but 201."""
    url = urlsplit(api_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    todo = iter(range(len(bodies)))
    ids: list[str] = [""] * len(bodies)

    async def one_connection() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for i in todo:  # shared iterator: each request is sent by one connection
                writer.write(_request(url.netloc, path, bodies[i]))
                status, body = await _read_answer(reader)
                if status != 201:
                    raise HttpLoadError(f"POST {path} answered {status}: {body[:200]!r}")
                ids[i] = json.loads(body)["id"]
        finally:
            writer.close()
            await writer.wait_closed()

    await asyncio.gather(*(one_connection() for _ in range(max(1, min(connections, len(bodies))))))
    return ids


async def _get_timed(api_url: str, path: str, times: int) -> tuple[list[float], bytes]:
    url = urlsplit(api_url)
    reader, writer = await asyncio.open_connection(url.hostname or "127.0.0.1", url.port or 80)
    request = f"GET {path} HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode()
    seconds: list[float] = []
    body = b""
    try:
        for _ in range(times):
            start = time.perf_counter()
            writer.write(request)
            status, body = await _read_answer(reader)
            seconds.append(time.perf_counter() - start)
            if status != 200:
                raise HttpLoadError(f"GET {path} answered {status}: {body[:200]!r}")
    finally:
        writer.close()
        await writer.wait_closed()
    return seconds, body


def get_timed(api_url: str, path: str, times: int) -> tuple[list[float], Any]:
    """GET `path` `times` times over one keep-alive connection: the seconds each answer
    took (request written -> whole body read) and the last answer's JSON."""
    seconds, body = asyncio.run(_get_timed(api_url, path, times))
    return seconds, json.loads(body)

"""Bearer tokens, CORS and security headers."""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from conveyor.api.app import create_app
from conveyor.api.auth import EXEMPT_PATHS, Tokens, bearer_token, is_exempt, read_tokens_file
from conveyor.api.cli import api_command
from conveyor.api.middleware import CONTENT_SECURITY_POLICY, SecurityHeadersMiddleware
from conveyor.config import Settings
from conveyor.errors import ConfigError
from conveyor.ids import new_job_id
from tests.api.conftest import app_client, assert_problem, make_settings, serve
from tests.helpers.http import JSON

pytestmark = pytest.mark.anyio

FULL = "full-token-0123456789abcdef"
FULL_2 = "second-full-token-zyxwvutsr"
READ = "read-token-0123456789abcdef"
FILE_TOKEN = "file-token-0123456789abcdef"
ALL_TOKENS = (FULL, FULL_2, READ, FILE_TOKEN)
CHALLENGE = 'Bearer realm="conveyor"'
SAMPLE_JOB_ID = "01J00000000000000000000000"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    path.write_text(f"# deploy tokens\n\n  {FILE_TOKEN}  \n# {FULL}-commented-out\n")
    return path


@pytest.fixture
def auth_settings(redis_url: str, prefix: str, token_file: Path) -> Settings:
    return make_settings(
        redis_url,
        prefix,
        api_tokens=(FULL, FULL_2),
        api_read_tokens=(READ,),
        api_tokens_file=str(token_file),
    )


@pytest.fixture
async def auth_app(auth_settings: Settings) -> AsyncIterator[Starlette]:
    app = create_app(auth_settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def anon(auth_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=auth_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        yield c


def assert_unauthorized(response: httpx.Response) -> None:
    problem = assert_problem(response, 401)
    assert response.headers["www-authenticate"] == CHALLENGE
    assert problem["type"] == "urn:conveyor:problem:unauthorized"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-correlation-id"]


# -- every route is guarded -----------------------------------------------------------------


def requests_of(routes: list[BaseRoute]) -> list[tuple[str, str]]:
    """(method, path) for every method of every route, path parameters filled in."""
    out: list[tuple[str, str]] = []
    for route in routes:
        if isinstance(route, Route):
            path = re.sub(r"\{job_id\}", SAMPLE_JOB_ID, route.path)
            path = re.sub(r"\{[^}]+\}", "default", path)
            out += [(method, path) for method in sorted(route.methods or ())]
        elif isinstance(route, Mount):
            out += [("GET", f"{route.path}/anything.js")]
        else:  # a new kind of route: extend this test to reach it
            raise AssertionError(f"unexpected route type {type(route).__name__}")
    return out


async def test_every_route_needs_a_token_except_the_probes(
    auth_app: Starlette, anon: httpx.AsyncClient
) -> None:
    requests = requests_of(auth_app.routes)
    paths = {path for _, path in requests}
    assert {"/jobs", "/jobs/batch", "/queues", "/workers", "/healthz", "/readyz"} <= paths
    assert {path for path in paths if path in EXEMPT_PATHS} <= {"/healthz", "/readyz", "/metrics"}
    for method, path in requests:
        response = await anon.request(method, path, headers=JSON)
        if path in EXEMPT_PATHS:
            assert response.status_code < 400, (method, path)
        elif is_exempt(path):  # the dashboard's static shell: served, or 404 when missing
            assert response.status_code in (200, 404), (method, path)
        else:
            assert response.status_code == 401, (method, path)
            assert response.headers["www-authenticate"] == CHALLENGE


async def test_every_route_accepts_a_full_token(
    auth_app: Starlette, anon: httpx.AsyncClient
) -> None:
    for method, path in requests_of(auth_app.routes):
        response = await anon.request(method, path, headers={**bearer(FULL), **JSON})
        assert response.status_code not in (401, 403), (method, path, response.text)


async def test_unknown_paths_and_methods_need_a_token_too(anon: httpx.AsyncClient) -> None:
    """Without a token nothing tells which routes exist."""
    for method, path in [("GET", "/nope"), ("PUT", "/jobs"), ("OPTIONS", "/jobs"), ("GET", "/ui")]:
        assert_unauthorized(await anon.request(method, path, headers=JSON))
    assert_problem(await anon.get("/nope", headers=bearer(FULL)), 404)


async def test_probes_need_no_token(anon: httpx.AsyncClient) -> None:
    assert (await anon.get("/healthz")).status_code == 200
    assert (await anon.get("/readyz")).status_code == 200
    # Not a probe: a path that merely starts like one is guarded.
    assert_unauthorized(await anon.get("/healthz/x"))


async def test_full_tokens_from_settings_and_file_may_write(anon: httpx.AsyncClient) -> None:
    for token in (FULL, FULL_2, FILE_TOKEN):
        created = await anon.post("/jobs", json={"type": "t"}, headers=bearer(token))
        assert created.status_code == 201
        job_id = created.json()["id"]
        assert (await anon.get(f"/jobs/{job_id}", headers=bearer(token))).status_code == 200
        assert (
            await anon.delete(f"/jobs/{job_id}", headers={**bearer(token), **JSON})
        ).status_code == 200
        retried = await anon.post(f"/jobs/{job_id}/retry", headers={**bearer(token), **JSON})
        assert retried.status_code == 200


async def test_commented_line_of_the_file_is_not_a_token(anon: httpx.AsyncClient) -> None:
    assert_unauthorized(await anon.get("/jobs", headers=bearer(f"{FULL}-commented-out")))


async def test_read_token_may_only_read(anon: httpx.AsyncClient) -> None:
    created = await anon.post("/jobs", json={"type": "t"}, headers=bearer(FULL))
    job_id = created.json()["id"]
    read = bearer(READ)
    assert (await anon.get("/jobs", headers=read)).status_code == 200
    assert (await anon.get(f"/jobs/{job_id}", headers=read)).status_code == 200
    assert (await anon.head(f"/jobs/{job_id}", headers=read)).status_code == 200
    assert (await anon.get("/queues", headers=read)).status_code == 200
    assert (await anon.get("/workers", headers=read)).status_code == 200
    refused = [
        await anon.post("/jobs", json={"type": "t"}, headers=read),
        await anon.post("/jobs/batch", json={"jobs": [{"type": "t"}]}, headers=read),
        await anon.delete(f"/jobs/{job_id}", headers={**read, **JSON}),
        await anon.post(f"/jobs/{job_id}/retry", headers={**read, **JSON}),
    ]
    for response in refused:
        problem = assert_problem(response, 403)
        assert problem["type"] == "urn:conveyor:problem:forbidden"
        assert "www-authenticate" not in response.headers
    assert (await anon.get(f"/jobs/{job_id}", headers=read)).json()["status"] == "pending"


@pytest.mark.parametrize(
    "value",
    [
        "Bearer",
        "Bearer ",
        f"Bearer{FULL}",
        f"Basic {FULL}",
        "Basic dXNlcjpwYXNz",
        f"Token {FULL}",
        FULL,
        f"Bearer {FULL} extra",
        f"Bearer {FULL}x",
        f"Bearer {FULL[:-1]}",
        f"Bearer x{FULL}",
        f"Bearer\t{FULL}",
        f"Bearer {FULL.upper()}",
        f"Bearer {FULL},{FULL_2}",
        "Bearer wrong-token-0123456789abcdef",
    ],
)
async def test_malformed_or_wrong_credentials_are_401(anon: httpx.AsyncClient, value: str) -> None:
    response = await anon.get("/jobs", headers={"Authorization": value})
    assert_unauthorized(response)
    assert FULL not in response.text


async def test_401_does_not_say_why(anon: httpx.AsyncClient) -> None:
    """Missing, malformed and wrong tokens get the very same answer."""
    bodies = set()
    for headers in [{}, {"Authorization": "Basic x"}, bearer("wrong-token-0123456789abcdef")]:
        response = await anon.get("/jobs", headers=headers)
        assert_unauthorized(response)
        bodies.add(response.content)
    assert len(bodies) == 1


async def test_two_authorization_headers_are_401(anon: httpx.AsyncClient) -> None:
    headers = [("Authorization", f"Bearer {FULL}"), ("Authorization", f"Bearer {FULL}")]
    assert_unauthorized(await anon.get("/jobs", headers=headers))


@pytest.mark.parametrize("value", [f"bearer {FULL}", f"BEARER {FULL}", f"Bearer   {FULL}"])
async def test_scheme_is_case_insensitive_and_may_be_followed_by_spaces(
    anon: httpx.AsyncClient, value: str
) -> None:
    """RFC 9110 section 11.1: the scheme is case-insensitive, and 1*SP separates it from
    the credentials (RFC 6750 section 2.1)."""
    assert (await anon.get("/jobs", headers={"Authorization": value})).status_code == 200


async def test_no_token_configured_means_open(client: httpx.AsyncClient) -> None:
    assert (await client.post("/jobs", json={"type": "t"})).status_code == 201
    assert (await client.get("/jobs", headers={"Authorization": "Basic x"})).status_code == 200


async def test_read_tokens_alone_turn_auth_on(redis_url: str, prefix: str) -> None:
    async with app_client(make_settings(redis_url, prefix, api_read_tokens=(READ,))) as c:
        assert_unauthorized(await c.get("/jobs"))
        assert (await c.get("/jobs", headers=bearer(READ))).status_code == 200
        assert_problem(await c.post("/jobs", json={"type": "t"}, headers=bearer(READ)), 403)


async def test_tokens_file_alone_turns_auth_on(
    redis_url: str, prefix: str, token_file: Path
) -> None:
    settings = make_settings(redis_url, prefix, api_tokens_file=str(token_file))
    async with app_client(settings) as c:
        assert_unauthorized(await c.get("/jobs"))
        assert (
            await c.post("/jobs", json={"type": "t"}, headers=bearer(FILE_TOKEN))
        ).status_code == 201


async def test_tokens_file_is_read_once_at_creation(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    path = tmp_path / "tokens"
    path.write_text(FILE_TOKEN + "\n")
    app = create_app(make_settings(redis_url, prefix, api_tokens_file=str(path)))
    path.unlink()  # later changes do not matter to a running app
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
            assert (await c.get("/jobs", headers=bearer(FILE_TOKEN))).status_code == 200


# -- the tokens file ------------------------------------------------------------------------


def test_tokens_file_lines(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_bytes(
        b"# comment\r\n"
        + FULL.encode()
        + b"\r\n\n   \t\n  "
        + FULL_2.encode()
        + b"\n#"
        + READ.encode()
        + b"\n"
        + FILE_TOKEN.encode()
    )
    assert read_tokens_file(str(path)) == [FULL, FULL_2, FILE_TOKEN]


def test_empty_tokens_file_gives_no_token(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("# nothing yet\n\n")
    assert read_tokens_file(str(path)) == []


@pytest.mark.parametrize("kind", ["missing", "directory", "binary"])
def test_unusable_tokens_file_refuses_to_start(
    redis_url: str, prefix: str, tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "tokens"
    if kind == "directory":
        path.mkdir()
    elif kind == "binary":
        path.write_bytes(b"\xff\xfe" + FULL.encode())
    with pytest.raises(ConfigError) as info:
        create_app(make_settings(redis_url, prefix, api_tokens_file=str(path)))
    message = str(info.value)
    assert f"api_tokens_file {path}" in message
    assert FULL not in message


def test_a_line_that_is_no_token_is_named_by_number_only(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    path = tmp_path / "tokens"
    secretish = "short secret"
    path.write_text(f"{FULL}\n# c\n{secretish}\n{FULL_2} trailing-part\n")
    with pytest.raises(ConfigError) as info:
        create_app(make_settings(redis_url, prefix, api_tokens_file=str(path)))
    message = str(info.value)
    assert "line 3" in message
    assert "line 4" in message
    assert "line 1" not in message
    for leak in (secretish, "short", FULL, FULL_2, "trailing-part"):
        assert leak not in message


def test_conveyor_api_exits_2_on_an_unreadable_tokens_file(tmp_path: Path) -> None:
    path = tmp_path / "missing-tokens"
    result = CliRunner().invoke(api_command, [], env={"CONVEYOR_API_TOKENS_FILE": str(path)})
    assert result.exit_code == 2, result.output
    assert "invalid configuration" in result.output
    assert str(path) in result.output
    assert "Traceback" not in result.output


def test_conveyor_api_does_not_print_the_tokens_file(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"{FULL}\nnot a token line\n")
    result = CliRunner().invoke(api_command, [], env={"CONVEYOR_API_TOKENS_FILE": str(path)})
    assert result.exit_code == 2
    assert "line 2" in result.output
    assert FULL not in result.output
    assert "not a token line" not in result.output


# -- the token check itself -----------------------------------------------------------------


def test_tokens_keep_only_digests() -> None:
    tokens = Tokens.of([FULL], [READ])
    assert FULL.encode() not in repr(tokens).encode()
    assert all(len(t) == 32 for t in (*tokens.full, *tokens.read))
    assert tokens.access(FULL.encode()) == "full"
    assert tokens.access(READ.encode()) == "read"
    assert tokens.access(b"x" * 20) is None
    assert not Tokens.of([]).enabled


def test_a_token_in_both_lists_is_full() -> None:
    assert Tokens.of([FULL], [FULL]).access(FULL.encode()) == "full"


def test_every_token_is_compared(monkeypatch: pytest.MonkeyPatch) -> None:
    """No early exit: a match on the first token still compares against all others."""
    calls: list[int] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(1)
        return bool(real(a, b))

    monkeypatch.setattr(hmac, "compare_digest", counting)
    tokens = Tokens.of([FULL, FULL_2, FILE_TOKEN], [READ])
    for presented in (FULL, FILE_TOKEN, READ, "nothing-matches-this-one"):
        calls.clear()
        tokens.access(presented.encode())
        assert len(calls) == 4


def test_bearer_token_parsing() -> None:
    assert bearer_token(Headers({"authorization": f"Bearer {FULL}"})) == FULL.encode()
    assert bearer_token(Headers({"authorization": f"bEaReR  {FULL}"})) == FULL.encode()
    assert bearer_token(Headers({})) is None
    assert bearer_token(Headers({"authorization": "Bearer t\u00e9st-token-000000000"})) is None


# -- tokens never logged --------------------------------------------------------------------


def assert_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert caplog.records  # something was logged: the check is not vacuous
    for record in caplog.records:
        text = f"{record.getMessage()} {record.__dict__!r}"
        for token in ALL_TOKENS:
            assert token not in text, record
        assert "wrong-token" not in text


async def test_tokens_are_never_logged_in_process(
    anon: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await anon.post("/jobs", json={"type": "t"}, headers=bearer(FULL))
    await anon.post("/jobs", json={"type": "t"}, headers=bearer(READ))
    await anon.get("/jobs", headers=bearer("wrong-token-0123456789abcdef"))
    await anon.get("/jobs", headers={"Authorization": f"Basic {FILE_TOKEN}"})
    await anon.get("/jobs?type=a:b", headers=bearer(FULL_2))
    assert_not_logged(caplog)


async def test_tokens_are_never_logged_by_the_server(
    auth_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with serve(auth_settings) as base_url:
        async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
            assert (
                await http.post("/jobs", json={"type": "t"}, headers=bearer(FULL))
            ).status_code == 201
            assert (
                await http.delete(f"/jobs/{new_job_id()}", headers={**bearer(READ), **JSON})
            ).status_code == 403
            bad = await http.get("/jobs", headers=bearer("wrong-token-0123456789abcdef"))
            assert bad.status_code == 401
            assert bad.headers["www-authenticate"] == CHALLENGE
    assert any(r.name.startswith("uvicorn") for r in caplog.records)
    assert_not_logged(caplog)


# -- CORS -----------------------------------------------------------------------------------

ORIGIN = "https://app.example.com"
PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
}


@pytest.fixture
async def cors(redis_url: str, prefix: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(redis_url, prefix, cors_origins=(ORIGIN,), api_tokens=(FULL,))
    async with app_client(settings) as c:
        yield c


async def test_preflight_is_answered_without_a_token(cors: httpx.AsyncClient) -> None:
    response = await cors.options("/jobs", headers=PREFLIGHT)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    allowed = response.headers["access-control-allow-methods"]
    assert "POST" in allowed
    assert "DELETE" in allowed
    allowed_headers = response.headers["access-control-allow-headers"].lower()
    for header in ("authorization", "content-type", "idempotency-key"):
        assert header in allowed_headers
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_cors_response_exposes_headers(cors: httpx.AsyncClient) -> None:
    response = await cors.post(
        "/jobs", json={"type": "t"}, headers={"Origin": ORIGIN, **bearer(FULL)}
    )
    assert response.status_code == 201
    assert response.headers["access-control-allow-origin"] == ORIGIN
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert {"x-correlation-id", "location"} <= exposed


async def test_a_401_is_readable_cross_origin(cors: httpx.AsyncClient) -> None:
    response = await cors.get("/jobs", headers={"Origin": ORIGIN})
    assert_unauthorized(response)
    assert response.headers["access-control-allow-origin"] == ORIGIN


async def test_other_origins_get_no_cors_headers(cors: httpx.AsyncClient) -> None:
    evil = "https://evil.example.com"
    preflight = await cors.options("/jobs", headers={**PREFLIGHT, "Origin": evil})
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    response = await cors.get("/jobs", headers={"Origin": evil, **bearer(FULL)})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


async def test_cors_is_off_by_default(client: httpx.AsyncClient) -> None:
    preflight = await client.options("/jobs", headers=PREFLIGHT)
    assert_problem(preflight, 405)
    assert not any(h.startswith("access-control-") for h in preflight.headers)
    response = await client.get("/jobs", headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert not any(h.startswith("access-control-") for h in response.headers)


async def test_wildcard_origin(redis_url: str, prefix: str) -> None:
    async with app_client(make_settings(redis_url, prefix, cors_origins=("*",))) as c:
        response = await c.get("/jobs", headers={"Origin": "https://any.example"})
        assert response.headers["access-control-allow-origin"] == "*"


# -- security headers -----------------------------------------------------------------------


async def test_nosniff_on_every_kind_of_response(client: httpx.AsyncClient) -> None:
    responses = [
        await client.get("/healthz"),
        await client.post("/jobs", json={"type": "t"}),
        await client.post("/jobs", json={}),
        await client.get("/nope"),
        await client.put("/jobs"),
        await client.get("/openapi.json"),
    ]
    for response in responses:
        assert response.headers["x-content-type-options"] == "nosniff", response.request.url
        assert "content-security-policy" not in response.headers  # JSON, not HTML


async def test_docs_page_has_the_html_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"


async def test_docs_need_a_token_when_auth_is_on(anon: httpx.AsyncClient) -> None:
    assert_unauthorized(await anon.get("/docs"))
    response = await anon.get("/docs", headers=bearer(READ))
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


async def test_header_middleware_on_any_html_response() -> None:
    """Whatever an HTML route sets, the policy is the one of the middleware."""

    async def page(_: Request) -> Response:
        return HTMLResponse("<p>hi</p>", headers={"Content-Security-Policy": "default-src *"})

    async def text(_: Request) -> Response:
        return PlainTextResponse("hi")

    app = Starlette(
        routes=[Route("/page", page), Route("/text", text)],
        middleware=[Middleware(SecurityHeadersMiddleware)],
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        html = await c.get("/page")
        assert html.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert html.headers["x-frame-options"] == "DENY"
        assert html.headers["referrer-policy"] == "no-referrer"
        assert html.headers["x-content-type-options"] == "nosniff"
        plain = await c.get("/text")
        assert plain.headers["x-content-type-options"] == "nosniff"
        assert "content-security-policy" not in plain.headers
        assert "x-frame-options" not in plain.headers


async def test_probes_stay_open_under_a_root_path(auth_app: Starlette) -> None:
    transport = httpx.ASGITransport(app=auth_app, root_path="/api")
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        assert (await c.get("/api/healthz")).status_code == 200
        assert_unauthorized(await c.get("/api/jobs"))
        assert (await c.get("/api/jobs", headers=bearer(READ))).status_code == 200

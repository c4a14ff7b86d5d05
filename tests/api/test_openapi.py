"""The OpenAPI document: well formed, in step with the routes, and served with Swagger UI."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import jsonschema_rs
import pytest
import schemathesis
from schemathesis.core.result import Ok
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from conveyor import codec, jobspec
from conveyor.api import body, dto
from conveyor.api.app import create_app
from conveyor.api.openapi import openapi_document
from conveyor.api.routes.docs import CONTENT_SECURITY_POLICY, SWAGGER_UI_STATIC
from conveyor.config import Settings
from conveyor.errors import ValidationError
from conveyor.job import Attempt
from tests.api.conftest import app_client, make_settings

Doc = dict[str, Any]

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
PUBLIC = {"/healthz", "/readyz", "/metrics"}
REDIS_FREE = {"/healthz", "/openapi.json", "/docs", "/metrics"}

# What the agreed contract says each operation answers, besides 401/403/503/500.
CONTRACT: dict[tuple[str, str], set[str]] = {
    ("post", "/jobs"): {"201", "200", "400", "409", "413", "415", "422"},
    ("post", "/jobs/batch"): {"201", "200", "400", "409", "413", "415", "422"},
    ("get", "/jobs"): {"200", "422"},
    ("get", "/jobs/{job_id}"): {"200", "404"},
    ("delete", "/jobs/{job_id}"): {"200", "202", "404", "409"},
    ("post", "/jobs/{job_id}/retry"): {"200", "404", "409"},
    ("get", "/queues"): {"200", "422"},
    ("get", "/queues/{name}"): {"200", "404"},
    ("get", "/workers"): {"200"},
    ("get", "/queues/{name}/throughput"): {"200", "404", "422"},
    ("post", "/queues/{name}/retry-failed"): {"200", "404", "422"},
    ("post", "/queues/{name}/purge"): {"200", "404", "422"},
    ("post", "/queues/{name}/pause"): {"200", "404", "422"},
    ("post", "/queues/{name}/resume"): {"200", "404", "422"},
    ("get", "/queues/{name}/limits"): {"200", "422"},
    ("put", "/queues/{name}/limits/{key}"): {"200", "201", "409", "413", "415", "422"},
    ("delete", "/queues/{name}/limits/{key}"): {"204", "404", "422"},
    ("put", "/workers/{worker_id}/concurrency"): {"200", "400", "404", "413", "415", "422"},
    ("put", "/queues/{name}/concurrency"): {"200", "400", "404", "413", "415", "422"},
    ("get", "/schedules"): {"200", "422"},
    ("get", "/schedules/{name}"): {"200", "404"},
    ("put", "/schedules/{name}"): {"201", "200", "400", "409", "413", "415", "422"},
    ("delete", "/schedules/{name}"): {"204", "404"},
    ("get", "/healthz"): {"200"},
    ("get", "/readyz"): {"200", "503"},
    ("get", "/openapi.json"): {"200"},
    ("get", "/docs"): {"200"},
    ("get", "/metrics"): {"200"},
}

# The fields each OpenAPI 3.1 object may have (extensions x-* aside): a typo is an error.
DOCUMENT_FIELDS = {
    "openapi",
    "info",
    "jsonSchemaDialect",
    "servers",
    "paths",
    "webhooks",
    "components",
    "security",
    "tags",
    "externalDocs",
}
INFO_FIELDS = {
    "title",
    "summary",
    "description",
    "termsOfService",
    "contact",
    "license",
    "version",
}
PATH_ITEM_FIELDS = {"$ref", "summary", "description", "servers", "parameters", *METHODS}
OPERATION_FIELDS = {
    "tags",
    "summary",
    "description",
    "externalDocs",
    "operationId",
    "parameters",
    "requestBody",
    "responses",
    "callbacks",
    "deprecated",
    "security",
    "servers",
}
PARAMETER_FIELDS = {
    "name",
    "in",
    "description",
    "required",
    "deprecated",
    "allowEmptyValue",
    "style",
    "explode",
    "allowReserved",
    "schema",
    "example",
    "examples",
    "content",
}
RESPONSE_FIELDS = {"description", "headers", "content", "links"}
HEADER_FIELDS = PARAMETER_FIELDS - {"name", "in", "allowEmptyValue", "allowReserved"}
MEDIA_TYPE_FIELDS = {"schema", "example", "examples", "encoding"}
REQUEST_BODY_FIELDS = {"description", "content", "required"}
COMPONENT_FIELDS = {
    "schemas",
    "responses",
    "parameters",
    "examples",
    "requestBodies",
    "headers",
    "securitySchemes",
    "links",
    "callbacks",
    "pathItems",
}
STATUS_KEY = re.compile(r"[1-5](?:[0-9]{2}|XX)|default")


@pytest.fixture(scope="module")
def doc() -> Doc:
    return openapi_document(Settings(max_batch_jobs=250, max_payload_bytes=4096), bearer_auth=True)


def resolve(doc: Doc, node: Any) -> Any:
    """`node`, or what its local $ref points to."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def walk(node: Any, where: str = "#") -> Iterator[tuple[str, Any]]:
    yield where, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{where}/{i}")


def operations(doc: Doc) -> Iterator[tuple[str, str, Doc]]:
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def parameters_of(doc: Doc, path: str, method: str) -> list[Doc]:
    item = doc["paths"][path]
    params = [*item.get("parameters", []), *item[method].get("parameters", [])]
    return [resolve(doc, p) for p in params]


def schema_validator(doc: Doc, schema: Doc) -> Any:
    """A validator for `schema`, whose local $refs resolve inside the document."""
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    root["components"] = doc["components"]
    return jsonschema_rs.validator_for(root, validate_formats=True)


def assert_fields(node: Doc, allowed: set[str], where: str) -> None:
    unknown = {k for k in node if k not in allowed and not k.startswith("x-")}
    assert not unknown, f"{where}: unknown fields {sorted(unknown)}"


def normalise(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


# -- the document is valid OpenAPI 3.1 ------------------------------------------------------


def test_document_has_the_openapi_31_shape(doc: Doc) -> None:
    assert doc["openapi"] == "3.1.0"
    assert_fields(doc, DOCUMENT_FIELDS, "document")
    assert_fields(doc["info"], INFO_FIELDS, "info")
    assert doc["info"]["title"] == "Conveyor"
    assert doc["info"]["version"] == metadata.version("conveyor")
    assert "servers" not in doc
    assert_fields(doc["components"], COMPONENT_FIELDS, "components")
    json.dumps(doc, allow_nan=False)  # plain JSON: no NaN, no tuples-as-objects surprises


def test_every_reference_resolves(doc: Doc) -> None:
    refs = [
        (where, node["$ref"])
        for where, node in walk(doc)
        if isinstance(node, dict) and isinstance(node.get("$ref"), str)
    ]
    assert refs
    for where, ref in refs:
        assert ref.startswith("#/components/"), where
        target = resolve(doc, {"$ref": ref})
        assert isinstance(target, dict), f"{where}: {ref}"


def test_every_component_schema_is_valid_json_schema_2020_12(doc: Doc) -> None:
    for name, schema in doc["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name
    for where, node in walk(doc["paths"]):
        if where.endswith("/schema") and isinstance(node, dict):
            assert jsonschema_rs.meta.is_valid(node), where


def test_operations_are_well_formed(doc: Doc) -> None:
    operation_ids = []
    schemes = doc["components"]["securitySchemes"]
    for path, item in doc["paths"].items():
        assert path.startswith("/"), path
        assert_fields(item, PATH_ITEM_FIELDS, path)
        for method in METHODS:
            if method not in item:
                continue
            op = item[method]
            where = f"{method.upper()} {path}"
            assert_fields(op, OPERATION_FIELDS, where)
            operation_ids.append(op["operationId"])
            assert op["summary"]
            assert op["responses"], where
            for status, response in op["responses"].items():
                assert STATUS_KEY.fullmatch(status), f"{where}: {status}"
                response = resolve(doc, response)
                assert_fields(response, RESPONSE_FIELDS, f"{where} {status}")
                assert response["description"], f"{where} {status}"
                for header in response.get("headers", {}).values():
                    assert_fields(resolve(doc, header), HEADER_FIELDS, f"{where} {status}")
                for media in response.get("content", {}).values():
                    assert_fields(media, MEDIA_TYPE_FIELDS, f"{where} {status}")
            if "requestBody" in op:
                body = resolve(doc, op["requestBody"])
                assert_fields(body, REQUEST_BODY_FIELDS, where)
                for media in body["content"].values():
                    assert_fields(media, MEDIA_TYPE_FIELDS, where)
            params = parameters_of(doc, path, method)
            seen = set()
            for param in params:
                assert_fields(param, PARAMETER_FIELDS, where)
                assert param["in"] in {"query", "header", "path", "cookie"}, where
                assert "schema" in param, where
                key = (param["name"].lower(), param["in"])
                assert key not in seen, f"{where}: {key} declared twice"
                seen.add(key)
            templated = set(re.findall(r"\{([^}]+)\}", path))
            in_path = {p["name"] for p in params if p["in"] == "path"}
            assert templated == in_path, where
            assert all(p["required"] is True for p in params if p["in"] == "path"), where
            for requirement in op["security"]:
                assert set(requirement) <= set(schemes), where
    assert len(operation_ids) == len(set(operation_ids)), "operationIds must be unique"


def test_every_example_matches_its_schema(doc: Doc) -> None:
    checked = 0
    for where, node in walk(doc):
        if not (isinstance(node, dict) and "schema" in node and "examples" in node):
            continue
        if not isinstance(node["schema"], dict) or not isinstance(node["examples"], dict):
            continue  # a schema property named "examples", not a media type
        validator = schema_validator(doc, node["schema"])
        for name, example in node["examples"].items():
            errors = [e.message for e in validator.iter_errors(example["value"])]
            assert not errors, f"{where}/examples/{name}: {errors}"
            checked += 1
    assert checked > 20


def test_schemathesis_loads_every_operation(doc: Doc) -> None:
    schema = schemathesis.openapi.from_dict(doc)
    labels = set()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        labels.add(result.ok().label)
    assert labels == {f"{m.upper()} {p}" for p, m, _ in operations(doc)}


# -- the document matches the application ---------------------------------------------------


def app_operations(app: Starlette) -> set[tuple[str, str]]:
    """(method, path) of every documented-to-be route of the app: static files aside."""
    found = set()
    for route in app.routes:
        if isinstance(route, Mount):
            continue  # the Swagger UI assets
        assert isinstance(route, Route), route
        if not route.include_in_schema:
            continue
        methods = set(route.methods or ())
        if "GET" in methods:
            methods.discard("HEAD")  # Starlette answers HEAD wherever it answers GET
        for method in methods:
            found.add((method.lower(), normalise(route.path)))
    return found


def test_every_route_is_documented_and_every_operation_exists(doc: Doc) -> None:
    app = create_app(Settings(api_auth="none"))
    documented = {(method, normalise(path)) for path, method, _ in operations(doc)}
    actual = app_operations(app)
    assert actual - documented == set(), "routes missing from the document"
    assert documented - actual == set(), "documented operations the app does not have"


def test_every_operation_documents_the_statuses_of_the_contract(doc: Doc) -> None:
    for path, method, op in operations(doc):
        statuses = set(op["responses"])
        where = f"{method.upper()} {path}"
        expected = CONTRACT.get((method, path))
        assert expected is not None, f"{where} is not in the contract table"
        assert expected <= statuses, f"{where} lacks {sorted(expected - statuses)}"
        assert "500" in statuses, where
        if path not in PUBLIC:
            assert "401" in statuses, where
            if method != "get":
                assert "403" in statuses, where
        if path not in REDIS_FREE:
            assert "503" in statuses, where
        for status in statuses - {"default"}:
            response = resolve(doc, op["responses"][status])
            content = response.get("content", {})
            if status.startswith(("4", "5")):
                assert set(content) == {"application/problem+json"}, f"{where} {status}"
                assert content["application/problem+json"]["examples"], f"{where} {status}"
            elif content and "application/json" in content:
                assert content["application/json"]["examples"], f"{where} {status}"
    assert set(CONTRACT) == {(m, p) for p, m, _ in operations(doc)}


def test_security_applies_to_every_operation_but_the_probes(doc: Doc) -> None:
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": doc["components"]["securitySchemes"]["bearer"]["description"],
    }
    for path, method, op in operations(doc):
        if path in PUBLIC:
            assert op["security"] == [], f"{method} {path}"
        else:
            assert op["security"] == [{"bearer": []}], f"{method} {path}"


def test_an_open_api_declares_no_security() -> None:
    doc = openapi_document(Settings(), bearer_auth=False)
    assert "security" not in doc
    assert "securitySchemes" not in doc["components"]
    assert {"Unauthorized", "Forbidden"}.isdisjoint(doc["components"]["responses"])
    for path, method, op in operations(doc):
        assert "security" not in op, f"{method} {path}"
        assert not {"401", "403"} & set(op["responses"]), f"{method} {path}"
    assert "runs open (api_auth none)" in doc["info"]["description"]
    assert not [where for where, node in walk(doc) if node == "#/components/responses/Forbidden"]


def test_a_secured_api_declares_401_everywhere_and_403_on_writes(doc: Doc) -> None:
    for path, method, op in operations(doc):
        where = f"{method.upper()} {path}"
        if path in PUBLIC:
            assert not {"401", "403"} & set(op["responses"]), where
        else:
            assert "401" in op["responses"], where
            assert ("403" in op["responses"]) == (method != "get"), where
        assert list(op["responses"]) == sorted(op["responses"]), where
    assert "Bearer <token>" in doc["info"]["description"]


TOKEN = "openapi-test-token-0123456789"


@pytest.mark.anyio
@pytest.mark.parametrize("tokens", ["api_tokens", "api_read_tokens", "api_tokens_file"])
async def test_the_served_document_declares_the_auth_the_app_enforces(
    redis_url: str, prefix: str, tmp_path: Path, tokens: str
) -> None:
    async with app_client(make_settings(redis_url, prefix)) as open_client:
        opened = await open_client.get("/openapi.json")
        assert (await open_client.post("/jobs", json={"type": "a"})).status_code == 201
    assert opened.status_code == 200
    assert "securitySchemes" not in opened.json()["components"]
    assert all("security" not in op for _, _, op in operations(opened.json()))

    if tokens == "api_tokens_file":
        path = tmp_path / "tokens"
        path.write_text(f"# the API's tokens\n{TOKEN}\n")
        value: object = str(path)
    else:
        value = (TOKEN,)
    async with app_client(make_settings(redis_url, prefix, **{tokens: value})) as secured:
        assert (await secured.get("/openapi.json")).status_code == 401
        served = await secured.get("/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"})
    assert served.status_code == 200
    secured_doc = served.json()
    assert set(secured_doc["components"]["securitySchemes"]) == {"bearer"}
    assert secured_doc["paths"]["/jobs"]["post"]["security"] == [{"bearer": []}]
    assert secured_doc["paths"]["/healthz"]["get"]["security"] == []


def test_the_document_states_the_limits_the_code_enforces(doc: Doc) -> None:
    """One definition each: the document imports what the parsers enforce."""
    [limit] = [p for p in parameters_of(doc, "/jobs", "get") if p["name"] == "limit"]
    assert (limit["schema"]["maximum"], limit["schema"]["default"]) == (
        dto.MAX_LIMIT,
        dto.DEFAULT_LIMIT,
    )
    key = doc["components"]["parameters"]["IdempotencyKey"]["schema"]["pattern"]
    item_key = doc["components"]["schemas"]["BatchJobCreate"]["properties"]["idempotency_key"]
    assert key == item_key["pattern"] == f"^{jobspec.IDEMPOTENCY_KEY.pattern}$"
    batch_limit = str(body.batch_body_limit(4096))
    assert batch_limit in doc["components"]["schemas"]["BatchCreate"]["description"]
    assert batch_limit in doc["components"]["responses"]["BatchTooLarge"]["description"]
    assert (
        str(body.body_limit(4096)) in doc["components"]["responses"]["JobTooLarge"]["description"]
    )
    run_at = doc["components"]["schemas"]["JobCreate"]["properties"]["run_at"]
    assert run_at["pattern"] == f"^{dto.RFC3339.pattern}$"
    correlation = doc["components"]["parameters"]["CorrelationId"]["description"]
    assert f"^{dto.CORRELATION_ID.pattern}$" in correlation


@pytest.mark.parametrize(
    "text",
    ["2030-01-01T12:00:00Z", "2030-01-01 12:00:00.123456789+02:00", "2030-01-01T12:00:00"],
)
def test_the_date_time_pattern_agrees_with_the_parser(doc: Doc, text: str) -> None:
    pattern = doc["components"]["schemas"]["JobCreate"]["properties"]["run_at"]["pattern"]
    try:
        dto.parse_rfc3339(text, "run_at")
        parsed = True
    except ValidationError:
        parsed = False
    assert (re.search(pattern, text) is not None) == parsed


def test_the_json_value_schema_bounds_integers_at_any_depth(doc: Doc) -> None:
    value = schema_validator(doc, doc["components"]["schemas"]["JsonValue"])
    valid: tuple[object, ...] = (
        None,
        True,
        "x",
        2.5,
        -1e-300,
        codec.INT_MIN,
        codec.INT_MAX,
        [],
        {},
    )
    for ok in valid:
        assert value.is_valid(ok), ok
    assert value.is_valid({"a": [1, 2.5, None, True, "x", {"b": [codec.INT_MAX, 0.5]}]})
    # Integral values count as integers, however written (1e30 too): see _json_value.
    for bad in (codec.INT_MAX + 1, codec.INT_MIN - 1, 1e30):
        assert not value.is_valid(bad)
        assert not value.is_valid([bad])
        assert not value.is_valid({"a": {"b": [0, bad]}})


def test_headers_and_responses_of_note(doc: Doc) -> None:
    created = doc["paths"]["/jobs"]["post"]["responses"]["201"]
    assert created["headers"]["Location"]["required"] is True
    unavailable = resolve(doc, {"$ref": "#/components/responses/Unavailable"})
    assert unavailable["headers"]["Retry-After"]["required"] is True
    unauthorized = resolve(doc, {"$ref": "#/components/responses/Unauthorized"})
    assert "WWW-Authenticate" in unauthorized["headers"]
    params = doc["components"]["parameters"]
    assert params["JobId"]["schema"]["pattern"] == "^[0-7][0-9A-HJKMNP-TV-Z]{25}$"
    assert params["IdempotencyKey"]["in"] == "header"
    assert params["IdempotencyKey"]["schema"]["pattern"] == "^[A-Za-z0-9._:-]{1,255}$"
    assert params["CorrelationId"]["name"] == "X-Correlation-ID"
    create_params = parameters_of(doc, "/jobs", "post")
    assert "Idempotency-Key" in {p["name"] for p in create_params}


def test_job_create_states_the_parsers_rules(doc: Doc) -> None:
    schemas = doc["components"]["schemas"]
    create = schemas["JobCreate"]
    assert create["additionalProperties"] is False
    assert create["required"] == ["type"]
    props = create["properties"]
    assert set(props) == {
        "type",
        "payload",
        "queue",
        "max_attempts",
        "delay_seconds",
        "run_at",
        "timeout_seconds",
        "expires_at",
        "expire_after_seconds",
        "limit_key",
        "unique_key",
        "unique_for_seconds",
    }
    assert props["unique_key"]["pattern"] == "^[A-Za-z0-9._:-]{1,255}$"
    [needs_key_rule] = [r for r in create["allOf"] if "if" in r]
    needs_key = schema_validator(doc, needs_key_rule)
    assert not needs_key.is_valid({"type": "t", "unique_for_seconds": 5})
    assert needs_key.is_valid({"type": "t", "unique_key": "k", "unique_for_seconds": 5})
    assert needs_key.is_valid({"type": "t", "unique_for_seconds": None})
    assert props["type"]["pattern"] == props["queue"]["pattern"] == "^[A-Za-z0-9._-]{1,64}$"
    assert props["limit_key"]["pattern"] == props["queue"]["pattern"]
    assert (props["max_attempts"]["minimum"], props["max_attempts"]["maximum"]) == (1, 1000)
    assert props["max_attempts"]["type"] == ["integer", "null"]  # null: as if absent
    assert (props["delay_seconds"]["minimum"], props["delay_seconds"]["maximum"]) == (
        0,
        31_536_000,
    )
    assert props["run_at"]["format"] == "date-time"
    assert props["timeout_seconds"]["exclusiveMinimum"] == 0
    assert props["timeout_seconds"]["maximum"] == 86_400
    assert props["payload"]["$ref"] == "#/components/schemas/JsonValue"
    json_value = schema_validator(doc, schemas["JsonValue"])
    assert json_value.is_valid({"a": [1, 2.5, None, True, "x", {"b": 2**64 - 1}]})
    assert not json_value.is_valid([2**64])
    assert "4096" in props["payload"]["description"]
    item = schemas["BatchJobCreate"]
    assert set(item["properties"]) == set(props) | {"idempotency_key"}
    assert item["additionalProperties"] is False
    jobs = schemas["BatchCreate"]["properties"]["jobs"]
    assert (jobs["minItems"], jobs["maxItems"]) == (1, 250)
    assert "250" in schemas["BatchCreate"]["description"]

    validator = schema_validator(doc, create)
    assert validator.is_valid({"type": "a", "expire_after_seconds": 5})
    assert not validator.is_valid({"type": "a", "expire_after_seconds": 0})
    assert not validator.is_valid(
        {"type": "a", "expire_after_seconds": 5, "expires_at": "2030-01-01T00:00:00Z"}
    )
    assert validator.is_valid({"type": "a", "delay_seconds": 5})
    assert not validator.is_valid(
        {"type": "a", "delay_seconds": 5, "run_at": "2030-01-01T00:00:00Z"}
    )
    assert validator.is_valid(
        {"type": "a", "delay_seconds": None, "run_at": "2030-01-01T00:00:00Z"}
    )
    assert not validator.is_valid({"type": "a", "delay": 5})
    assert not validator.is_valid({"type": "a b"})
    assert not validator.is_valid({"type": "a", "timeout_seconds": 0})


def test_problem_schema_has_the_errors_array(doc: Doc) -> None:
    problem = doc["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status"}
    assert problem["properties"]["errors"]["items"]["required"] == ["field", "message"]


def test_job_schema_lists_attempt_fields(doc: Doc) -> None:
    attempt = doc["components"]["schemas"]["Attempt"]
    keys = set(Attempt(1, "w", 1, 2, "completed").to_json())
    assert set(attempt["properties"]) == keys
    assert set(attempt["required"]) == keys


@pytest.mark.anyio
async def test_job_schema_matches_a_real_job(client: httpx.AsyncClient, settings: Settings) -> None:
    doc = openapi_document(settings, bearer_auth=False)
    created = await client.post(
        "/jobs", json={"type": "email.send", "payload": {"to": "a"}, "delay_seconds": 30}
    )
    assert created.status_code == 201, created.text
    fetched = await client.get(f"/jobs/{created.json()['id']}")
    listed = await client.get("/jobs")
    job_schema = doc["components"]["schemas"]["Job"]
    for job in (created.json(), fetched.json()):
        assert set(job) == set(job_schema["properties"])
        assert set(job) == set(job_schema["required"])
        errors = [e.message for e in schema_validator(doc, job_schema).iter_errors(job)]
        assert not errors
    job_list = doc["components"]["schemas"]["JobList"]
    assert schema_validator(doc, job_list).is_valid(listed.json())


# -- served documents -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_openapi_json_is_the_document_built_once(
    client: httpx.AsyncClient, app: Starlette, settings: Settings
) -> None:
    first = await client.get("/openapi.json")
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/json"
    assert first.json() == openapi_document(settings, bearer_auth=False)
    cached = app.state.openapi_json
    second = await client.get("/openapi.json")
    assert second.content == first.content
    assert app.state.openapi_json is cached


def test_document_follows_the_settings() -> None:
    small = openapi_document(
        make_settings("redis://localhost:1/0", "x", max_batch_jobs=7), bearer_auth=False
    )
    jobs = small["components"]["schemas"]["BatchCreate"]["properties"]["jobs"]
    assert jobs["maxItems"] == 7


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []  # (tag, url)
        self.inline_scripts = 0
        self.inline_handlers: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.inline_handlers.append(f"{tag} {name}")
            if name in {"src", "href"} and value is not None:
                self.urls.append((tag, value))
        if tag == "script":
            self._in_script = True
            if "src" not in values:
                self.inline_scripts += 1
        if tag == "style":
            self.inline_scripts += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


@pytest.mark.anyio
async def test_docs_page_loads_swagger_ui_from_the_app_only(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    parser = _Assets()
    parser.feed(page.text)
    assert parser.inline_scripts == 0
    assert parser.inline_handlers == []
    page_url = str(page.url)
    scripts = []
    for tag, url in parser.urls:
        absolute = urljoin(page_url, url)
        parts = urlsplit(absolute)
        assert (parts.scheme, parts.netloc) == ("http", "api"), f"{url} is not same-origin"
        asset = await client.get(parts.path)
        assert asset.status_code == 200, url
        kind = asset.headers["content-type"]
        if tag == "script":
            scripts.append(parts.path)
            assert "javascript" in kind, (url, kind)
        elif url.endswith(".css"):
            assert kind.startswith("text/css"), (url, kind)
        else:
            assert kind.startswith("image/"), (url, kind)
    assert any(path.endswith("swagger-ui-bundle.js") for path in scripts)
    init = await client.get(scripts[-1])
    assert "SwaggerUIBundle(" in init.text
    spec_url = re.search(r'url: "([^"]+)"', init.text)
    assert spec_url is not None
    spec = await client.get(urlsplit(urljoin(page_url, spec_url.group(1))).path)
    assert spec.status_code == 200
    assert spec.json()["openapi"] == "3.1.0"


@pytest.mark.anyio
async def test_a_missing_asset_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs/static/nope.js")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_the_shipped_swagger_ui_reads_openapi_31() -> None:
    bundle = (SWAGGER_UI_STATIC / "swagger-ui-bundle.js").read_text(encoding="utf-8")
    version = re.search(r'PACKAGE_VERSION:"(\d+)\.(\d+)\.(\d+)"', bundle)
    assert version is not None
    assert int(version.group(1)) >= 5  # OpenAPI 3.1 support starts with Swagger UI 5


def test_every_state_changing_operation_may_be_415_and_takes_a_json_body() -> None:
    """The content-type rule (api.content_type) as documented: 415 on every POST and
    DELETE, and the body-less actions take `{}` so a generated client sends the header."""
    doc = openapi_document(Settings(), bearer_auth=True)
    unsafe = [(p, m, op) for p, m, op in operations(doc) if m in ("post", "put", "patch", "delete")]
    assert {("/queues/{name}/purge", "post"), ("/jobs/{job_id}", "delete")} <= {
        (p, m) for p, m, _ in unsafe
    }
    for path, method, op in unsafe:
        assert op["responses"]["415"] == {"$ref": "#/components/responses/UnsupportedMediaType"}
        assert "application/json" in op["requestBody"]["content"], f"{method} {path}"
    for path, method, op in operations(doc):
        if method == "get":
            assert "415" not in op["responses"], f"{method} {path}"
    empty = doc["paths"]["/jobs/{job_id}/retry"]["post"]["requestBody"]
    assert empty["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/EmptyRequest"
    }


def test_metrics_are_secured_in_the_document_when_metrics_auth_is_token() -> None:
    closed = openapi_document(
        Settings(metrics_auth="token", api_tokens=("x" * 16,)), bearer_auth=True
    )
    assert closed["paths"]["/metrics"]["get"]["security"] == [{"bearer": []}]
    assert "401" in closed["paths"]["/metrics"]["get"]["responses"]
    assert "/metrics" not in closed["info"]["description"].split("needs")[0]
    default = openapi_document(Settings(), bearer_auth=True)
    assert default["paths"]["/metrics"]["get"]["security"] == []

"""The API's OpenAPI document and docs page, and the API answering as they say."""

from __future__ import annotations

import json
import re

import jsonschema_rs
import pytest
from flask.testing import FlaskClient

from tests.api_support import BAD_CREATES
from tests.api_support import BAD_EDITS
from tests.api_support import OPERATIONS
from tests.api_support import PREFIX
from tests.api_support import PROBLEM
from tests.api_support import Caller
from tests.api_support import body_for
from tests.api_support import op_id
from tests.api_support import operation
from tests.api_support import raw_json
from tests.api_support import url_of
from tests.api_support import use
from webpanel.api.spec import Operation
from webpanel.models import Client
from webpanel.services.clients import GB
from xray.simulator import Simulator

# The document


@pytest.fixture
def document(client: FlaskClient) -> dict:
    response = client.get(f"{PREFIX}/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def resolved(schema, components: dict):
    """The schema with each $ref into components.schemas put in its place."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            name = schema["$ref"].removeprefix("#/components/schemas/")
            return resolved(components[name], components)
        return {key: resolved(value, components) for key, value in schema.items()}
    if isinstance(schema, list):
        return [resolved(value, components) for value in schema]
    return schema


def assert_as_documented(document: dict, op: Operation, response) -> None:
    """The answer's status, type and body are the ones the document gives."""
    declared = document["paths"][op.path][op.method.lower()]["responses"]
    status = str(response.status_code)
    assert status in declared, f"{op_id(op)} answered {status}, not documented"
    content = declared[status].get("content")
    if not content:
        assert response.get_data() == b""
        return
    assert response.mimetype in content, (response.mimetype, list(content))
    schema = resolved(
        content[response.mimetype]["schema"], document["components"]["schemas"]
    )
    validator = jsonschema_rs.Draft202012Validator(schema, validate_formats=True)
    errors = [error.message for error in validator.iter_errors(response.get_json())]
    assert errors == [], f"{op_id(op)} {status}: {errors}"


def test_it_serves_an_openapi_3_1_document_without_a_key(client: FlaskClient):
    response = client.get(f"{PREFIX}/openapi.json")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document = response.get_json()
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"] and document["info"]["version"]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


@pytest.mark.parametrize("op", OPERATIONS, ids=op_id)
def test_it_documents_every_operation(document: dict, op: Operation):
    described = document["paths"][op.path][op.method.lower()]

    assert described["summary"]
    assert str(op.status) in described["responses"]
    assert "401" in described["responses"]
    assert ("403" in described["responses"]) == (op.scope == "write")
    path_names = set(re.findall(r"{([^}]+)}", op.path))
    documented = {p["name"] for p in described["parameters"] if p["in"] == "path"}
    assert documented == path_names
    if op.body:
        assert "requestBody" in described
        assert {"400", "413", "415", "422"} <= set(described["responses"])


def test_it_documents_nothing_but_the_operations(document: dict):
    documented = {
        (method.upper(), path)
        for path, methods in document["paths"].items()
        for method in methods
    }
    ids = [
        described["operationId"]
        for methods in document["paths"].values()
        for described in methods.values()
    ]

    assert documented == {(op.method, op.path) for op in OPERATIONS}
    assert len(ids) == len(set(ids)) == len(OPERATIONS)


def test_every_schema_in_the_document_is_valid_json_schema(document: dict):
    schemas = document["components"]["schemas"]

    assert schemas
    for name, schema in schemas.items():
        assert jsonschema_rs.meta.is_valid(schema), name
    for path, methods in document["paths"].items():
        for method, described in methods.items():
            for answer in described["responses"].values():
                for content in answer.get("content", {}).values():
                    ref = content["schema"]["$ref"].removeprefix(
                        "#/components/schemas/"
                    )
                    assert ref in schemas, (method, path, ref)


@pytest.mark.parametrize("op", OPERATIONS, ids=op_id)
def test_it_answers_every_operation_as_its_document_says(
    writer: Caller, document: dict, alice: Client, simulator: Simulator, op: Operation
):
    use(simulator, alice, uplink=5, downlink=50)

    response = writer(op.method, url_of(op.rule, alice.email), **body_for(op))

    assert response.status_code == op.status
    assert_as_documented(document, op, response)


# (method, rule, key, path values, request, status)
ERROR_TOUR = [
    ("GET", "/clients", None, {}, {}, 401),
    ("GET", "/stats", "bogus", {}, {}, 401),
    ("POST", "/clients", "read", {}, {"json": {"name": "x"}}, 403),
    ("DELETE", "/clients/<client>", "read", {}, {}, 403),
    ("GET", "/clients/<client>", "read", {"client": "nobody"}, {}, 404),
    ("GET", "/nodes/<node>", "read", {"node": "nowhere"}, {}, 404),
    ("POST", "/clients/<client>/enable", "write", {"client": "nobody"}, {}, 404),
    ("GET", "/clients", "read", {}, {"query_string": {"limit": 0}}, 422),
    ("GET", "/clients", "read", {}, {"query_string": {"cursor": "!"}}, 422),
    ("GET", "/clients/<client>/usage", "read", {}, {"query_string": {"count": 0}}, 422),
    ("POST", "/clients", "write", {}, raw_json("{"), 400),
    ("POST", "/clients", "write", {}, {"json": {"name": "x" * 70_000}}, 413),
    ("POST", "/clients", "write", {}, {"data": "x", "content_type": "text/plain"}, 415),
    ("POST", "/clients", "write", {}, {"json": {"name": "ALICE"}}, 409),
    ("POST", "/clients", "write", {}, {"json": {"name": "x", "limit": "5"}}, 422),
    ("PATCH", "/clients/<client>", "write", {}, {"json": {"limit": "5"}}, 422),
    ("POST", "/clients/<client>/extend", "write", {}, {"json": {"days": 0}}, 422),
]


@pytest.mark.parametrize(
    ("method", "rule", "key", "values", "request_", "status"),
    ERROR_TOUR,
    ids=[f"{m} {r} {s}" for m, r, _, _, _, s in ERROR_TOUR],
)
def test_it_answers_errors_as_its_document_says(
    client: FlaskClient,
    document: dict,
    alice: Client,
    read_key,
    write_key,
    method: str,
    rule: str,
    key: str | None,
    values: dict,
    request_: dict,
    status: int,
):
    plain = {
        None: None,
        "bogus": "inf_bogus",
        "read": read_key[1],
        "write": write_key[1],
    }[key]
    url = url_of(rule, **{"client": alice.email, **values})

    response = Caller(client, plain)(method, url, **request_)

    assert response.status_code == status, response.get_data(as_text=True)
    assert_as_documented(document, operation(method, rule), response)


def request_validator(document: dict, method: str, rule: str):
    op = operation(method, rule)
    body = document["paths"][op.path][method.lower()]["requestBody"]
    schema = resolved(
        body["content"]["application/json"]["schema"],
        document["components"]["schemas"],
    )
    return jsonschema_rs.Draft202012Validator(schema, validate_formats=True)


def sent_json(request_: dict):
    if "json" in request_:
        return request_["json"]
    return json.loads(request_["data"] or "{}")


GOOD_CREATES = [
    {"name": "Newcomer"},
    {"name": "Алиса 🦊", "limit": 5 * GB, "days": 30, "reset_strategy": "month"},
    {"name": "later", "on_hold_days": 10},
    {"name": "dated", "expiry": "2030-01-01T12:00:00+03:00", "limit": None},
    {"name": "picky", "nodes": ["main"]},
    {"name": "everywhere", "nodes": "all"},
]
GOOD_EDITS = [
    {},
    {"limit": None, "expiry": None},
    {"name": "Alicia", "limit": 2 * GB, "reset_strategy": "week"},
    {"expiry": "2031-05-01T00:00:00Z", "nodes": ["main"]},
]


@pytest.mark.parametrize("sent", GOOD_CREATES, ids=str)
def test_its_document_and_the_api_both_take_a_good_new_client(
    writer: Caller, document: dict, sent: dict
):
    validator = request_validator(document, "POST", "/clients")

    assert validator.is_valid(sent)
    assert writer.post("/clients", json=sent).status_code == 201


@pytest.mark.parametrize("sent", GOOD_EDITS, ids=str)
def test_its_document_and_the_api_both_take_a_good_change(
    writer: Caller, document: dict, alice: Client, sent: dict
):
    validator = request_validator(document, "PATCH", "/clients/<client>")

    assert validator.is_valid(sent)
    assert writer.patch(f"/clients/{alice.email}", json=sent).status_code == 200


REFUSED_BODIES = [
    pytest.param("POST", "/clients", request_, id=f"create, {name}")
    for name, (request_, status, _) in BAD_CREATES.items()
    if status == 422
] + [
    pytest.param("PATCH", "/clients/<client>", request_, id=f"edit, {name}")
    for name, (request_, status, _) in BAD_EDITS.items()
    if status == 422
]


@pytest.mark.parametrize(("method", "rule", "request_"), REFUSED_BODIES)
def test_its_document_refuses_the_bodies_the_api_refuses(
    document: dict, method: str, rule: str, request_: dict
):
    validator = request_validator(document, method, rule)

    assert not validator.is_valid(sent_json(request_))


def test_its_problems_outside_the_operations_have_the_problem_shape(
    reader: Caller, document: dict
):
    schemas = document["components"]["schemas"]
    problem = resolved(schemas["Problem"], schemas)

    for response in (reader.get("/nope"), reader("PUT", "/stats")):
        assert response.mimetype == PROBLEM
        assert jsonschema_rs.is_valid(problem, response.get_json())


def test_it_serves_a_docs_page_naming_every_path_without_a_key(client: FlaskClient):
    response = client.get(f"{PREFIX}/docs")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    for op in OPERATIONS:
        assert op.path in page, op.path
    assert "openapi.json" in page
    # Docstrings' `code` spans become <code>; nothing else turns into markup.
    assert "<code>next_cursor</code>" in page
    assert "`" not in page.split("<main>")[1]

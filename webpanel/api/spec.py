"""Declaring API operations: one declaration routes, checks and documents each.

A handler is registered with the pydantic models of its query, body and
response. The same models validate requests and make the OpenAPI document,
so the two cannot drift apart.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from http import HTTPStatus

from flask import Blueprint
from flask import Response
from flask import g
from flask import request
from pydantic import BaseModel
from pydantic import ValidationError
from pydantic.json_schema import models_json_schema

from webpanel.api.problems import PROBLEM_TYPE
from webpanel.api.problems import ApiProblem
from webpanel.api.schemas import PATTERN_MESSAGES
from webpanel.services import api_keys

MAX_BODY = 64 * 1024
BEARER = 'Bearer realm="infinity"'


@dataclass
class Operation:
    method: str
    rule: str  # Flask's, e.g. /clients/<client>
    handler: Callable
    summary: str
    tag: str
    scope: str  # read or write
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    path_params: dict[str, str] = field(default_factory=dict)
    path_examples: dict[str, str] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    # (path parameter, runtime expression): the response names a resource
    # that the operations taking that parameter can act on (OpenAPI links).
    link: tuple[str, str] | None = None

    @property
    def path(self) -> str:
        return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", self.rule)

    @property
    def error_statuses(self) -> list[int]:
        statuses = {401, *self.errors}
        if self.scope == "write":
            statuses.add(403)
        if self.path_params:
            statuses.add(404)
        if self.query:
            statuses.add(422)
        if self.body:
            statuses |= {400, 413, 415, 422}
        return sorted(statuses)


class Api:
    """The operations of one blueprint, and the document that describes them."""

    def __init__(self, blueprint: Blueprint, title: str, version: str) -> None:
        self.blueprint = blueprint
        self.title = title
        self.version = version
        self.operations: list[Operation] = []
        self._document: dict | None = None

    def operation(self, method: str, rule: str, **options) -> Callable:
        def register(handler: Callable) -> Callable:
            summary, _, _ = (handler.__doc__ or "").strip().partition("\n")
            op = Operation(method, rule, handler, summary, **options)
            self.operations.append(op)
            self.blueprint.add_url_rule(
                rule,
                endpoint=handler.__name__,
                view_func=functools.wraps(handler)(lambda **path: _run(op, path)),
                methods=[method],
            )
            return handler

        return register

    def document(self) -> dict:
        if self._document is None:
            self._document = build_document(self)
        return self._document


def _run(op: Operation, path: dict[str, str]) -> Response:
    g.api_key = _authorize(op.scope)
    kwargs = dict(path)
    if op.query:
        kwargs["query"] = _query(op.query)
    if op.body:
        kwargs["body"] = _body(op.body)
    result = op.handler(**kwargs)
    if result is None:
        return Response(status=204)
    if isinstance(result, Response):
        return result
    return Response(
        result.model_dump_json(), status=op.status, mimetype="application/json"
    )


def _authorize(scope: str):
    # Only the header counts: a browser's panel session never authorizes here.
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiProblem(
            401,
            "Send an API key in the header Authorization: Bearer <key>.",
            headers={"WWW-Authenticate": BEARER},
        )
    key = api_keys.authenticate(token.strip())
    if key is None:
        raise ApiProblem(
            401,
            "This API key is unknown or was revoked.",
            headers={"WWW-Authenticate": BEARER + ', error="invalid_token"'},
        )
    if scope == "write" and key.scope != "write":
        raise ApiProblem(403, "This key may only read; the call needs a write key.")
    return key


def _body(model: type[BaseModel]) -> BaseModel:
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ApiProblem(415, "Send the body as JSON (Content-Type: application/json).")
    too_large = ApiProblem(413, f"The body is larger than {MAX_BODY // 1024} KiB.")
    if (request.content_length or 0) > MAX_BODY:
        raise too_large
    # A chunked body has no length: read one byte past the limit to know.
    # (Werkzeug's own limit would cut such a body short without a word.)
    raw = request.stream.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise too_large
    try:
        return model.model_validate_json(raw or b"{}", strict=True)
    except ValidationError as error:
        if any(e["type"] == "json_invalid" for e in error.errors()):
            raise ApiProblem(400, "The body is not valid JSON.") from None
        raise _invalid(error, "body") from None


def _query(model: type[BaseModel]) -> BaseModel:
    values = request.args.to_dict(flat=False)
    repeated = {
        name: "Give this field once." for name, v in values.items() if len(v) > 1
    }
    if repeated:
        raise ApiProblem(422, "Some query fields are not valid.", errors=repeated)
    return _validate(model, {name: v[0] for name, v in values.items()}, "query")


def _validate(model: type[BaseModel], values: dict, where: str) -> BaseModel:
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise _invalid(error, where) from None


def _invalid(error: ValidationError, where: str) -> ApiProblem:
    errors: dict[str, str] = {}
    for item in error.errors(include_url=False):
        name = ".".join(str(part) for part in item["loc"]) or where
        errors.setdefault(name, _message(item))
    return ApiProblem(422, f"Some {where} fields are not valid.", errors=errors)


def _message(item: dict) -> str:
    if item["type"] == "extra_forbidden":
        return "Unknown field."
    if item["type"] == "missing":
        return "This field is required."
    if item["type"] == "model_type" and not item["loc"]:
        return "The body must be a JSON object."
    if item["type"] == "string_pattern_mismatch":
        # The pattern itself would mean nothing to the caller.
        field = str(item["loc"][0]) if item["loc"] else ""
        return PATTERN_MESSAGES.get(field, "This value has the wrong form.")
    return item["msg"].removeprefix("Value error, ") + "."


def build_document(api: Api) -> dict:
    """The OpenAPI 3.1 document of every declared operation."""
    models = {
        (model, mode)
        for op in api.operations
        for model, mode in (
            (op.body, "validation"),
            (op.response, "serialization"),
        )
        if model is not None
    }
    models.add((Problem, "serialization"))
    refs, schemas = models_json_schema(
        sorted(models, key=lambda pair: (pair[0].__name__, pair[1])),
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict] = {}
    for op in api.operations:
        described = _describe(op, refs)
        if op.link:
            described["responses"][str(op.status)]["links"] = _links(op, api)
        paths.setdefault(op.path, {})[op.method.lower()] = described
    return {
        "openapi": "3.1.0",
        "info": {"title": api.title, "version": api.version},
        "servers": [{"url": api.blueprint.url_prefix}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key made in the panel or by "
                    "`flask --app wsgi api-key create NAME`.",
                }
            },
        },
    }


def _describe(op: Operation, refs: dict) -> dict:
    _, _, description = (op.handler.__doc__ or "").strip().partition("\n")
    scope_note = f"Needs a {op.scope} key."
    described: dict = {
        "operationId": op.handler.__name__,
        "summary": op.summary,
        "description": f"{description.strip()}\n\n{scope_note}".strip(),
        "tags": [op.tag],
        "x-scope": op.scope,
        "parameters": _parameters(op),
        "responses": _responses(op, refs),
    }
    if op.body:
        schema = refs[(op.body, "validation")]
        described["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    return described


def _links(op: Operation, api: Api) -> dict:
    param, expression = op.link
    return {
        target.handler.__name__: {
            "operationId": target.handler.__name__,
            "parameters": {param: expression},
        }
        for target in api.operations
        if param in target.path_params
    }


def _parameters(op: Operation) -> list[dict]:
    params = []
    for name, text in op.path_params.items():
        param = {
            "name": name,
            "in": "path",
            "required": True,
            "description": text,
            "schema": {"type": "string", "minLength": 1},
        }
        if name in op.path_examples:
            param["example"] = op.path_examples[name]
        params.append(param)
    if op.query:
        schema = op.query.model_json_schema()
        required = set(schema.get("required", []))
        for name, prop in schema["properties"].items():
            prop = _not_null(prop)
            text = prop.pop("description", "")
            prop.pop("title", None)
            params.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in required,
                    "description": text,
                    "schema": prop,
                }
            )
    return params


def _not_null(schema: dict) -> dict:
    """A query value is text or absent, never null: drop the null choice."""
    choices = [c for c in schema.get("anyOf", []) if c.get("type") != "null"]
    if len(choices) != 1:
        return dict(schema)
    merged = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
    return {**merged, **choices[0]}


def _responses(op: Operation, refs: dict) -> dict:
    responses: dict[str, dict] = {}
    if op.response:
        responses[str(op.status)] = {
            "description": HTTPStatus(op.status).phrase,
            "content": {
                "application/json": {"schema": refs[(op.response, "serialization")]}
            },
        }
    else:
        responses[str(op.status)] = {"description": HTTPStatus(op.status).phrase}
    problem = {"schema": refs[(Problem, "serialization")]}
    for status in op.error_statuses:
        responses[str(status)] = {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_TYPE: problem},
        }
    return responses


class Problem(BaseModel):
    """An error, as RFC 9457 describes."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: dict[str, str] | None = None

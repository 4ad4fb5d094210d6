"""The OpenAPI document and a page that reads it, both without a key."""

from __future__ import annotations

import copy
import re

from flask import jsonify
from flask import render_template
from markupsafe import Markup
from markupsafe import escape

from webpanel.api import api
from webpanel.api import bp
from webpanel.models import Node


@bp.get("/openapi.json")
def openapi():
    return jsonify(_current_document())


@bp.get("/docs")
def docs():
    document = _current_document()
    schemas = document["components"]["schemas"]
    operations = [
        {
            "method": method.upper(),
            "path": path,
            "op": op,
            "body": _fields(op, schemas),
        }
        for path, methods in document["paths"].items()
        for method, op in methods.items()
    ]
    return render_template(
        "api_docs.html",
        document=document,
        operations=operations,
        type_of=_type_of,
        ticks=_ticks,
    )


def _ticks(text: str) -> Markup:
    """Escaped text with `code` spans, as the handlers' docstrings write them."""
    escaped = str(escape(text))
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped))


def _current_document() -> dict:
    """The document, with the node names a client may be put on now."""
    document = copy.deepcopy(api.document())
    names = [node.name for node in Node.select(Node.name).order_by(Node.id)]
    for model in ("ClientCreate", "ClientEdit"):
        nodes = document["components"]["schemas"][model]["properties"]["nodes"]
        for choice in nodes["anyOf"]:
            if choice.get("type") == "array":
                choice["items"]["enum"] = names
    for param in document["paths"]["/clients"]["get"]["parameters"]:
        if param["name"] == "node":
            param["schema"]["enum"] = names
    return document


def _fields(op: dict, schemas: dict) -> list[dict]:
    """The request body's fields: name, type, required, description."""
    if "requestBody" not in op:
        return []
    schema = _resolve(
        op["requestBody"]["content"]["application/json"]["schema"], schemas
    )
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "type": _type_of(prop, schemas),
            "required": name in required,
            "description": prop.get("description", ""),
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def _resolve(schema: dict, schemas: dict) -> dict:
    ref = schema.get("$ref", "")
    return schemas[ref.rsplit("/", 1)[-1]] if ref else schema


def _type_of(schema: dict, schemas: dict | None = None) -> str:
    """A short reading of a JSON schema: `integer ≥ 1`, `one of: a, b`."""
    schema = _resolve(schema, schemas or {})
    if "anyOf" in schema:
        return " or ".join(_type_of(s, schemas) for s in schema["anyOf"])
    if "enum" in schema:
        return "one of: " + ", ".join(str(v) for v in schema["enum"])
    if "const" in schema:
        return f'"{schema["const"]}"'
    kind = schema.get("type", "object")
    if kind == "array":
        return f"list of {_type_of(schema.get('items', {}), schemas)}"
    if "format" in schema:
        kind = f"{kind} ({schema['format']})"
    bounds = [
        f"{sign} {schema[key]}"
        for key, sign in (
            ("minimum", "≥"),
            ("maximum", "≤"),
            ("minLength", "length ≥"),
            ("maxLength", "length ≤"),
        )
        if key in schema
    ]
    return ", ".join([kind, *bounds])

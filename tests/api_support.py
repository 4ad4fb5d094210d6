"""What the API tests share: callers with a key, fixtures, and checks.

Registered as a pytest plugin in conftest, so its fixtures reach every test file."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from webpanel.api import api as registry
from webpanel.api.spec import Operation
from webpanel.models import ApiKey
from webpanel.models import AuditEntry
from webpanel.models import Client
from webpanel.models import Node
from webpanel.services import accounting
from webpanel.services import api_keys
from webpanel.services import clients as service
from webpanel.services import nodes as node_service
from webpanel.services.clients import GB
from xray.simulator import Simulator

PREFIX = "/api/v1"
PROBLEM = "application/problem+json"
OPERATIONS = registry.operations
# A body each write operation takes as it is, so that only the key decides.
VALID_BODIES = {
    "ClientCreate": {"name": "Newcomer"},
    "ClientEdit": {"limit": None},
    "Extend": {"days": 7},
}


def op_id(op: Operation) -> str:
    return f"{op.method} {op.rule}"


def operation(method: str, rule: str) -> Operation:
    (found,) = [op for op in OPERATIONS if (op.method, op.rule) == (method, rule)]
    return found


def url_of(rule: str, client: str = "", node: str = "main") -> str:
    values = {"client": client, "node": node}

    def fill(match: re.Match) -> str:
        return urllib.parse.quote(values[match.group(1)], safe="")

    return PREFIX + re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", fill, rule)


class Caller:
    """The test client, sending one API key with every request."""

    def __init__(self, http: FlaskClient, key: str | None) -> None:
        self.http = http
        self.key = key

    def __call__(self, method: str, path: str, **kwargs):
        headers = dict(kwargs.pop("headers", {}))
        if self.key is not None:
            headers.setdefault("Authorization", f"Bearer {self.key}")
        url = path if path.startswith(PREFIX) else PREFIX + path
        return self.http.open(url, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs):
        return self("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self("POST", path, **kwargs)

    def patch(self, path: str, **kwargs):
        return self("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs):
        return self("DELETE", path, **kwargs)


@pytest.fixture
def write_key(app: Flask) -> tuple[ApiKey, str]:
    return api_keys.create_key("shop", "write")


@pytest.fixture
def read_key(app: Flask) -> tuple[ApiKey, str]:
    return api_keys.create_key("dashboard", "read")


@pytest.fixture
def writer(client: FlaskClient, write_key) -> Caller:
    return Caller(client, write_key[1])


@pytest.fixture
def reader(client: FlaskClient, read_key) -> Caller:
    return Caller(client, read_key[1])


@pytest.fixture
def alice(app: Flask) -> Client:
    return service.create_client(
        "Alice", data_limit=5 * GB, days=30, reset_strategy="month"
    )


@pytest.fixture
def second() -> Iterator[Simulator]:
    sim = Simulator().start()
    yield sim
    sim.stop()


@pytest.fixture
def edge(app: Flask, second: Simulator) -> Node:
    return node_service.add_node("edge", second.address, public_host="edge.example.com")


@pytest.fixture
def crowd(app: Flask) -> list[Client]:
    """Five clients, oldest first; the third is disabled."""
    made = [
        service.create_client(name)
        for name in ("Alice Smith", "bob", "ALICIA", "dora", "Eve_1")
    ]
    service.disable_client(made[2])
    return [fresh(c) for c in made]


def main_node() -> Node:
    return Node.get(Node.name == "main")


def fresh(client: Client) -> Client:
    return Client.get_by_id(client.id)


def use(simulator: Simulator, client: Client, uplink: int = 0, downlink: int = 0):
    """Traffic on the main node, counted as the poll job would."""
    simulator.push_traffic(client.email, uplink=uplink, downlink=downlink)
    assert accounting.poll_node(main_node()).online


def snapshot(simulator: Simulator) -> tuple:
    """Everything a refused request must leave as it was."""
    return (
        list(Client.select().order_by(Client.id).dicts()),
        AuditEntry.select().count(),
        {email: user.uuid for email, user in simulator.users().items()},
    )


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body


def body_for(op: Operation) -> dict:
    return {"json": VALID_BODIES[op.body.__name__]} if op.body else {}


def emails(response) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [item["email"] for item in response.get_json()["items"]]


# Bodies the API must refuse: (request, status, the field named in the error).


def raw_json(text: str) -> dict:
    return {"data": text, "content_type": "application/json"}


BAD_CREATES = {
    "malformed JSON": (raw_json('{"name": "x",'), 400, None),
    "an expiry past the year 8999": (
        {"json": {"name": "x", "expiry": "9999-12-31T23:59:59-23:59"}},
        422,
        "expiry",
    ),
    "an expiry in year 1": (
        {"json": {"name": "x", "expiry": "0001-01-01T00:00:00+00:01"}},
        422,
        "expiry",
    ),
    "a string limit": ({"json": {"name": "x", "limit": "5"}}, 422, "limit"),
    "a fractional days": ({"json": {"name": "x", "days": 1.5}}, 422, "days"),
    "a string on_hold_days": (
        {"json": {"name": "x", "on_hold_days": "yes"}},
        422,
        "on_hold_days",
    ),
    "a boolean on_hold_days": (
        {"json": {"name": "x", "on_hold_days": True}},
        422,
        "on_hold_days",
    ),
    "a null days": ({"json": {"name": "x", "days": None}}, 422, "days"),
    "a number for a name": ({"json": {"name": 5}}, 422, "name"),
    "no name": ({"json": {"limit": 5 * GB}}, 422, "name"),
    "an empty body": (raw_json(""), 422, "name"),
    "an unknown field": ({"json": {"name": "x", "colour": "red"}}, 422, "colour"),
    "an array body": ({"json": [{"name": "x"}]}, 422, None),
    "a string body": ({"json": "x"}, 422, None),
    "a null body": (raw_json("null"), 422, None),
    "plain text": (
        {"data": '{"name": "x"}', "content_type": "text/plain"},
        415,
        None,
    ),
    "a form": ({"data": {"name": "x"}}, 415, None),
    "a body over 64 KiB": (
        {"json": {"name": "x", "note": "a" * (64 * 1024)}},
        413,
        None,
    ),
    "days and an expiry": (
        {"json": {"name": "x", "days": 3, "expiry": "2030-01-01T00:00:00Z"}},
        422,
        None,
    ),
    "days and days on hold": (
        {"json": {"name": "x", "days": 3, "on_hold_days": 3}},
        422,
        None,
    ),
    "an expiry and days on hold": (
        {"json": {"name": "x", "on_hold_days": 3, "expiry": "2030-01-01T00:00:00Z"}},
        422,
        None,
    ),
    "an unknown node": ({"json": {"name": "x", "nodes": ["nowhere"]}}, 422, "nodes"),
    "no nodes": ({"json": {"name": "x", "nodes": []}}, 422, "nodes"),
    "nodes not a list": ({"json": {"name": "x", "nodes": "everywhere"}}, 422, "nodes"),
    "an expiry without an offset": (
        {"json": {"name": "x", "expiry": "2030-01-01T00:00:00"}},
        422,
        "expiry",
    ),
    "an expiry that is no date": (
        {"json": {"name": "x", "expiry": "next tuesday"}},
        422,
        "expiry",
    ),
    "a blank name": ({"json": {"name": "   "}}, 422, "name"),
    "a 65-character name": ({"json": {"name": "x" * 65}}, 422, "name"),
    "a name with a control character": ({"json": {"name": "tab\there"}}, 422, "name"),
    "a limit below a megabyte": ({"json": {"name": "x", "limit": 1}}, 422, "limit"),
    "a negative limit": ({"json": {"name": "x", "limit": -5}}, 422, "limit"),
    "zero days": ({"json": {"name": "x", "days": 0}}, 422, "days"),
    "too many days": ({"json": {"name": "x", "days": 36_501}}, 422, "days"),
    "an unknown reset strategy": (
        {"json": {"name": "x", "reset_strategy": "hourly"}},
        422,
        "reset_strategy",
    ),
}


BAD_EDITS = {
    "malformed JSON": (raw_json("{"), 400, None),
    "an expiry past the year 8999": (
        {"json": {"expiry": "9999-01-01T00:00:00Z"}},
        422,
        "expiry",
    ),
    "a string limit": ({"json": {"limit": "5"}}, 422, "limit"),
    "an unknown field": ({"json": {"days": 3}}, 422, "days"),
    "an array body": ({"json": [{"limit": None}]}, 422, None),
    "plain text": ({"data": "{}", "content_type": "text/plain"}, 415, None),
    "a body over 64 KiB": ({"json": {"name": "y" * (64 * 1024)}}, 413, None),
    "an unknown node": ({"json": {"nodes": ["nowhere"]}}, 422, "nodes"),
    "a blank name": ({"json": {"name": "  "}}, 422, "name"),
    "a 65-character name": ({"json": {"name": "y" * 65}}, 422, "name"),
    "an expiry without an offset": (
        {"json": {"expiry": "2030-01-01T00:00:00"}},
        422,
        "expiry",
    ),
    "a null name": ({"json": {"name": None}}, 422, "name"),
    "a null reset strategy": (
        {"json": {"reset_strategy": None}},
        422,
        "reset_strategy",
    ),
    "null nodes": ({"json": {"nodes": None}}, 422, "nodes"),
    "a good field and a bad one": (
        {"json": {"name": "Renamed", "limit": 1.5}},
        422,
        "limit",
    ),
}

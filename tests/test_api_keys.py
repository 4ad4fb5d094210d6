"""API keys: every route needs one, active, of the right scope; the CLI makes them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api_support import OPERATIONS
from tests.api_support import PREFIX
from tests.api_support import Caller
from tests.api_support import assert_problem
from tests.api_support import body_for
from tests.api_support import op_id
from tests.api_support import snapshot
from tests.api_support import url_of
from webpanel.api.spec import Operation
from webpanel.models import ApiKey
from webpanel.models import AuditEntry
from webpanel.models import Client
from webpanel.models import db
from webpanel.models import utcnow
from webpanel.services import api_keys
from xray.simulator import Simulator

# Keys: every route needs one, in the header, active, of the right scope


@pytest.mark.parametrize("op", OPERATIONS, ids=op_id)
def test_it_refuses_every_operation_without_a_key(
    client: FlaskClient, alice: Client, simulator: Simulator, op: Operation
):
    before = snapshot(simulator)

    response = client.open(
        url_of(op.rule, alice.email), method=op.method, **body_for(op)
    )

    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert snapshot(simulator) == before


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer inf_notARealKeyNotARealKeyNotARealKeyNotARealK",
        "Bearer not-even-the-right-shape",
        "Bearer ",
        "Basic c2hvcDpzZWNyZXQ=",
        "inf_notARealKeyNotARealKeyNotARealKeyNotARealK",
    ],
)
@pytest.mark.parametrize("op", OPERATIONS, ids=op_id)
def test_it_refuses_every_operation_with_a_bogus_key(
    client: FlaskClient,
    alice: Client,
    simulator: Simulator,
    op: Operation,
    authorization: str,
):
    before = snapshot(simulator)

    response = client.open(
        url_of(op.rule, alice.email),
        method=op.method,
        headers={"Authorization": authorization},
        **body_for(op),
    )

    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert snapshot(simulator) == before


@pytest.mark.parametrize("op", OPERATIONS, ids=op_id)
def test_it_refuses_every_operation_with_a_revoked_key(
    client: FlaskClient, write_key, alice: Client, simulator: Simulator, op: Operation
):
    key, plain = write_key
    api_keys.revoke_key(key)
    before = snapshot(simulator)

    response = Caller(client, plain)(
        op.method, url_of(op.rule, alice.email), **body_for(op)
    )

    assert_problem(response, 401)
    assert "WWW-Authenticate" in response.headers
    assert snapshot(simulator) == before


@pytest.mark.parametrize(
    "op", [op for op in OPERATIONS if op.scope == "write"], ids=op_id
)
def test_it_refuses_a_read_key_on_every_write_operation_and_changes_nothing(
    reader: Caller, alice: Client, simulator: Simulator, op: Operation
):
    before = snapshot(simulator)

    response = reader(op.method, url_of(op.rule, alice.email), **body_for(op))

    body = assert_problem(response, 403)
    assert "write" in body["detail"]
    assert snapshot(simulator) == before


@pytest.mark.parametrize("op", OPERATIONS, ids=op_id)
def test_it_refuses_a_signed_in_admin_without_a_key(
    signed_in: FlaskClient, alice: Client, simulator: Simulator, op: Operation
):
    assert signed_in.get("/clients").status_code == 200  # the session works
    before = snapshot(simulator)

    response = signed_in.open(
        url_of(op.rule, alice.email), method=op.method, **body_for(op)
    )

    assert_problem(response, 401)
    assert snapshot(simulator) == before


@pytest.mark.parametrize(
    "op", [op for op in OPERATIONS if op.scope == "read"], ids=op_id
)
def test_it_lets_a_read_key_call_every_read_operation(
    reader: Caller, alice: Client, op: Operation
):
    response = reader(op.method, url_of(op.rule, alice.email))

    assert response.status_code == op.status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"


@pytest.mark.parametrize("op", OPERATIONS, ids=op_id)
def test_it_lets_a_write_key_call_every_operation(
    writer: Caller, alice: Client, op: Operation
):
    response = writer(op.method, url_of(op.rule, alice.email), **body_for(op))

    assert response.status_code == op.status, response.get_data(as_text=True)


def test_every_operation_needs_a_read_or_a_write_key():
    assert OPERATIONS
    assert {op.scope for op in OPERATIONS} <= {"read", "write"}
    assert all(op.scope == "write" for op in OPERATIONS if op.method != "GET")


def test_it_reads_the_bearer_scheme_in_any_case(client: FlaskClient, read_key):
    response = client.get(
        f"{PREFIX}/stats", headers={"Authorization": f"bearer {read_key[1]}"}
    )

    assert response.status_code == 200


def test_it_takes_a_key_only_from_the_header(client: FlaskClient, read_key):
    response = client.get(f"{PREFIX}/stats", query_string={"api_key": read_key[1]})

    assert_problem(response, 401)


def test_it_keeps_only_a_hash_of_a_key(app: Flask, read_key):
    key, plain = read_key
    secret = plain.removeprefix(key.prefix)

    stored = [
        str(cell)
        for table in db.get_tables()
        for row in db.execute_sql(f'SELECT * FROM "{table}"').fetchall()
        for cell in row
    ]
    files = [p for p in Path(app.instance_path).rglob("*") if p.is_file()]

    assert key.key_hash == hashlib.sha256(plain.encode()).hexdigest()
    assert plain.startswith("inf_") and len(secret) >= 32
    assert stored and not any(secret in cell for cell in stored)
    assert files and not any(secret.encode() in p.read_bytes() for p in files)


def test_it_notes_when_a_key_was_last_used(reader: Caller, read_key):
    key, _ = read_key
    assert ApiKey.get_by_id(key.id).last_used_at is None
    before = utcnow()

    assert reader.get("/stats").status_code == 200

    used = ApiKey.get_by_id(key.id).last_used_at
    assert used is not None and before <= used <= utcnow()


def test_it_does_not_note_a_use_of_a_revoked_key(client: FlaskClient, read_key):
    key, plain = read_key
    api_keys.revoke_key(key)

    assert Caller(client, plain).get("/stats").status_code == 401

    assert ApiKey.get_by_id(key.id).last_used_at is None


# The command line


def key_from(result) -> str:
    assert result.exit_code == 0, result.output
    (plain,) = result.stdout.split()
    return plain


def test_it_makes_a_working_write_key_on_the_command_line(
    runner, client: FlaskClient, simulator: Simulator
):
    result = runner.invoke(args=["api-key", "create", "shop", "--scope", "write"])

    plain = key_from(result)
    response = Caller(client, plain).post("/clients", json={"name": "bought"})
    assert response.status_code == 201
    assert response.get_json()["email"] in simulator.users()
    assert AuditEntry.get(AuditEntry.event == "created").actor == "api:shop"


def test_it_makes_a_read_key_by_default_on_the_command_line(
    runner, client: FlaskClient
):
    plain = key_from(runner.invoke(args=["api-key", "create", "watcher"]))

    caller = Caller(client, plain)
    assert caller.get("/stats").status_code == 200
    assert_problem(caller.post("/clients", json={"name": "x"}), 403)
    assert Client.select().count() == 0


def test_it_revokes_a_key_on_the_command_line(runner, client: FlaskClient):
    plain = key_from(
        runner.invoke(args=["api-key", "create", "shop", "--scope", "write"])
    )
    assert Caller(client, plain).get("/stats").status_code == 200

    result = runner.invoke(args=["api-key", "revoke", "shop"])

    assert result.exit_code == 0, result.output
    assert_problem(Caller(client, plain).get("/stats"), 401)


def test_it_lists_keys_without_the_key_or_its_hash(runner):
    plain = key_from(
        runner.invoke(args=["api-key", "create", "shop", "--scope", "write"])
    )

    result = runner.invoke(args=["api-key", "list", "--json"])

    assert result.exit_code == 0, result.output
    (listed,) = json.loads(result.stdout)
    assert listed["name"] == "shop" and listed["scope"] == "write"
    assert plain.startswith(listed["prefix"]) and listed["revoked"] is None
    assert not {"key", "key_hash", "hash", "secret"} & set(listed)
    assert plain not in result.output
    assert plain.removeprefix(listed["prefix"]) not in result.output
    assert hashlib.sha256(plain.encode()).hexdigest() not in result.output


def test_it_refuses_a_second_active_key_of_the_same_name(runner):
    key_from(runner.invoke(args=["api-key", "create", "shop"]))

    result = runner.invoke(args=["api-key", "create", "shop"])

    assert result.exit_code != 0
    assert ApiKey.select().count() == 1


def test_it_refuses_to_revoke_a_key_that_does_not_exist(runner):
    result = runner.invoke(args=["api-key", "revoke", "ghost"])

    assert result.exit_code != 0
    assert "ghost" in result.output

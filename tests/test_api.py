"""The JSON API at /api/v1: keys and scopes, clients, nodes, errors, its document."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import urllib.parse
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from webpanel.api import api as registry
from webpanel.api.spec import Operation
from webpanel.models import ApiKey
from webpanel.models import AuditEntry
from webpanel.models import Client
from webpanel.models import Node
from webpanel.models import UsageHour
from webpanel.models import db
from webpanel.models import utcnow
from webpanel.services import accounting
from webpanel.services import api_keys
from webpanel.services import clients as service
from webpanel.services import nodes as node_service
from webpanel.services import sync
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


# Clients: create


def test_it_creates_a_client_and_puts_it_in_xray(writer: Caller, simulator: Simulator):
    response = writer.post(
        "/clients",
        json={
            "name": "Алиса 🦊",
            "limit": 5 * GB,
            "days": 30,
            "reset_strategy": "month",
        },
    )

    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    saved = Client.get(Client.email == body["email"])
    assert response.headers["Location"].endswith(f"{PREFIX}/clients/{saved.email}")
    assert body["name"] == "Алиса 🦊"
    assert body["status"] == "active" and body["pending"] is False
    assert body["uuid"] == saved.uuid and re.fullmatch(r"c\d+", body["email"])
    assert body["limit"] == 5 * GB and body["used"] == 0
    expiry = datetime.fromisoformat(body["expiry"])
    assert abs(expiry - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)
    assert body["reset_strategy"] == "month" and body["next_reset"] is not None
    assert body["link"].startswith(f"vless://{saved.uuid}@vpn.example.com:8443?")
    assert body["links"] == {"main": body["link"]}
    assert body["subscription_url"].endswith(f"/sub/{saved.sub_token}")
    assert body["nodes"] == "all"
    assert simulator.users()[saved.email].uuid == saved.uuid


def test_it_answers_the_location_of_a_new_client_with_that_client(writer: Caller):
    created = writer.post("/clients", json={"name": "Located"})

    response = writer.get(created.headers["Location"])

    assert response.status_code == 200
    assert response.get_json() == created.get_json()


def test_it_creates_an_unlimited_client_from_a_name_alone(writer: Caller):
    response = writer.post("/clients", json={"name": "plain"})

    body = response.get_json()
    assert response.status_code == 201
    assert body["limit"] is None and body["expiry"] is None
    assert body["reset_strategy"] == "none" and body["on_hold_days"] is None


def test_it_creates_a_client_on_hold_for_days_from_first_use(
    writer: Caller, simulator: Simulator
):
    response = writer.post("/clients", json={"name": "later", "on_hold_days": 10})

    body = response.get_json()
    assert response.status_code == 201
    assert body["status"] == "on_hold"
    assert body["on_hold_days"] == 10 and body["expiry"] is None
    assert body["email"] in simulator.users()


def test_it_makes_a_client_whose_expiry_has_passed_expired_and_keeps_it_out(
    writer: Caller, simulator: Simulator
):
    response = writer.post(
        "/clients", json={"name": "late", "expiry": "2020-01-01T00:00:00Z"}
    )

    assert response.status_code == 201
    assert response.get_json()["status"] == "expired"
    assert response.get_json()["email"] not in simulator.users()


def test_it_reads_an_expiry_with_an_offset_as_that_moment(writer: Caller):
    response = writer.post(
        "/clients", json={"name": "dated", "expiry": "2030-01-01T12:00:00+03:00"}
    )

    assert response.status_code == 201
    assert response.get_json()["expiry"] == "2030-01-01T09:00:00Z"
    saved = Client.get(Client.name == "dated")
    assert saved.expire_at == datetime(2030, 1, 1, 9, 0)


def test_it_creates_a_client_on_the_nodes_named(
    writer: Caller, edge: Node, simulator: Simulator, second: Simulator
):
    response = writer.post("/clients", json={"name": "picky", "nodes": ["edge"]})

    body = response.get_json()
    assert response.status_code == 201
    assert body["nodes"] == ["edge"]
    assert set(body["links"]) == {"edge"}
    assert body["email"] in second.users()
    assert body["email"] not in simulator.users()


def test_it_takes_json_with_a_charset(writer: Caller):
    response = writer.post(
        "/clients",
        data=json.dumps({"name": "charset"}),
        content_type="application/json; charset=utf-8",
    )

    assert response.status_code == 201


def test_it_refuses_a_name_that_exists_in_another_case(
    writer: Caller, alice: Client, simulator: Simulator
):
    before = snapshot(simulator)

    response = writer.post("/clients", json={"name": "  aLICE "})

    body = assert_problem(response, 409)
    assert "name" in body["errors"]
    assert snapshot(simulator) == before


def test_it_writes_the_key_as_the_actor_in_the_audit_log(
    writer: Caller, simulator: Simulator
):
    email = writer.post("/clients", json={"name": "audited"}).get_json()["email"]
    writer.post(f"/clients/{email}/disable")
    writer.patch(f"/clients/{email}", json={"limit": 2 * GB})
    client_id = Client.get(Client.email == email).id
    writer.delete(f"/clients/{email}")

    entries = AuditEntry.select().where(AuditEntry.client_id == client_id)

    assert {e.event for e in entries} >= {"created", "disabled", "edited", "deleted"}
    assert {e.actor for e in entries} == {"api:shop"}


# Clients: read


@pytest.mark.parametrize("how", ["name", "other case", "email", "uuid", "UUID"])
def test_it_finds_a_client_by_name_email_or_uuid(
    reader: Caller, alice: Client, how: str
):
    key = {
        "name": alice.name,
        "other case": alice.name.upper(),
        "email": alice.email,
        "uuid": alice.uuid,
        "UUID": alice.uuid.upper(),
    }[how]

    response = reader.get(url_of("/clients/<client>", key))

    assert response.status_code == 200
    assert response.get_json()["email"] == alice.email


def test_it_finds_a_client_by_a_name_with_spaces_and_emoji(reader: Caller, app):
    member = service.create_client("🚀 Иван #1 & 50%")

    response = reader.get(url_of("/clients/<client>", member.name))

    assert response.status_code == 200
    assert response.get_json()["email"] == member.email


def test_it_answers_404_for_an_unknown_client(reader: Caller, alice: Client):
    body = assert_problem(reader.get("/clients/nobody"), 404)

    assert "errors" not in body


def test_it_shows_usage_and_status_as_the_node_counted_them(
    reader: Caller, alice: Client, simulator: Simulator
):
    use(simulator, alice, uplink=100, downlink=2000)

    body = reader.get(f"/clients/{alice.email}").get_json()

    assert (body["uplink"], body["downlink"], body["used"]) == (100, 2000, 2100)
    assert body["used_total"] == 2100
    assert body["last_traffic"] is not None


# Clients: change


def test_it_changes_only_the_fields_sent(writer: Caller, alice: Client):
    before = writer.get(f"/clients/{alice.email}").get_json()

    response = writer.patch(f"/clients/{alice.email}", json={"name": "Alicia"})

    after = response.get_json()
    assert response.status_code == 200
    assert after["name"] == "Alicia" and fresh(alice).name == "Alicia"
    unchanged = {k: v for k, v in before.items() if k not in ("name", "link", "links")}
    assert {k: after[k] for k in unchanged} == unchanged


def test_it_lifts_a_limit_sent_as_null_and_keeps_the_rest(
    writer: Caller, alice: Client
):
    before = writer.get(f"/clients/{alice.email}").get_json()

    response = writer.patch(f"/clients/{alice.email}", json={"limit": None})

    after = response.get_json()
    assert response.status_code == 200
    assert after["limit"] is None and fresh(alice).data_limit is None
    assert after["expiry"] == before["expiry"] is not None
    assert after["name"] == "Alice" and after["reset_strategy"] == "month"


def test_it_lifts_an_expiry_sent_as_null(writer: Caller, alice: Client):
    response = writer.patch(f"/clients/{alice.email}", json={"expiry": None})

    assert response.status_code == 200
    assert response.get_json()["expiry"] is None
    assert fresh(alice).expire_at is None and fresh(alice).data_limit == 5 * GB


def test_it_changes_the_reset_strategy(writer: Caller, alice: Client):
    response = writer.patch(f"/clients/{alice.email}", json={"reset_strategy": "day"})

    assert response.status_code == 200
    assert fresh(alice).reset_strategy == "day"
    assert response.get_json()["next_reset"] is not None


def test_it_changes_nothing_for_an_empty_patch(writer: Caller, alice: Client):
    before = writer.get(f"/clients/{alice.email}").get_json()

    response = writer.patch(f"/clients/{alice.email}", json={})

    assert response.status_code == 200
    assert response.get_json() == before


def test_it_moves_a_client_to_the_nodes_sent_and_back_to_all(
    writer: Caller,
    alice: Client,
    edge: Node,
    simulator: Simulator,
    second: Simulator,
):
    response = writer.patch(f"/clients/{alice.email}", json={"nodes": ["edge"]})

    assert response.status_code == 200
    assert response.get_json()["nodes"] == ["edge"]
    assert alice.email not in simulator.users() and alice.email in second.users()
    assert fresh(alice).data_limit == 5 * GB

    back = writer.patch(f"/clients/{alice.email}", json={"nodes": "all"})

    assert back.get_json()["nodes"] == "all"
    assert alice.email in simulator.users() and alice.email in second.users()


def test_it_limits_a_client_whose_new_limit_is_used_up_and_frees_it_again(
    writer: Caller, alice: Client, simulator: Simulator
):
    use(simulator, alice, downlink=2 * 1024**2)

    limited = writer.patch(f"/clients/{alice.email}", json={"limit": 1024**2})

    assert limited.get_json()["status"] == "limited"
    assert alice.email not in simulator.users()

    freed = writer.patch(f"/clients/{alice.email}", json={"limit": None})

    assert freed.get_json()["status"] == "active"
    assert alice.email in simulator.users()


def test_it_refuses_a_rename_to_a_name_taken_in_another_case(
    writer: Caller, alice: Client, simulator: Simulator
):
    service.create_client("Bob")
    before = snapshot(simulator)

    response = writer.patch(f"/clients/{alice.email}", json={"name": "BOB"})

    body = assert_problem(response, 409)
    assert "name" in body["errors"]
    assert snapshot(simulator) == before


def test_it_lets_a_client_take_its_own_name_in_another_case(
    writer: Caller, alice: Client
):
    response = writer.patch(f"/clients/{alice.email}", json={"name": "ALICE"})

    assert response.status_code == 200
    assert response.get_json()["name"] == "ALICE" == fresh(alice).name


def test_it_refuses_a_null_name(writer: Caller, alice: Client, simulator: Simulator):
    before = snapshot(simulator)

    response = writer.patch(f"/clients/{alice.email}", json={"name": None})

    assert "name" in assert_problem(response, 422)["errors"]
    assert snapshot(simulator) == before


def test_it_answers_404_when_changing_an_unknown_client(writer: Caller):
    assert_problem(writer.patch("/clients/nobody", json={"limit": None}), 404)


# Clients: delete


def test_it_deletes_a_client_from_the_database_and_xray(
    writer: Caller, alice: Client, simulator: Simulator
):
    response = writer.delete(f"/clients/{alice.email}")

    assert response.status_code == 204
    assert response.get_data() == b""
    assert_problem(writer.get(f"/clients/{alice.email}"), 404)
    assert Client.select().count() == 0
    assert alice.email not in simulator.users()


def test_it_answers_404_when_deleting_a_client_twice(writer: Caller, alice: Client):
    assert writer.delete(f"/clients/{alice.email}").status_code == 204

    assert_problem(writer.delete(f"/clients/{alice.email}"), 404)


# Clients: actions


def test_it_disables_a_client_and_takes_it_out_of_xray(
    writer: Caller, alice: Client, simulator: Simulator
):
    response = writer.post(f"/clients/{alice.email}/disable")

    assert response.status_code == 200
    assert response.get_json()["status"] == "disabled"
    assert fresh(alice).status == "disabled"
    assert alice.email not in simulator.users()


def test_it_enables_a_disabled_client_and_puts_it_back_in_xray(
    writer: Caller, alice: Client, simulator: Simulator
):
    writer.post(f"/clients/{alice.email}/disable")

    response = writer.post(f"/clients/{alice.email}/enable")

    assert response.status_code == 200
    assert response.get_json()["status"] == "active"
    assert simulator.users()[alice.email].uuid == alice.uuid


def test_it_resets_the_periods_usage_and_keeps_the_total(
    writer: Caller, alice: Client, simulator: Simulator
):
    use(simulator, alice, uplink=10, downlink=500)

    response = writer.post(f"/clients/{alice.email}/reset")

    body = response.get_json()
    assert response.status_code == 200
    assert (body["uplink"], body["downlink"], body["used"]) == (0, 0, 0)
    assert body["used_total"] == 510
    assert (fresh(alice).uplink, fresh(alice).downlink) == (0, 0)


def test_it_brings_a_limited_client_back_on_a_reset(
    writer: Caller, alice: Client, simulator: Simulator
):
    use(simulator, alice, downlink=2 * 1024**2)
    writer.patch(f"/clients/{alice.email}", json={"limit": 1024**2})

    response = writer.post(f"/clients/{alice.email}/reset")

    assert response.get_json()["status"] == "active"
    assert alice.email in simulator.users()


def test_it_extends_an_expiry_by_the_days_sent(writer: Caller, alice: Client):
    before = fresh(alice).expire_at

    response = writer.post(f"/clients/{alice.email}/extend", json={"days": 10})

    assert response.status_code == 200
    assert fresh(alice).expire_at == before + timedelta(days=10)
    expiry = datetime.fromisoformat(response.get_json()["expiry"])
    assert expiry == fresh(alice).expire_at.replace(tzinfo=UTC)


def test_it_brings_an_expired_client_back_on_an_extension(
    writer: Caller, alice: Client, simulator: Simulator
):
    Client.update(expire_at=utcnow() - timedelta(days=1)).where(
        Client.id == alice.id
    ).execute()
    service.enforce_limits()
    assert fresh(alice).status == "expired"
    assert alice.email not in simulator.users()

    response = writer.post(f"/clients/{alice.email}/extend", json={"days": 3})

    body = response.get_json()
    assert body["status"] == "active"
    expiry = datetime.fromisoformat(body["expiry"])
    assert abs(expiry - (datetime.now(UTC) + timedelta(days=3))) < timedelta(minutes=1)
    assert alice.email in simulator.users()


def test_it_adds_days_to_a_client_on_hold(writer: Caller, app: Flask):
    waiting = service.create_client("waiting", days=5, on_hold=True)

    response = writer.post(f"/clients/{waiting.email}/extend", json={"days": 2})

    assert response.get_json()["on_hold_days"] == 7
    assert response.get_json()["expiry"] is None


def test_it_gives_a_client_a_new_uuid(
    writer: Caller, alice: Client, simulator: Simulator
):
    old = alice.uuid

    response = writer.post(f"/clients/{alice.email}/regenerate-uuid")

    body = response.get_json()
    assert response.status_code == 200
    assert body["uuid"] != old and body["uuid"] == fresh(alice).uuid
    assert simulator.users()[alice.email].uuid == body["uuid"]
    assert body["link"].startswith(f"vless://{body['uuid']}@")
    assert_problem(writer.get(f"/clients/{old}"), 404)


def test_it_revokes_a_subscription_url(
    writer: Caller, client: FlaskClient, alice: Client
):
    old_url = writer.get(f"/clients/{alice.email}").get_json()["subscription_url"]
    old_path = urllib.parse.urlsplit(old_url).path
    assert client.get(old_path).status_code == 200

    response = writer.post(f"/clients/{alice.email}/revoke-subscription")

    new_url = response.get_json()["subscription_url"]
    assert response.status_code == 200 and new_url != old_url
    assert client.get(old_path).status_code == 404
    assert client.get(urllib.parse.urlsplit(new_url).path).status_code == 200


@pytest.mark.parametrize(
    "action", ["enable", "disable", "reset", "regenerate-uuid", "revoke-subscription"]
)
def test_it_answers_404_for_an_action_on_an_unknown_client(
    writer: Caller, alice: Client, simulator: Simulator, action: str
):
    before = snapshot(simulator)

    assert_problem(writer.post(f"/clients/nobody/{action}"), 404)
    assert snapshot(simulator) == before


# Clients: usage


@pytest.mark.parametrize(
    ("period", "count", "step"),
    [("hour", 5, timedelta(hours=1)), ("day", 3, timedelta(days=1))],
)
def test_it_hands_out_usage_by_period_newest_last(
    reader: Caller,
    alice: Client,
    simulator: Simulator,
    period: str,
    count: int,
    step: timedelta,
):
    use(simulator, alice, uplink=70, downlink=300)

    response = reader.get(
        f"/clients/{alice.email}/usage",
        query_string={"period": period, "count": count},
    )

    body = response.get_json()
    assert response.status_code == 200
    assert body["period"] == period
    starts = [datetime.fromisoformat(p["start"]) for p in body["points"]]
    assert len(starts) == count
    assert all(s.utcoffset() == timedelta(0) for s in starts)
    assert all(b - a == step for a, b in itertools.pairwise(starts))
    assert starts[-1] <= datetime.now(UTC) < starts[-1] + step
    last = body["points"][-1]
    assert (last["uplink"], last["downlink"]) == (70, 300)
    assert sum(p["uplink"] + p["downlink"] for p in body["points"]) == 370
    assert body["nodes"] == [{"node": "main", "uplink": 70, "downlink": 300}]


def test_it_hands_out_thirty_days_of_usage_by_default(reader: Caller, alice: Client):
    body = reader.get(f"/clients/{alice.email}/usage").get_json()

    assert body["period"] == "day"
    assert len(body["points"]) == 30
    assert body["nodes"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"period": "week"}, "period"),
        ({"count": 0}, "count"),
        ({"count": 367}, "count"),
        ({"count": "many"}, "count"),
    ],
)
def test_it_refuses_a_bad_usage_query(
    reader: Caller, alice: Client, query: dict, field: str
):
    response = reader.get(f"/clients/{alice.email}/usage", query_string=query)

    assert field in assert_problem(response, 422)["errors"]


# Listing clients


@pytest.fixture
def crowd(app: Flask) -> list[Client]:
    """Five clients, oldest first; the third is disabled."""
    made = [
        service.create_client(name)
        for name in ("Alice Smith", "bob", "ALICIA", "dora", "Eve_1")
    ]
    service.disable_client(made[2])
    return [fresh(c) for c in made]


def test_it_lists_clients_oldest_first(reader: Caller, crowd: list[Client]):
    response = reader.get("/clients")

    assert emails(response) == [c.email for c in crowd]
    assert response.get_json()["next_cursor"] is None


@pytest.mark.parametrize(
    ("status", "chosen"), [("active", [0, 1, 3, 4]), ("disabled", [2]), ("expired", [])]
)
def test_it_lists_the_clients_in_a_status(
    reader: Caller, crowd: list[Client], status: str, chosen: list[int]
):
    response = reader.get("/clients", query_string={"status": status})

    assert emails(response) == [crowd[i].email for i in chosen]


@pytest.mark.parametrize(
    ("search", "chosen"),
    [
        ("ali", [0, 2]),
        ("ALI", [0, 2]),
        ("e smi", [0]),
        ("_", [4]),
        ("%", []),
        ("nobody", []),
    ],
)
def test_it_finds_clients_by_part_of_the_name_in_any_case(
    reader: Caller, crowd: list[Client], search: str, chosen: list[int]
):
    response = reader.get("/clients", query_string={"search": search})

    assert emails(response) == [crowd[i].email for i in chosen]


def test_it_finds_a_client_by_its_whole_email_or_uuid(
    reader: Caller, crowd: list[Client]
):
    dora = crowd[3]

    by_email = reader.get("/clients", query_string={"search": dora.email})
    by_uuid = reader.get("/clients", query_string={"search": dora.uuid.upper()})

    assert emails(by_email) == [dora.email]
    assert emails(by_uuid) == [dora.email]


def test_it_lists_the_clients_on_a_node(
    reader: Caller, crowd: list[Client], edge: Node
):
    node_service.set_client_nodes(crowd[1], [edge])
    node_service.set_client_nodes(crowd[3], [main_node()])

    on_edge = reader.get("/clients", query_string={"node": "edge"})
    on_main = reader.get("/clients", query_string={"node": "main"})

    assert emails(on_edge) == [crowd[i].email for i in (0, 1, 2, 4)]
    assert emails(on_main) == [crowd[i].email for i in (0, 2, 3, 4)]


def test_it_lists_no_client_on_a_node_that_does_not_exist(
    reader: Caller, crowd: list[Client]
):
    response = reader.get("/clients", query_string={"node": "nowhere"})

    if response.status_code == 422:
        assert "node" in assert_problem(response, 422)["errors"]
    else:
        assert emails(response) == []


def test_it_combines_filters(reader: Caller, crowd: list[Client]):
    response = reader.get(
        "/clients", query_string={"search": "ali", "status": "active"}
    )

    assert emails(response) == [crowd[0].email]


def test_it_walks_every_client_exactly_once_page_by_page(
    reader: Caller, crowd: list[Client]
):
    seen: list[list[str]] = []
    query = {"limit": 2}
    while True:
        response = reader.get("/clients", query_string=query)
        seen.append(emails(response))
        cursor = response.get_json()["next_cursor"]
        if cursor is None:
            break
        assert len(seen) < 10, "the cursor never ends"
        query = {"limit": 2, "cursor": cursor}

    assert [len(page) for page in seen] == [2, 2, 1]
    assert [e for page in seen for e in page] == [c.email for c in crowd]


def test_it_ends_the_pages_where_the_clients_end(reader: Caller, crowd: list[Client]):
    first = reader.get("/clients", query_string={"limit": 5})

    assert len(emails(first)) == 5
    assert first.get_json()["next_cursor"] is None


def test_it_keeps_a_filter_across_pages(reader: Caller, crowd: list[Client]):
    first = reader.get("/clients", query_string={"status": "active", "limit": 3})
    cursor = first.get_json()["next_cursor"]
    rest = reader.get(
        "/clients", query_string={"status": "active", "limit": 3, "cursor": cursor}
    )

    assert emails(first) + emails(rest) == [crowd[i].email for i in (0, 1, 3, 4)]
    assert rest.get_json()["next_cursor"] is None


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "€uro",
        "-1",
        "1.5",
        "9" * 30,
        "YWZ0ZXI6OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5",
        "x" * 100,
    ],
)
def test_it_refuses_a_cursor_it_did_not_give_out(
    reader: Caller, crowd: list[Client], cursor: str
):
    response = reader.get("/clients", query_string={"cursor": cursor})

    assert "cursor" in assert_problem(response, 422)["errors"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "lots"}, "limit"),
        ({"status": "sleeping"}, "status"),
        ({"node": "Not A Node!"}, "node"),
        ({"search": "x" * 65}, "search"),
        ({"stauts": "disabled"}, "stauts"),  # a typo must not list everyone
    ],
)
def test_it_refuses_a_bad_list_query(
    reader: Caller, crowd: list[Client], query: dict, field: str
):
    response = reader.get("/clients", query_string=query)

    body = assert_problem(response, 422)
    assert field in body["errors"] and body["errors"][field].endswith(".")


def test_it_takes_the_smallest_and_largest_page_size(
    reader: Caller, crowd: list[Client]
):
    assert len(emails(reader.get("/clients", query_string={"limit": 1}))) == 1
    assert len(emails(reader.get("/clients", query_string={"limit": 500}))) == 5


# Bad input: a problem, and nothing saved


def raw_json(text: str) -> dict:
    return {"data": text, "content_type": "application/json"}


BAD_CREATES = {
    "malformed JSON": (raw_json('{"name": "x",'), 400, None),
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


@pytest.mark.parametrize(
    ("request_", "status", "field"), BAD_CREATES.values(), ids=BAD_CREATES.keys()
)
def test_it_refuses_a_bad_new_client_and_saves_nothing(
    writer: Caller,
    alice: Client,
    simulator: Simulator,
    request_: dict,
    status: int,
    field: str | None,
):
    before = snapshot(simulator)

    response = writer.post("/clients", **request_)

    body = assert_problem(response, status)
    if status == 422:
        assert body["errors"], "a 422 names what is wrong"
    assert "pydantic" not in response.get_data(as_text=True)
    if field is not None:
        assert field in body["errors"], body["errors"]
        assert body["errors"][field].endswith(".")
    assert Client.select().count() == 1
    assert snapshot(simulator) == before


def test_it_answers_every_wrong_field_at_once(writer: Caller, alice: Client):
    response = writer.post(
        "/clients",
        json={"name": "x", "limit": "5", "days": 1.5, "reset_strategy": 7, "extra": 1},
    )

    errors = assert_problem(response, 422)["errors"]
    assert {"limit", "days", "reset_strategy", "extra"} <= set(errors)
    assert errors["extra"] == "Unknown field."
    assert Client.select().count() == 1


def test_it_names_an_unknown_field_as_such(writer: Caller, app: Flask):
    response = writer.post("/clients", json={"name": "x", "data_limit": 5})

    assert assert_problem(response, 422)["errors"] == {"data_limit": "Unknown field."}
    assert Client.select().count() == 0


BAD_EDITS = {
    "malformed JSON": (raw_json("{"), 400, None),
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


@pytest.mark.parametrize(
    ("request_", "status", "field"), BAD_EDITS.values(), ids=BAD_EDITS.keys()
)
def test_it_refuses_a_bad_change_and_saves_nothing(
    writer: Caller,
    alice: Client,
    simulator: Simulator,
    request_: dict,
    status: int,
    field: str | None,
):
    before = snapshot(simulator)

    response = writer.patch(f"/clients/{alice.email}", **request_)

    body = assert_problem(response, status)
    if field is not None:
        assert field in body["errors"], body["errors"]
    assert snapshot(simulator) == before


@pytest.mark.parametrize(
    "sent",
    [{"days": 1.5}, {"days": "3"}, {"days": 0}, {"days": 36_501}, {}, {"weeks": 2}],
)
def test_it_refuses_bad_days_to_extend_by(
    writer: Caller, alice: Client, simulator: Simulator, sent: dict
):
    before = snapshot(simulator)

    response = writer.post(f"/clients/{alice.email}/extend", json=sent)

    assert assert_problem(response, 422)["errors"]
    assert snapshot(simulator) == before


def test_it_refuses_to_hold_a_client_past_the_longest_hold(
    writer: Caller, app: Flask, simulator: Simulator
):
    waiting = service.create_client("waiting", days=36_500, on_hold=True)
    before = snapshot(simulator)

    response = writer.post(f"/clients/{waiting.email}/extend", json={"days": 1})

    assert "days" in assert_problem(response, 409)["errors"]
    assert fresh(waiting).on_hold_days == 36_500
    assert snapshot(simulator) == before


# Nodes and figures


def test_it_lists_the_nodes(reader: Caller, simulator: Simulator, edge: Node):
    response = reader.get("/nodes")

    items = response.get_json()["items"]
    assert response.status_code == 200
    assert [n["name"] for n in items] == ["main", "edge"]
    main = items[0]
    assert main["api_address"] == simulator.address
    assert (main["public_host"], main["public_port"]) == ("vpn.example.com", 8443)
    assert main["inbound_tag"] == "vless-in"
    assert main["state"] == main_node().state


def test_it_reads_a_node(reader: Caller, simulator: Simulator):
    accounting.poll_node(main_node())

    response = reader.get("/nodes/main")

    body = response.get_json()
    assert response.status_code == 200
    assert body["name"] == "main" and body["api_address"] == simulator.address
    assert body["online"] is main_node().online
    assert body["state"] == main_node().state


def test_it_answers_404_for_an_unknown_node(reader: Caller):
    assert_problem(reader.get("/nodes/nowhere"), 404)


def test_it_counts_clients_traffic_and_nodes_in_the_stats(
    reader: Caller, crowd: list[Client], simulator: Simulator, edge: Node
):
    sync.recover_node(main_node(), force=True)  # main answers; edge unchecked
    use(simulator, crowd[0], uplink=1000, downlink=24)
    use(simulator, crowd[1], downlink=500)

    body = reader.get("/stats").get_json()

    assert body["clients_total"] == 5 == Client.select().count()
    assert body["clients_by_status"]["active"] == 4
    assert body["clients_by_status"]["disabled"] == 1
    assert sum(body["clients_by_status"].values()) == 5
    assert body["traffic_today"] == 1524
    assert body["traffic_today"] == sum(
        h.uplink + h.downlink for h in UsageHour.select()
    )
    assert body["nodes_total"] == 2
    assert body["nodes_online"] == 1
    assert main_node().online and not Node.get(Node.name == "edge").online


def test_it_counts_nothing_on_an_empty_server(reader: Caller):
    body = reader.get("/stats").get_json()

    assert body["clients_total"] == 0 and body["traffic_today"] == 0
    assert set(body["clients_by_status"].values()) <= {0}
    assert body["nodes_total"] == 1


# Errors outside the operations


def test_it_answers_an_unknown_api_address_with_a_problem(reader: Caller):
    response = reader.get("/nope")

    assert_problem(response, 404)


def test_it_answers_a_wrong_method_with_a_problem_and_the_allowed_ones(
    reader: Caller,
):
    response = reader("PUT", "/stats")

    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]
    assert "PUT" not in response.headers["Allow"]


def test_it_names_the_methods_a_client_address_takes(writer: Caller, alice: Client):
    response = writer("PUT", f"/clients/{alice.email}", json={"name": "x"})

    assert_problem(response, 405)
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert {"GET", "PATCH", "DELETE"} <= allowed
    assert fresh(alice).name == "Alice"


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
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
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
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
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
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
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
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
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

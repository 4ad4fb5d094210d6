"""Clients through the API: create, read, change, delete, act, usage, lists."""

from __future__ import annotations

import itertools
import json
import re
import threading
import unicodedata
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.api_support import PREFIX
from tests.api_support import Caller
from tests.api_support import assert_problem
from tests.api_support import emails
from tests.api_support import fresh
from tests.api_support import main_node
from tests.api_support import snapshot
from tests.api_support import url_of
from tests.api_support import use
from webpanel.api.schemas import PATTERN_MESSAGES
from webpanel.models import AuditEntry
from webpanel.models import Client
from webpanel.models import Node
from webpanel.models import db
from webpanel.models import utcnow
from webpanel.services import api_keys
from webpanel.services import clients as service
from webpanel.services import nodes as node_service
from webpanel.services.clients import GB
from xray.simulator import Simulator

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
    assert AuditEntry.select().where(AuditEntry.event == "edited").count() == 0


def test_it_keeps_fields_a_change_did_not_send_when_another_call_changed_them(
    writer: Caller, alice: Client
):
    stale = fresh(alice)  # what a PATCH handler loaded before a renewal landed
    was = stale.expire_at
    writer.post(f"/clients/{alice.email}/extend", json={"days": 30})

    service.edit_client(stale, data_limit=2 * GB)

    row = fresh(alice)
    assert row.data_limit == 2 * GB
    assert row.expire_at == was + timedelta(days=30)


def test_it_adds_both_of_two_renewals_sent_at_once(
    make_app, simulator: Simulator, tmp_path
):
    # Two servers on one database, as two gunicorn workers would be.
    first = make_app(simulator.address)
    second = make_app(simulator.address)
    with first.app_context(), db.connection_context():
        made = service.create_client("Twice", days=1)
        _, key = api_keys.create_key("shop", "write")
    start = made.expire_at
    barrier = threading.Barrier(2)

    def renew(app: Flask) -> int:
        http = app.test_client()
        barrier.wait()
        response = http.post(
            f"{PREFIX}/clients/{made.email}/extend",
            json={"days": 30},
            headers={"Authorization": f"Bearer {key}"},
        )
        return response.status_code

    with ThreadPoolExecutor(2) as pool:
        codes = list(pool.map(renew, [first, second]))

    assert codes == [200, 200]
    with first.app_context(), db.connection_context():
        assert fresh(made).expire_at == start + timedelta(days=60)


def test_it_refuses_to_extend_a_client_that_never_expires(writer: Caller, app: Flask):
    never = service.create_client("Forever")

    response = writer.post(f"/clients/{never.email}/extend", json={"days": 30})

    body = assert_problem(response, 409)
    assert body["errors"]["days"] == service.NEVER_EXPIRES
    assert fresh(never).expire_at is None


def test_it_finds_a_client_by_email_before_a_name_that_looks_like_one(
    writer: Caller, alice: Client
):
    response = writer.post("/clients", json={"name": alice.email})
    body = assert_problem(response, 422)
    assert "email key" in body["errors"]["name"]
    uuid = writer.post("/clients", json={"name": alice.uuid.upper()})
    assert "UUID" in assert_problem(uuid, 422)["errors"]["name"]

    assert writer.get(f"/clients/{alice.email}").get_json()["name"] == "Alice"


@pytest.mark.parametrize(
    "twin",
    [
        "ＡＬＩＣＥ",  # full-width letters
        "Ali\u200dce",  # a joiner inside
        "Alice",
    ],
)
def test_it_refuses_a_name_that_only_looks_different(
    writer: Caller, alice: Client, twin: str
):
    response = writer.post("/clients", json={"name": twin})

    assert_problem(response, 409)
    assert writer.get(f"/clients/{urllib.parse.quote(twin)}").status_code == 200


@pytest.mark.parametrize("hidden", ["a\u200bb", "bob\u202eevil", "x\u2066y", "\ufeffz"])
def test_it_refuses_invisible_characters_in_a_name(writer: Caller, hidden: str):
    response = writer.post("/clients", json={"name": hidden})

    body = assert_problem(response, 422)
    assert body["errors"]["name"] == PATTERN_MESSAGES["name"]
    assert Client.select().count() == 0


def test_it_finds_a_decomposed_name_as_the_composed_one(writer: Caller, app: Flask):
    made = service.create_client("Zoë café")
    decomposed = unicodedata.normalize("NFD", "zoë CAFÉ")

    found = writer.get(f"/clients/{urllib.parse.quote(decomposed)}")
    listed = writer.get("/clients", query_string={"search": decomposed[:4]})

    assert found.get_json()["email"] == made.email
    assert [c["email"] for c in listed.get_json()["items"]] == [made.email]


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
        ({"limit": "1_0"}, "limit"),
        ({"limit": " 10"}, "limit"),
        ({"limit": ["1", "500"]}, "limit"),  # given twice
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

"""Client services against the simulator: database first, then Xray."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from tests.daemons import when_online
from webpanel.models import Client
from webpanel.models import Node
from webpanel.models import Removal
from webpanel.services import clients as service
from webpanel.services import sync
from webpanel.services.clients import GB
from webpanel.services.clients import ClientError
from xray.simulator import Simulator


def test_it_creates_a_client_in_the_database_and_in_xray(
    app: Flask, simulator: Simulator
):
    client = service.create_client("Алиса 🦊", data_limit=5 * GB, days=30)

    assert re.fullmatch(r"c\d+", client.email)
    assert re.fullmatch(r"[0-9a-f-]{36}", client.uuid)
    assert client.sub_token != client.uuid and len(client.sub_token) >= 22
    assert client.status == "active" and client.pending is False
    held = simulator.users()
    assert held[client.email].uuid == client.uuid
    assert held[client.email].flow == "xtls-rprx-vision"


def test_it_never_reuses_an_email_key(app: Flask):
    first = service.create_client("one")
    service.delete_client(first)
    second = service.create_client("two")

    assert second.email != first.email


def test_it_refuses_a_name_that_exists_ignoring_case(app: Flask, simulator: Simulator):
    service.create_client("Bob")

    with pytest.raises(ClientError) as caught:
        service.create_client("  bOB ")

    assert caught.value.errors == {"name": "A client with this name already exists."}
    assert Client.select().count() == 1
    assert len(simulator.users()) == 1


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, "tab\there"])
def test_it_refuses_a_bad_name_and_saves_nothing(app: Flask, name: str):
    with pytest.raises(ClientError) as caught:
        service.create_client(name)

    assert "name" in caught.value.errors
    assert Client.select().count() == 0


@pytest.mark.parametrize("raw", ["abc", "-1", "0", "1e99", "nan", "inf"])
def test_it_refuses_a_bad_data_limit(raw: str):
    with pytest.raises(ClientError) as caught:
        service.parse_limit_gb(raw)

    assert "limit_gb" in caught.value.errors


@pytest.mark.parametrize("raw", ["abc", "-3", "0", "1.5", "99999999"])
def test_it_refuses_bad_days(raw: str):
    with pytest.raises(ClientError) as caught:
        service.parse_days(raw)

    assert "days" in caught.value.errors


def test_it_reads_blank_limits_as_unlimited():
    assert service.parse_limit_gb("") is None
    assert service.parse_limit_gb(None) is None
    assert service.parse_days(" ") is None
    assert service.parse_limit_gb("1,5") == int(1.5 * GB)


def test_it_removes_a_disabled_client_from_xray_and_adds_it_back(
    app: Flask, simulator: Simulator
):
    client = service.create_client("carol")

    service.disable_client(client)
    assert client.email not in simulator.users()
    assert Client.get_by_id(client.id).status == "disabled"

    service.enable_client(client)
    assert client.email in simulator.users()
    assert Client.get_by_id(client.id).status == "active"


def test_it_deletes_a_client_from_the_database_and_xray(
    app: Flask, simulator: Simulator
):
    client = service.create_client("dave")

    service.delete_client(client)

    assert Client.select().count() == 0
    assert simulator.users() == {}


def test_it_keeps_changes_while_xray_is_down_and_applies_them_when_back(
    app: Flask, simulator: Simulator
):
    kept = service.create_client("kept")
    gone = service.create_client("gone")
    simulator.stop()

    late = service.create_client("late")
    service.disable_client(kept)
    service.delete_client(gone)

    assert late.pending is True and kept.pending is True
    node = Node.get()
    assert node.state == "offline"
    assert Removal.select().count() == 1

    simulator.start()  # same port, booted empty like a restarted daemon
    result = when_online(lambda: sync.recover_node(node))

    assert result.online and result.resynced
    assert set(simulator.users()) == {late.email}
    assert Client.select().where(Client.pending == True).count() == 0
    assert Removal.select().count() == 0
    assert Node.get().state == "online"


def test_it_finds_a_client_by_name_email_or_uuid(app: Flask):
    client = service.create_client("Erin")

    assert service.find_client("erin").id == client.id
    assert service.find_client(client.email).id == client.id
    assert service.find_client(client.uuid.upper()).id == client.id
    assert service.find_client("nobody") is None


def test_it_limits_a_client_over_its_data_limit(app: Flask, simulator: Simulator):
    client = service.create_client("frank", data_limit=1000)
    Client.update(downlink=1000).where(Client.id == client.id).execute()

    changed = service.enforce_limits()

    assert [c.client.email for c in changed] == [client.email]
    assert Client.get_by_id(client.id).status == "limited"
    assert client.email not in simulator.users()


def test_it_treats_a_zero_byte_limit_as_a_limit_not_as_unlimited(app: Flask):
    client = service.create_client("zero")
    Client.update(data_limit=0).where(Client.id == client.id).execute()

    service.enforce_limits()

    assert Client.get_by_id(client.id).status == "limited"


def test_it_expires_a_client_past_its_expiry(app: Flask, simulator: Simulator):
    client = service.create_client("gina", days=1)
    later = client.expire_at

    service.enforce_limits(now=later)

    assert Client.get_by_id(client.id).status == "expired"
    assert client.email not in simulator.users()


def test_it_keeps_an_admins_disable_over_enforcement(app: Flask):
    client = service.create_client("hank", data_limit=10)
    service.disable_client(client)
    Client.update(downlink=100).where(Client.id == client.id).execute()

    service.enforce_limits()

    assert Client.get_by_id(client.id).status == "disabled"


def test_it_brings_back_a_limited_client_whose_limit_is_raised(
    app: Flask, simulator: Simulator
):
    client = service.create_client("ivy", data_limit=10)
    Client.update(downlink=100).where(Client.id == client.id).execute()
    service.enforce_limits()
    client = Client.get_by_id(client.id)

    service.edit_client(client, name="ivy", data_limit=None, expire_at=None)

    assert client.status == "active"
    assert client.email in simulator.users()


def test_it_limits_at_once_a_client_whose_new_limit_is_below_its_usage(
    app: Flask, simulator: Simulator
):
    client = service.create_client("jack")
    Client.update(downlink=5000).where(Client.id == client.id).execute()
    client = Client.get_by_id(client.id)

    service.edit_client(client, name="Jack", data_limit=1000, expire_at=None)

    assert Client.get_by_id(client.id).status == "limited"
    assert Client.get_by_id(client.id).name == "Jack"
    assert client.email not in simulator.users()


def test_it_keeps_a_disabled_client_disabled_when_edited(app: Flask):
    client = service.create_client("kate")
    service.disable_client(client)

    service.edit_client(client, name="kate", data_limit=None, expire_at=None)

    assert Client.get_by_id(client.id).status == "disabled"


def test_it_refuses_to_rename_onto_another_clients_name(app: Flask):
    service.create_client("Liam")
    mia = service.create_client("mia", data_limit=GB)

    with pytest.raises(ClientError):
        service.edit_client(mia, name="LIAM", data_limit=None, expire_at=None)

    saved = Client.get_by_id(mia.id)
    assert (saved.name, saved.data_limit) == ("mia", GB)


def test_it_reads_an_expiry_date_as_the_end_of_that_day_in_the_admins_zone():
    tz = ZoneInfo("Europe/Moscow")

    assert service.parse_expiry_date("2027-01-31", tz) == datetime(2027, 1, 31, 21, 0)
    assert service.parse_expiry_date("", tz) is None
    for bad in ("31.01.2027", "9999-12-31", "soon"):
        with pytest.raises(ClientError):
            service.parse_expiry_date(bad, tz)


def test_it_upgrades_old_name_keys_renaming_names_that_now_read_the_same(app: Flask):
    from webpanel.database import _name_keys_nfkc
    from webpanel.models import AuditEntry
    from webpanel.models import db

    # As the last release kept them: keys folded case only.
    first = service.create_client("alice")
    legacy = [("Ａlice", "c90"), ("Bo\u200db", "c91"), ("c12", "c92")]
    for name, email in legacy:
        Client.create(
            name=name,
            name_key=name.casefold(),
            email=email,
            uuid=f"00000000-0000-4000-8000-0000000000{email[1:]}",
            sub_token=f"token-{email}",
        )

    _name_keys_nfkc(db)

    names = {c.email: (c.name, c.name_key) for c in Client.select()}
    assert names[first.email] == ("alice", "alice")
    assert names["c90"] == ("Ａlice (2)", "alice (2)")
    assert names["c91"] == ("Bo\u200db", "bob")
    assert service.find_client("ＡＬＩＣＥ").email == first.email
    assert service.find_client("bob").email == "c91"
    renamed = AuditEntry.get(AuditEntry.client_id == Client.get(email="c90").id)
    assert renamed.event == "renamed" and "Ａlice" in renamed.detail

    # A name today's rules refuse stays while an edit keeps it.
    old = Client.get(Client.email == "c92")
    service.edit_client(old, name="c12", data_limit=GB)
    assert (fresh_row := Client.get_by_id(old.id)).name == "c12"
    assert fresh_row.data_limit == GB

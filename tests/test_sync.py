"""Restart recovery: the database is the truth, Xray's memory a cache of it."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from datetime import datetime
from datetime import timedelta

import pytest
from flask import Flask

from tests.daemons import when_online
from webpanel.models import Node
from webpanel.models import db
from webpanel.services import clients as service
from webpanel.services import sync
from webpanel.services.sync import restarted_since
from xray.client import User
from xray.simulator import Simulator

T0 = datetime(2026, 1, 1, 12, 0, 0)
OTHER_UUID = "11111111-1111-4111-8111-111111111111"


@pytest.mark.parametrize(
    ("last", "elapsed", "uptime", "restarted"),
    [
        (100, 10, 110, False),
        (100, 10, 109, False),  # whole seconds and slow calls: within the slack
        (100, 10, 5, True),
        (100, 60, 30, True),  # restarted 30 s ago, after the last look
        (None, 10, 5, False),  # nothing seen before
    ],
)
def test_it_sees_a_restart_when_uptime_is_lower_than_expected(
    last, elapsed, uptime, restarted
):
    now = T0 + timedelta(seconds=elapsed)

    assert restarted_since(last, T0, uptime, now) is restarted


def test_it_restores_every_user_after_a_restart(app: Flask, simulator: Simulator):
    clients = [service.create_client(f"user {i}") for i in range(30)]
    service.disable_client(clients[0])
    sync.recover_node(Node.get())
    simulator.advance_uptime(120)
    sync.recover_node(Node.get())

    simulator.restart()
    result = when_online(lambda: sync.recover_node(Node.get()))

    assert result.restarted and result.resynced and result.added == 29
    assert set(simulator.users()) == {c.email for c in clients[1:]}


def test_it_notices_a_restart_uptime_missed_by_re_adding_one_user(
    app: Flask, simulator: Simulator
):
    client = service.create_client("canary")
    sync.recover_node(Node.get())

    simulator.advance_uptime(60)
    # The user vanishes while uptime looks normal, as after a restart
    # within the slack, or an operator's RemoveUser.
    sync.gateway(Node.get()).remove_user("vless-in", client.email)
    result = sync.recover_node(Node.get())

    assert result.online and result.resynced
    assert client.email in simulator.users()


def test_it_does_nothing_when_the_node_holds_what_it_should(
    app: Flask, simulator: Simulator
):
    service.create_client("steady")
    sync.recover_node(Node.get())
    simulator.advance_uptime(60)

    result = sync.recover_node(Node.get())

    assert result.online and not result.resynced and not result.restarted


def test_it_never_removes_users_it_does_not_manage(app: Flask, simulator: Simulator):
    simulator.add_user(User(email="admin-own", uuid=OTHER_UUID))
    service.create_client("ours")

    sync.recover_node(Node.get(), force=True)

    assert "admin-own" in simulator.users()


@pytest.fixture
def v2ray_like(make_app: Callable[..., Flask]) -> Iterator[tuple[Flask, Simulator]]:
    """A daemon that can't list its users, as Debian's v2ray."""
    sim = Simulator(can_list=False).start()
    app = make_app(sim.address)
    with app.app_context(), db.connection_context():
        yield app, sim
    sim.stop()


def test_it_re_adds_everyone_where_the_daemon_cannot_list_users(v2ray_like):
    _, sim = v2ray_like
    kept = service.create_client("kept")
    off = service.create_client("off")
    service.disable_client(off)
    sim.add_user(User(email=off.email, uuid=off.uuid))  # lingering from before

    result = sync.recover_node(Node.get(), force=True)

    assert result.resynced
    assert set(sim.users()) == {kept.email}
    assert result.removed == 1


def test_it_restores_thousands_of_users_with_a_bounded_pool(
    app: Flask, simulator: Simulator
):
    from webpanel.models import Client

    rows = [
        {
            "name": f"bulk {i}",
            "name_key": f"bulk {i}",
            "email": f"b{i}",
            "uuid": f"00000000-0000-4000-8000-{i:012d}",
            "sub_token": f"t{i}",
        }
        for i in range(2000)
    ]
    with db.atomic():
        Client.insert_many(rows).execute()

    result = sync.recover_node(Node.get(), force=True)

    assert result.added == 2000
    assert len(simulator.users()) == 2000


def test_it_removes_a_retired_mixed_case_email_before_adding_its_new_key(
    app: Flask, simulator: Simulator
):
    from webpanel.models import Removal

    client = service.create_client("renamed")
    sync.gateway(Node.get()).remove_user("vless-in", client.email)
    simulator.add_user(User(email="Alice", uuid=client.uuid))
    Removal.create(node=Node.get(), email="Alice")

    result = sync.recover_node(Node.get(), force=True)

    assert result.removed == 1
    assert set(simulator.users()) == {client.email}
    assert Removal.select().count() == 0


def test_it_removes_before_adding_where_the_daemon_cannot_list(v2ray_like):
    from webpanel.models import Removal

    _, sim = v2ray_like
    client = service.create_client("rekeyed")
    sim.restart()
    sim.add_user(User(email="Old-Key", uuid=client.uuid))
    Removal.create(node=Node.get(), email="Old-Key")

    when_online(lambda: sync.recover_node(Node.get(), force=True))

    # Removing Old-Key after adding would have freed the UUID that the new
    # key shares, locking the client out.
    assert set(sim.users()) == {client.email}
    assert sim.push_traffic(client.email, downlink=1) == client.email  # can connect

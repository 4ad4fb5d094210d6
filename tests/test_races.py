"""What happens when two things change a client at once, or a node misses a change."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.daemons import when_online
from webpanel.models import Client
from webpanel.models import Node
from webpanel.services import accounting
from webpanel.services import clients as service
from webpanel.services import sync
from xray.simulator import Simulator


def test_it_keeps_usage_a_poll_counted_after_the_admin_loaded_the_client(
    app: Flask, simulator: Simulator
):
    client = service.create_client("alice", data_limit=10_000)
    stale = Client.get_by_id(client.id)  # the page loaded it
    simulator.push_traffic(client.email, downlink=1000)
    accounting.poll_node(Node.get())  # then a poll counted traffic

    service.edit_client(stale, name="Alice", data_limit=20_000, expire_at=None)
    service.disable_client(stale)

    saved = Client.get_by_id(client.id)
    assert (saved.downlink, saved.used_total) == (1000, 1000)
    assert (saved.name, saved.data_limit, saved.status) == ("Alice", 20_000, "disabled")


def test_it_keeps_a_disable_made_elsewhere_when_a_stale_edit_lands(app: Flask):
    client = service.create_client("bob")
    stale = Client.get_by_id(client.id)
    service.disable_client(Client.get_by_id(client.id))  # another admin

    service.edit_client(stale, name="bob", data_limit=None, expire_at=None)

    assert Client.get_by_id(client.id).status == "disabled"


@pytest.mark.parametrize("can_list", [True, False])
def test_it_brings_a_new_uuid_to_a_node_that_was_down(make_app, can_list: bool):
    from webpanel.models import db

    sim = Simulator(can_list=can_list).start()
    try:
        app = make_app(sim.address)
        with app.app_context(), db.connection_context():
            client = service.create_client("carol")
            old = client.uuid
            sim.stall(3)  # the node hangs: the change can't reach it
            service.regenerate_uuid(client)
            sim.stall(0)
            assert Client.get_by_id(client.id).pending

            when_online(lambda: sync.recover_node(Node.get()))

            held = sim.users()
            assert client.email in held and held[client.email].uuid == client.uuid
            assert held[client.email].uuid != old
            assert not Client.get_by_id(client.id).pending
    finally:
        sim.stop()


def test_it_takes_back_a_user_disabled_while_recovery_was_adding_it(
    app: Flask, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
):
    client = service.create_client("dave")
    simulator.restart()
    real_add_all = sync._add_all

    def add_then_admin_disables(gw, tag, users):
        added = real_add_all(gw, tag, users)
        Client.update(status="disabled").where(Client.id == client.id).execute()
        return added

    monkeypatch.setattr(sync, "_add_all", add_then_admin_disables)
    when_online(lambda: sync.recover_node(Node.get(), force=True))

    assert client.email not in simulator.users()

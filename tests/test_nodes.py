"""Several nodes: each its own daemon, settings and channel; usage summed."""

from __future__ import annotations

import json
import threading

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from tests.daemons import eventually
from webpanel.jobs import poll_job
from webpanel.models import Client
from webpanel.models import Node
from webpanel.services import accounting
from webpanel.services import clients as service
from webpanel.services import history
from webpanel.services import nodes as node_service
from webpanel.services import sync
from webpanel.services.links import client_links
from webpanel.services.nodes import NodeError
from xray.simulator import Simulator

# `second`, a second simulator, comes from tests/api_support.py.


@pytest.fixture
def edge(app: Flask, second: Simulator) -> Node:
    return node_service.add_node(
        "edge",
        second.address,
        public_host="edge.example.com",
        reality_sni="www.example.org",
        reality_public_key="EdgePublicKeyEdgePublicKeyEdgePublicKey1234",
        reality_short_id="ab12",
    )


def main() -> Node:
    return Node.get(Node.name == "main")


def test_it_puts_a_new_client_on_every_node(
    edge: Node, simulator: Simulator, second: Simulator
):
    client = service.create_client("both")

    assert client.email in simulator.users() and client.email in second.users()


def test_it_moves_a_client_to_the_nodes_chosen_for_it(
    edge: Node, simulator: Simulator, second: Simulator
):
    client = service.create_client("picky")

    node_service.set_client_nodes(client, [edge])

    assert client.email not in simulator.users()
    assert client.email in second.users()
    assert sync.recover_node(main(), force=True).added == 0
    assert client.email not in simulator.users()

    node_service.set_client_nodes(client, None)
    assert client.email in simulator.users()


def test_it_keeps_usage_per_node_and_sums_it(
    edge: Node, simulator: Simulator, second: Simulator
):
    client = service.create_client("roamer")
    simulator.push_traffic(client.email, downlink=1000)
    second.push_traffic(client.email, uplink=7, downlink=300)

    accounting.poll_node(main())
    accounting.poll_node(edge)

    fresh = Client.get_by_id(client.id)
    assert (fresh.uplink, fresh.downlink) == (7, 1300)
    assert history.per_node(client.id) == [("main", 0, 1000), ("edge", 7, 300)]


def test_it_hands_out_one_link_per_node_named_after_it(edge: Node):
    client = service.create_client("linked")

    links = {node.name: link for node, link in client_links(client)}

    assert set(links) == {"main", "edge"}
    assert "@edge.example.com:8443?" in links["edge"]
    assert "sni=www.example.org" in links["edge"] and "sid=ab12" in links["edge"]
    assert links["edge"].endswith("#linked%20%C2%B7%20edge")


def test_it_counts_on_a_live_node_while_another_hangs(
    make_app, simulator: Simulator, second: Simulator
):
    from webpanel.models import db

    app = make_app(simulator.address, XRAY_TIMEOUT="3")
    with app.app_context(), db.connection_context():
        node_service.add_node("edge", second.address)
        client = service.create_client("patient")
        # The first node hangs: polled one after another, the second would wait.
        second.push_traffic(client.email, downlink=500)
        simulator.stall(5)

        job = threading.Thread(target=poll_job, args=[app])
        job.start()
        counted = eventually(
            lambda: _downlink(client) == 500 or _fail(),
            retry_on=AssertionError,
            timeout=2.5,
        )
        still_waiting = job.is_alive()
        simulator.stall(0)
        job.join(timeout=10)

    assert counted and still_waiting


def _downlink(client: Client) -> int:
    return Client.get_by_id(client.id).downlink


def _fail() -> bool:
    raise AssertionError("not counted yet")


def test_it_keeps_a_client_pending_until_every_node_has_it(
    edge: Node, simulator: Simulator, second: Simulator
):
    second.stop()
    client = service.create_client("waiting")
    assert Client.get_by_id(client.id).pending

    sync.recover_node(main(), force=True)

    assert Client.get_by_id(client.id).pending


@pytest.mark.parametrize(
    ("name", "api", "field"),
    [
        ("Bad Name", "127.0.0.1:1", "name"),
        ("ok", "no-port", "api_address"),
        ("ok", "127.0.0.1:99999", "api_address"),
    ],
)
def test_it_refuses_a_bad_node(app: Flask, name: str, api: str, field: str):
    with pytest.raises(NodeError) as caught:
        node_service.add_node(name, api)

    assert field in caught.value.errors
    assert Node.select().count() == 1


def test_it_never_removes_the_main_node(app: Flask):
    with pytest.raises(NodeError):
        node_service.remove_node(main())


def test_it_manages_nodes_from_the_command_line(
    runner: FlaskCliRunner, second: Simulator
):
    added = runner.invoke(args=["node", "add", "edge", "--api", second.address])
    runner.invoke(args=["client", "add", "cli-client"])
    moved = runner.invoke(args=["client", "nodes", "cli-client", "edge"])
    listed = json.loads(runner.invoke(args=["node", "list", "--json"]).output)
    shown = json.loads(
        runner.invoke(args=["client", "show", "cli-client", "--json"]).output
    )
    removed = runner.invoke(args=["node", "remove", "edge"])

    assert added.exit_code == 0, added.output
    assert moved.exit_code == 0, moved.output
    assert [n["name"] for n in listed] == ["main", "edge"]
    assert shown["nodes"] == ["edge"]
    assert removed.exit_code == 0
    assert runner.invoke(args=["node", "remove", "main"]).exit_code == 1


def test_it_lists_adds_and_removes_nodes_in_the_panel(signed_in, second: Simulator):
    from tests.conftest import csrf_from

    page = signed_in.get("/nodes").get_data(as_text=True)
    token = csrf_from(page)
    form = {
        "name": "edge",
        "api_address": second.address,
        "csrf_token": token,
        "public_port": "8443",
        "flavor": "xray",
        "flow": "xtls-rprx-vision",
    }

    added = signed_in.post("/nodes", data=form)
    bad = signed_in.post("/nodes", data={**form, "name": "Bad Name"})
    listed = signed_in.get("/nodes").get_data(as_text=True)
    edge = Node.get(Node.name == "edge")
    removed = signed_in.post(f"/nodes/{edge.id}/delete", data={"csrf_token": token})
    kept = signed_in.post(f"/nodes/{main().id}/delete", data={"csrf_token": token})

    assert added.status_code == 302
    assert bad.status_code == 422
    assert "1-32 lowercase letters" in bad.get_data(as_text=True)
    assert 'data-node="edge"' in listed
    assert removed.status_code == 302 and Node.select().count() == 1
    assert kept.status_code == 422


def test_it_shows_each_nodes_link_and_usage_on_the_client_page(
    signed_in, edge: Node, simulator: Simulator, second: Simulator
):
    client = service.create_client("two homes")
    second.push_traffic(client.email, downlink=3000)
    accounting.poll_node(edge)

    html = signed_in.get(f"/clients/{client.id}").get_data(as_text=True)

    assert html.count("vless://") == 2
    assert f"/clients/{client.id}/qr.svg?node={edge.id}" in html
    assert "<td>edge</td>" in html
    qr = signed_in.get(f"/clients/{client.id}/qr.svg?node={edge.id}")
    assert qr.status_code == 200


def test_it_chooses_a_clients_nodes_in_the_edit_form(
    signed_in, edge: Node, simulator: Simulator, second: Simulator
):
    from tests.conftest import htmx_post

    client = service.create_client("mover")
    base = {"name": "mover", "limit_gb": "", "expire_on": "", "reset": "none"}

    moved = htmx_post(
        signed_in, f"/clients/{client.id}/edit", {**base, "nodes": "edge"}
    )
    none = htmx_post(signed_in, f"/clients/{client.id}/edit", base)

    assert moved.status_code == 200
    assert client.email not in simulator.users() and client.email in second.users()
    assert none.status_code == 422
    assert "Choose at least one node" in none.get_data(as_text=True)


def test_it_counts_nothing_twice_when_a_node_is_removed_and_added_again(
    edge: Node, second: Simulator
):
    client = service.create_client("regular")
    second.push_traffic(client.email, downlink=1000)
    accounting.poll_node(edge)

    node_service.remove_node(edge)
    again = node_service.add_node("edge", second.address)
    accounting.poll_node(again)

    assert Client.get_by_id(client.id).used_total == 1000

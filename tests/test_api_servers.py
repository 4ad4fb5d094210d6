"""Nodes and server figures through the API."""

from __future__ import annotations

from tests.api_support import Caller
from tests.api_support import assert_problem
from tests.api_support import main_node
from tests.api_support import use
from webpanel.models import Client
from webpanel.models import Node
from webpanel.models import UsageHour
from webpanel.services import accounting
from webpanel.services import sync
from xray.simulator import Simulator

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

"""Services the bot and the API stand on: new UUIDs, stats, top lists, backups."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from flask import Flask

from webpanel.models import Client
from webpanel.models import Node
from webpanel.services import accounting
from webpanel.services import clients as service
from webpanel.services.backup import backup_database
from webpanel.services.stats import server_stats
from webpanel.services.stats import top_clients
from xray.simulator import Simulator


def test_it_gives_a_client_a_new_uuid_and_xray_the_new_one(
    app: Flask, simulator: Simulator
):
    client = service.create_client("fresh")
    old = client.uuid

    service.regenerate_uuid(client)

    assert client.uuid != old
    assert simulator.users()[client.email].uuid == client.uuid


def test_it_revokes_a_subscription_token(app: Flask):
    client = service.create_client("subbed")
    old = client.sub_token

    service.revoke_sub_token(client)

    assert Client.get_by_id(client.id).sub_token not in (old, "")


def test_it_counts_clients_by_status_and_todays_traffic(
    app: Flask, simulator: Simulator
):
    busy = service.create_client("busy")
    service.disable_client(service.create_client("off"))
    simulator.push_traffic(busy.email, uplink=100, downlink=900)
    accounting.poll_node(Node.get())

    stats = server_stats()

    assert stats.clients_by_status["active"] == 1
    assert stats.clients_by_status["disabled"] == 1
    assert stats.clients_by_status["expired"] == 0
    assert stats.traffic_today == 1000 and stats.clients_total == 2


def test_it_ranks_the_busiest_clients(app: Flask, simulator: Simulator):
    clients = [service.create_client(f"c {i}") for i in range(4)]
    for rank, client in enumerate(clients):
        simulator.push_traffic(client.email, downlink=(rank + 1) * 100)
    accounting.poll_node(Node.get())

    top = top_clients(hours=24, limit=3)

    assert [(c.name, n) for c, n in top] == [("c 3", 400), ("c 2", 300), ("c 1", 200)]


def test_it_backs_up_the_live_database(app: Flask, tmp_path: Path):
    service.create_client("kept in the copy")

    copy = backup_database(tmp_path / "backups")

    with closing(sqlite3.connect(copy)) as db:
        names = [row[0] for row in db.execute("select name from client")]
    assert names == ["kept in the copy"]
    assert copy.stat().st_mode & 0o077 == 0

"""Counting traffic: one QueryStats per poll, restart-aware additive deltas."""

from __future__ import annotations

import logging

import pytest
from flask import Flask

from tests.daemons import when_online
from webpanel.models import Client
from webpanel.models import Counter
from webpanel.models import Node
from webpanel.services import accounting
from webpanel.services import clients as service
from webpanel.services import sync
from webpanel.services.accounting import counter_delta
from xray.simulator import Simulator

STRANGER_UUID = "00000000-0000-4000-8000-000000000000"


def usage(client: Client) -> tuple[int, int]:
    fresh = Client.get_by_id(client.id)
    return fresh.uplink, fresh.downlink


@pytest.mark.parametrize(
    ("raw", "last", "restarted", "delta"),
    [
        (150, 100, False, 50),
        (100, 100, False, 0),
        (40, 100, False, 40),
        (300, 100, True, 300),
    ],
)
def test_it_computes_a_delta_that_restarts_with_the_counter(
    raw, last, restarted, delta
):
    assert counter_delta(raw, last, restarted) == delta


def test_it_adds_what_the_counters_grew_by_since_the_last_poll(
    app: Flask, simulator: Simulator
):
    client = service.create_client("alice")
    simulator.push_traffic(client.email, uplink=100, downlink=1000)
    accounting.poll_node(Node.get())
    simulator.push_traffic(client.email, uplink=20, downlink=300)

    result = accounting.poll_node(Node.get())

    assert usage(client) == (120, 1300)
    assert result.counted == 320 and result.clients == 1


def test_it_counts_nothing_twice_when_polled_again_without_traffic(
    app: Flask, simulator: Simulator
):
    client = service.create_client("bob")
    simulator.push_traffic(client.email, downlink=500)

    accounting.poll_node(Node.get())
    accounting.poll_node(Node.get())

    assert usage(client) == (0, 500)


def test_it_counts_1000_then_restart_then_200_as_1200(app: Flask, simulator: Simulator):
    client = service.create_client("carol")
    simulator.push_traffic(client.email, downlink=1000)
    accounting.poll_node(Node.get())

    simulator.restart()
    sync.recover_node(Node.get(), force=True)
    simulator.push_traffic(client.email, downlink=200)
    result = when_online(lambda: accounting.poll_node(Node.get()))

    assert result.online
    assert usage(client) == (0, 1200)


def test_it_counts_a_counter_that_went_back_without_an_uptime_drop(
    app: Flask, simulator: Simulator
):
    client = service.create_client("dave")
    simulator.push_traffic(client.email, downlink=1000)
    accounting.poll_node(Node.get())
    simulator.advance_uptime(3600)
    # Counters that start again while uptime still rises: a reset by someone else.
    sync.gateway(Node.get()).query_stats("user>>>", reset=True)
    simulator.push_traffic(client.email, downlink=300)

    accounting.poll_node(Node.get())

    assert usage(client) == (0, 1300)


def test_it_starts_every_counter_from_zero_after_a_restart(
    app: Flask, simulator: Simulator
):
    quiet = service.create_client("quiet")
    busy = service.create_client("busy")
    simulator.push_traffic(quiet.email, downlink=1000)
    simulator.push_traffic(busy.email, downlink=10)
    accounting.poll_node(Node.get())
    simulator.advance_uptime(600)
    accounting.poll_node(Node.get())

    simulator.restart()
    sync.recover_node(Node.get(), force=True)
    simulator.push_traffic(busy.email, downlink=5)
    when_online(lambda: accounting.poll_node(Node.get()))
    # quiet's counter is recreated later and grows past its old raw value.
    simulator.push_traffic(quiet.email, downlink=1500)
    accounting.poll_node(Node.get())

    assert usage(quiet) == (0, 2500)
    assert usage(busy) == (0, 15)


def test_it_ignores_counters_of_users_it_does_not_know(
    app: Flask, simulator: Simulator, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="webpanel.services.accounting")
    simulator.add_user(sync.User(email="stranger", uuid=STRANGER_UUID))
    simulator.push_traffic("stranger", downlink=999)

    first = accounting.poll_node(Node.get())
    simulator.push_traffic("stranger", downlink=1)
    accounting.poll_node(Node.get())

    assert first.unknown == ["stranger"]
    assert first.counted == 0
    assert caplog.text.count("unknown user 'stranger'") == 1


def test_it_keeps_the_last_raw_values_in_the_database(app: Flask, simulator: Simulator):
    client = service.create_client("erin")
    simulator.push_traffic(client.email, uplink=7, downlink=9)

    accounting.poll_node(Node.get())

    counter = Counter.get()
    assert (counter.email, counter.uplink, counter.downlink) == (client.email, 7, 9)


def test_it_marks_the_node_offline_when_a_poll_fails(app: Flask, simulator: Simulator):
    sync.recover_node(Node.get())
    simulator.stop()

    result = accounting.poll_node(Node.get())

    assert not result.online
    assert Node.get().state == "offline"

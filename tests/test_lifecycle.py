"""Statuses over time: on hold, periodic resets, renewals, the audit log, signals."""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta

import pytest
from flask import Flask

from webpanel.models import AuditEntry
from webpanel.models import Client
from webpanel.models import Node
from webpanel.models import utcnow
from webpanel.services import accounting
from webpanel.services import clients as service
from webpanel.services import lifecycle
from webpanel.services.lifecycle import next_reset
from webpanel.signals import client_changed
from xray.simulator import Simulator

T0 = datetime(2026, 1, 31, 10, 0)


def fresh(client: Client) -> Client:
    return Client.get_by_id(client.id)


@pytest.mark.parametrize(
    ("strategy", "now", "expected"),
    [
        ("day", T0, datetime(2026, 2, 1, 10, 0)),
        ("day", datetime(2026, 2, 5, 11, 0), datetime(2026, 2, 6, 10, 0)),
        ("week", datetime(2026, 2, 7, 10, 0), datetime(2026, 2, 14, 10, 0)),
        ("month", T0, datetime(2026, 2, 28, 10, 0)),  # the 31st, in February
        ("month", datetime(2026, 2, 28, 10, 0), datetime(2026, 3, 31, 10, 0)),
        ("month", datetime(2026, 4, 30, 9, 0), datetime(2026, 4, 30, 10, 0)),
        ("year", T0, datetime(2027, 1, 31, 10, 0)),
        ("none", T0, None),
    ],
)
def test_it_finds_the_next_reset_without_drifting_from_the_anchor(
    strategy, now, expected
):
    assert next_reset(strategy, T0, now) == expected


def test_it_holds_an_on_hold_client_in_xray_until_its_first_traffic(
    app: Flask, simulator: Simulator
):
    client = service.create_client("holder", days=30, on_hold=True)
    assert client.status == "on_hold" and client.expire_at is None
    assert client.email in simulator.users()

    service.enforce_limits()
    assert fresh(client).status == "on_hold"

    simulator.push_traffic(client.email, downlink=10)
    accounting.poll_node(Node.get())
    service.enforce_limits()

    started = fresh(client)
    assert started.status == "active"
    expected = started.last_traffic_at + timedelta(days=30)
    assert abs(started.expire_at - expected) < timedelta(seconds=1)


def test_it_refuses_on_hold_without_days(app: Flask):
    with pytest.raises(service.ClientError) as caught:
        service.create_client("no days", on_hold=True)

    assert "days" in caught.value.errors
    assert Client.select().count() == 0


def test_it_resets_the_periods_usage_and_re_activates_a_limited_client(
    app: Flask, simulator: Simulator
):
    client = service.create_client("monthly", data_limit=1000, reset_strategy="month")
    Client.update(downlink=2000, used_total=2000).where(
        Client.id == client.id
    ).execute()
    service.enforce_limits()
    assert fresh(client).status == "limited"
    assert client.email not in simulator.users()

    service.enforce_limits(now=fresh(client).next_reset_at)

    after = fresh(client)
    assert (after.status, after.uplink, after.downlink) == ("active", 0, 0)
    assert after.used_total == 2000
    assert after.next_reset_at > client.next_reset_at
    assert client.email in simulator.users()


def test_it_never_re_enables_a_disabled_client_on_reset_or_renewal(
    app: Flask, simulator: Simulator
):
    client = service.create_client("off", data_limit=10, days=1, reset_strategy="day")
    service.disable_client(client)
    Client.update(downlink=100).where(Client.id == client.id).execute()

    service.enforce_limits(now=utcnow() + timedelta(days=3))
    service.reset_usage(fresh(client))
    service.extend_client(fresh(client), 30)

    assert fresh(client).status == "disabled"
    assert client.email not in simulator.users()


def test_it_extends_an_expired_client_from_now_and_brings_it_back(
    app: Flask, simulator: Simulator
):
    client = service.create_client("late", days=1)
    service.enforce_limits(now=client.expire_at)
    assert fresh(client).status == "expired"

    service.extend_client(fresh(client), 10)

    after = fresh(client)
    assert after.status == "active"
    assert after.expire_at > utcnow() + timedelta(days=9, hours=23)
    assert client.email in simulator.users()


def test_it_writes_every_change_to_the_audit_log_with_its_actor(app: Flask):
    client = service.create_client("audited", data_limit=5, actor="admin:root")
    service.disable_client(client, actor="cli")
    service.enable_client(client, actor="bot:42")
    Client.update(downlink=10).where(Client.id == client.id).execute()
    service.enforce_limits()

    entries = [
        (e.event, e.actor, e.detail)
        for e in AuditEntry.select().order_by(AuditEntry.id)
    ]
    assert entries[0][:2] == ("created", "admin:root")
    assert entries[1:] == [
        ("disabled", "cli", "active → disabled"),
        ("enabled", "bot:42", "disabled → active"),
        ("limited", "enforcement", "active → limited"),
    ]


def test_it_emits_a_signal_for_each_change_of_status(app: Flask):
    seen = []

    def listen(sender: Client, **kwargs) -> None:
        seen.append((sender.name, kwargs["event"], kwargs["old_status"], sender.status))

    client_changed.connect(listen)
    try:
        client = service.create_client("signalled", days=1)
        service.enforce_limits(now=client.expire_at)
    finally:
        client_changed.disconnect(listen)

    assert seen == [
        ("signalled", "created", None, "active"),
        ("signalled", "expired", "active", "expired"),
    ]


def test_it_selects_only_the_clients_that_change(app: Flask):
    for i in range(20):
        service.create_client(f"steady {i}", data_limit=10**9, days=30)
    due = service.create_client("due", days=1)

    changes = lifecycle.enforce(now=due.expire_at)

    assert [c.client.name for c in changes] == ["due"]

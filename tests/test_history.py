"""Usage history: hourly and daily buckets, added to by polls, pruned by age."""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient

from webpanel.charts import bar_chart
from webpanel.models import Node
from webpanel.models import UsageDay
from webpanel.models import UsageHour
from webpanel.models import utcnow
from webpanel.services import accounting
from webpanel.services import clients as service
from webpanel.services import history
from xray.simulator import Simulator


def test_it_adds_each_polls_deltas_to_the_hour_and_the_day(
    app: Flask, simulator: Simulator
):
    client = service.create_client("alice")
    simulator.push_traffic(client.email, uplink=10, downlink=100)
    accounting.poll_node(Node.get())
    simulator.push_traffic(client.email, uplink=5, downlink=50)
    accounting.poll_node(Node.get())

    hours = history.hourly(client.id, 24)
    days = history.daily(client.id, 30)

    assert len(hours) == 24 and len(days) == 30
    assert hours[-1][1:] == (15, 150) and days[-1][1:] == (15, 150)
    assert sum(up + down for _, up, down in hours) == 165
    assert UsageHour.select().count() == 1 and UsageDay.select().count() == 0


def test_it_rolls_closed_hours_up_into_days_without_counting_twice(
    app: Flask, simulator: Simulator
):
    client = service.create_client("dora")
    now = datetime(2026, 6, 1, 22, 30)
    node = Node.get()
    history.roll_up(now - timedelta(days=1))  # the first roll-up sets the start
    history.add(node, [(client.id, 1, 10)], now - timedelta(hours=1))
    history.add(node, [(client.id, 2, 20)], now)

    rolled = history.roll_up(now)
    again = history.roll_up(now)

    assert rolled == 24 and again == 0
    assert UsageDay.select().count() == 1
    assert history.daily(client.id, 2, now=now)[-1][1:] == (3, 30)
    assert history.per_node(client.id) == [("main", 3, 30)]
    history.roll_up(now + timedelta(hours=2))
    assert history.daily(client.id, 2, now=now)[-1][1:] == (3, 30)
    assert history.per_node(client.id) == [("main", 3, 30)]


def test_it_keeps_separate_buckets_per_hour(app: Flask):
    client = service.create_client("bob")
    node = Node.get()
    now = utcnow().replace(minute=30)
    history.add(node, [(client.id, 1, 2)], now - timedelta(hours=2))
    history.add(node, [(client.id, 3, 4)], now)

    hours = history.hourly(client.id, 3, now=now)

    assert [(up, down) for _, up, down in hours] == [(1, 2), (0, 0), (3, 4)]


def test_it_prunes_hours_and_days_past_their_keep_time(app: Flask):
    client = service.create_client("carol")
    node = Node.get()
    now = datetime(2026, 6, 1, 12, 0)
    history.roll_up(now - timedelta(days=501))
    history.add(node, [(client.id, 1, 1)], now - timedelta(days=20))
    history.add(node, [(client.id, 1, 1)], now - timedelta(days=500))
    history.add(node, [(client.id, 1, 1)], now)
    history.roll_up(now)

    gone = history.prune(hourly_days=14, daily_days=400, now=now)

    assert gone == 3  # two old hours, one old day
    assert UsageHour.select().count() == 1
    assert UsageDay.select().count() == 1  # the current hour is not rolled up yet


def test_it_draws_bars_scaled_to_the_busiest_slot():
    start = datetime(2026, 1, 1)
    series = [(start + timedelta(hours=i), 0, n) for i, n in enumerate([0, 50, 100])]

    chart = bar_chart(series, "%H:00")

    assert [bar.height for bar in chart.bars] == [0.0, 60.0, 120.0]
    assert chart.total == 150 and chart.peak == 100
    assert chart.bars[2].title == "02:00: 100 B"
    assert (chart.first, chart.last) == ("00:00", "02:00")


def test_it_shows_the_usage_chart_on_the_client_page(
    signed_in: FlaskClient, simulator: Simulator
):
    alice = service.create_client("alice")
    simulator.push_traffic(alice.email, downlink=2048)
    accounting.poll_node(Node.get())

    html = signed_in.get(f"/clients/{alice.id}").get_data(as_text=True)

    assert "Last 24 hours: 2.00 KB" in html
    assert html.count('class="bar"') == 24 + 30

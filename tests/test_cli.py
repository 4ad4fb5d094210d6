"""The command line that admins script their servers with (DESIGN.md §8)."""

from __future__ import annotations

import json
import time

from flask import Flask
from flask.testing import FlaskCliRunner

from webpanel.models import Admin
from webpanel.models import Client
from xray.simulator import Simulator

JSON_FIELDS = {
    "name",
    "status",
    "uuid",
    "uplink",
    "downlink",
    "limit",
    "expiry",
    "link",
}


def test_it_adds_a_client_with_limits_and_prints_json(
    runner: FlaskCliRunner, simulator: Simulator
):
    result = runner.invoke(
        args=["client", "add", "Алиса", "--limit-gb", "2", "--days", "7", "--json"]
    )

    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert JSON_FIELDS <= set(shown)
    assert shown["name"] == "Алиса" and shown["status"] == "active"
    assert shown["limit"] == 2 * 1024**3
    assert shown["expiry"].endswith("Z")
    assert shown["link"].startswith(f"vless://{shown['uuid']}@")
    assert shown["email"] in simulator.users()


def test_it_refuses_bad_input_with_a_message_and_no_traceback(runner: FlaskCliRunner):
    result = runner.invoke(args=["client", "add", "x", "--limit-gb", "lots"])

    assert result.exit_code == 1
    assert "Data limit must be a number of GB." in result.output
    assert "Traceback" not in result.output
    assert Client.select().count() == 0


def test_it_lists_and_shows_clients_as_json(runner: FlaskCliRunner):
    runner.invoke(args=["client", "add", "one"])
    runner.invoke(args=["client", "add", "two"])

    listed = json.loads(runner.invoke(args=["client", "list", "--json"]).output)
    shown = json.loads(runner.invoke(args=["client", "show", "TWO", "--json"]).output)

    assert [c["name"] for c in listed] == ["one", "two"]
    assert all(JSON_FIELDS <= set(c) for c in listed)
    assert shown["name"] == "two"


def test_it_prints_a_clients_link(runner: FlaskCliRunner):
    runner.invoke(args=["client", "add", "linky"])

    result = runner.invoke(args=["client", "link", "linky"])

    assert result.exit_code == 0
    assert result.output.startswith("vless://") and result.output.endswith("#linky\n")


def test_it_disables_enables_and_deletes_by_name(
    runner: FlaskCliRunner, simulator: Simulator
):
    runner.invoke(args=["client", "add", "carol"])
    email = Client.get().email

    assert "disabled" in runner.invoke(args=["client", "disable", "carol"]).output
    assert email not in simulator.users()
    assert "active" in runner.invoke(args=["client", "enable", "carol"]).output
    assert email in simulator.users()
    assert "deleted" in runner.invoke(args=["client", "delete", "carol"]).output
    assert Client.select().count() == 0 and simulator.users() == {}


def test_it_says_which_client_it_could_not_find(runner: FlaskCliRunner):
    result = runner.invoke(args=["client", "show", "ghost"])

    assert result.exit_code == 1
    assert "no client named 'ghost'" in result.output


def test_it_makes_an_admin_with_the_password_from_stdin(runner: FlaskCliRunner):
    result = runner.invoke(args=["create-admin", "root"], input="long enough pw\n")

    assert result.exit_code == 0, result.output
    assert Admin.get().username == "root"


def test_it_refuses_a_short_admin_password(runner: FlaskCliRunner):
    result = runner.invoke(args=["create-admin", "root"], input="short\n")

    assert result.exit_code == 1
    assert "at least 8 characters" in result.output
    assert Admin.select().count() == 0


def test_it_syncs_and_polls_on_demand(runner: FlaskCliRunner, simulator: Simulator):
    runner.invoke(args=["client", "add", "dave"])
    email = Client.get().email
    simulator.restart()

    synced = runner.invoke(args=["sync"])
    for _ in range(50):  # the channel reconnects about a second after a restart
        if synced.exit_code == 0:
            break
        time.sleep(0.2)
        synced = runner.invoke(args=["sync"])
    simulator.push_traffic(email, downlink=4096)
    polled = runner.invoke(args=["poll"])

    assert synced.exit_code == 0, synced.output
    assert "main: in sync, 1 added" in synced.output
    assert email in simulator.users()
    assert "4096 bytes counted for 1 clients" in polled.output
    assert Client.get().downlink == 4096


def test_it_exits_non_zero_when_xray_is_unreachable(
    runner: FlaskCliRunner, simulator: Simulator, app: Flask
):
    simulator.stop()

    result = runner.invoke(args=["sync"])

    assert result.exit_code == 1
    assert "main: unreachable" in result.output


def test_it_adds_an_on_hold_client_with_a_monthly_reset(runner: FlaskCliRunner):
    result = runner.invoke(
        args=[
            "client",
            "add",
            "hold",
            "--days",
            "30",
            "--on-hold",
            "--reset",
            "month",
            "--json",
        ]
    )

    shown = json.loads(result.output)
    assert shown["status"] == "on_hold" and shown["on_hold_days"] == 30
    assert shown["expiry"] is None
    assert shown["reset_strategy"] == "month" and shown["next_reset"].endswith("Z")


def test_it_refuses_an_unknown_reset_strategy(runner: FlaskCliRunner):
    result = runner.invoke(args=["client", "add", "x", "--reset", "hourly"])

    assert result.exit_code == 1
    assert "Reset must be one of: none, day, week, month, year." in result.output
    assert Client.select().count() == 0


def test_it_resets_and_extends_a_client(runner: FlaskCliRunner, simulator: Simulator):
    runner.invoke(args=["client", "add", "eve", "--limit-gb", "1", "--days", "1"])
    Client.update(downlink=2 * 1024**3).execute()
    runner.invoke(args=["poll"])
    assert Client.get().status == "limited"

    reset = runner.invoke(args=["client", "reset", "eve"])
    extended = runner.invoke(args=["client", "extend", "eve", "30"])

    assert "usage reset, active" in reset.output
    assert "active, expires" in extended.output
    assert Client.get().email in simulator.users()
    bad = runner.invoke(args=["client", "extend", "eve", "soon"])
    assert bad.exit_code == 1 and "Days must be a whole number" in bad.output

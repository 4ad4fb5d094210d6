"""The plugin system: loaded by name, set up with a context, crashes contained."""

from __future__ import annotations

import time

from flask.testing import FlaskClient

from tests.sample_plugins import recorder
from webpanel.models import db
from webpanel.runtime import start_runtime
from webpanel.services import clients as service
from xray.simulator import Simulator

PLUGINS = "tests.sample_plugins.recorder,tests.sample_plugins.broken,no_such_plugin"


def wait_for(check, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_it_loads_plugins_with_the_runtime_and_keeps_going_past_broken_ones(
    make_app, simulator: Simulator
):
    app = make_app(simulator.address, PLUGINS=PLUGINS, RECORDER_TOKEN="fake-token-1234")
    with app.app_context(), db.connection_context():
        start_runtime(app)
        states = {s.name: s for s in app.extensions["infinity.plugins"]}
        recorder.seen.clear()
        service.create_client("watched")

    assert states["tests.sample_plugins.recorder"].status == "running"
    assert states["tests.sample_plugins.broken"].status == "failed"
    assert "broken on purpose" in states["tests.sample_plugins.broken"].error
    assert states["no_such_plugin"].status == "failed"
    assert recorder.seen == [("watched", "created")]
    masked = states["tests.sample_plugins.recorder"].settings["RECORDER_TOKEN"]
    assert masked != "fake-token-1234" and "1234" not in masked


def test_it_shows_a_crashed_plugin_as_failed_and_the_panel_goes_on(
    make_app, simulator: Simulator
):
    app = make_app(
        simulator.address, PLUGINS="tests.sample_plugins.recorder", RECORDER_CRASH="1"
    )
    with app.app_context(), db.connection_context():
        start_runtime(app)
        state = app.extensions["infinity.plugins"][0]

        assert wait_for(lambda: state.status == "failed")
        assert "the recorder fell over" in state.error
        assert service.create_client("still works").email in simulator.users()


def test_it_stops_plugins_with_the_runtime(make_app, simulator: Simulator):
    app = make_app(simulator.address, PLUGINS="tests.sample_plugins.recorder")
    with app.app_context(), db.connection_context():
        runtime = start_runtime(app)
        state = app.extensions["infinity.plugins"][0]
        runtime.stop()
        recorder.seen.clear()
        service.create_client("after stop")

    assert state.status == "stopped"
    assert recorder.seen == []


def test_it_loads_no_plugin_in_a_process_without_the_jobs(
    make_app, simulator: Simulator
):
    first = make_app(simulator.address, PLUGINS="tests.sample_plugins.recorder")
    second = make_app(simulator.address, PLUGINS="tests.sample_plugins.recorder")
    with first.app_context(), db.connection_context():
        start_runtime(first)
        assert start_runtime(second) is None

    assert "infinity.plugins" not in second.extensions


def test_it_shows_plugins_jobs_and_nodes_on_the_status_page(
    make_app, simulator: Simulator
):
    from tests.conftest import PASSWORD
    from tests.conftest import csrf_from
    from webpanel.auth import create_admin

    app = make_app(
        simulator.address, PLUGINS=PLUGINS, RECORDER_TOKEN="123456:fake-token-abcdef"
    )
    with app.app_context(), db.connection_context():
        start_runtime(app)
        create_admin("root", PASSWORD)
        client: FlaskClient = app.test_client()
        token = csrf_from(client.get("/login").get_data(as_text=True))
        client.post(
            "/login",
            data={"username": "root", "password": PASSWORD, "csrf_token": token},
        )

        html = client.get("/-/status").get_data(as_text=True)

    assert 'data-plugin="tests.sample_plugins.recorder"' in html
    assert "broken on purpose" in html
    assert 'data-job="poll"' in html and 'data-job="recover"' in html
    assert "fake-token-abcdef" not in html and "RECORDER_TOKEN=" in html

"""Fixtures: a fresh app per test, on a fresh database, next to a simulator."""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from webpanel import create_app
from webpanel.auth import create_admin
from webpanel.models import db
from webpanel.nodes import close_gateways
from xray.simulator import Simulator

pytest_plugins = ["tests.daemons", "tests.api_support"]

FAKE_PUBLIC_KEY = "Z84J2IelR9ch3k8VtlVhhs5ycBUlXA7wHBWcBrjqnAw"


def panel_env(api: str, **extra: str) -> dict[str, str]:
    """Settings for a test app: obvious fakes, loopback only."""
    env = {
        "SECRET_KEY": "test-secret-key-not-for-production",
        "XRAY_API": api,
        "PUBLIC_HOST": "vpn.example.com",
        "PUBLIC_PORT": "8443",
        "REALITY_SNI": "www.example.com",
        "REALITY_PUBLIC_KEY": FAKE_PUBLIC_KEY,
        "REALITY_SHORT_ID": "6ba85179e30d4fc2",
        "XRAY_TIMEOUT": "2",
    }
    env.update(extra)
    return env


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build apps on one instance folder; each call may pass other settings."""

    made: list[Flask] = []

    def make(api: str, **extra: str) -> Flask:
        app = create_app(panel_env(api, **extra), instance_path=tmp_path / "instance")
        app.config["TESTING"] = True
        made.append(app)
        return app

    yield make
    for app in made:
        runtime = app.extensions.get("infinity.runtime")
        if runtime is not None:
            runtime.stop()
    close_gateways()
    if not db.is_closed():
        db.close()


@pytest.fixture
def app(make_app: Callable[..., Flask], simulator: Simulator) -> Iterator[Flask]:
    """An app whose node is the simulator; an app context and connection are open."""
    app = make_app(simulator.address)
    with app.app_context(), db.connection_context():
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


PASSWORD = "correct horse battery"


@pytest.fixture
def admin(app: Flask):
    return create_admin("root", PASSWORD)


@pytest.fixture
def signed_in(client: FlaskClient, admin) -> FlaskClient:
    page = client.get("/login")
    token = csrf_from(page.get_data(as_text=True))
    response = client.post(
        "/login", data={"username": "root", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 302
    return client


def csrf_from(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def htmx_post(client: FlaskClient, url: str, data: dict | None = None):
    token = csrf_from(client.get("/clients").get_data(as_text=True))
    headers = {"HX-Request": "true", "X-CSRFToken": token}
    return client.post(url, data=data or {}, headers=headers)

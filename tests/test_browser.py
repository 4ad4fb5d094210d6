"""The panel in headless Chromium: sign in, make a client, use its page, sign out.

The app runs on a real loopback server in a thread, next to the simulator,
and the browser is Debian's chromium; nothing is downloaded.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from playwright.sync_api import Browser
from playwright.sync_api import ConsoleMessage
from playwright.sync_api import Page
from playwright.sync_api import expect
from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

from tests.daemons import require
from webpanel.auth import create_admin
from webpanel.models import Client
from webpanel.models import db
from webpanel.services.clients import create_client
from xray.simulator import Simulator

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FAILED_LOAD = re.compile(r"Failed to load resource: .* status of (\d+)")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

ADMIN = "admin"
PASSWORD = "correct horse battery"
NAME = "Алиса 🦊"


@pytest.fixture(autouse=True)
def _chromium_needed() -> None:
    require(CHROMIUM.exists(), f"{CHROMIUM} is not installed (make test installs it)")


@dataclass
class Panel:
    """A panel served on loopback, with a way to look behind its pages."""

    url: str
    app: Flask
    simulator: Simulator

    def clients(self) -> list[Client]:
        with self.app.app_context(), db.connection_context():
            return list(Client.select().order_by(Client.id))

    def add_client(self, name: str) -> Client:
        with self.app.app_context(), db.connection_context():
            return create_client(name, actor="test")


@dataclass
class Console:
    """What the page complained about.

    `errors` holds console errors (CSP violations arrive here too, from the
    browser itself) and uncaught exceptions; `failed_loads` holds the
    answers of 400 and up that the browser logged, as (path, status).
    """

    errors: list[str] = field(default_factory=list)
    failed_loads: list[tuple[str, int]] = field(default_factory=list)

    def listen(self, page: Page) -> None:
        page.on("console", self._message)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def _message(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        status = FAILED_LOAD.match(message.text)
        if status is None:
            self.errors.append(message.text)
            return
        path = urlsplit(message.location["url"]).path
        # The browser asks for /favicon.ico on its own; the page did not.
        if path != "/favicon.ico":
            self.failed_loads.append((path, int(status[1])))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def panel(make_app: Callable[..., Flask], simulator: Simulator) -> Iterator[Panel]:
    """The app on a free loopback port, with one admin and no clients."""
    app = make_app(simulator.address)
    with app.app_context(), db.connection_context():
        create_admin(ADMIN, PASSWORD)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="panel", daemon=True)
    thread.start()
    yield Panel(f"http://127.0.0.1:{server.server_port}", app, simulator)
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def console(page: Page) -> Console:
    console = Console()
    console.listen(page)
    return console


def sign_in(
    page: Page, panel: Panel, password: str = PASSWORD, username: str = ADMIN
) -> None:
    page.goto(f"{panel.url}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_it_makes_a_client_shows_its_link_disables_it_and_signs_out(
    page: Page, panel: Panel, console: Console
) -> None:
    sign_in(page, panel)
    expect(page).to_have_url(f"{panel.url}/clients")

    form = page.locator("#create-form")
    form.locator("[name=name]").fill(NAME)
    form.locator("[name=limit_gb]").fill("5")
    form.locator("[name=days]").fill("30")
    with page.expect_response(lambda r: "/qr.svg" in r.url) as qr:
        form.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/clients/\d+$"))
    expect(page.locator("#client-card h1")).to_have_text(NAME)

    # The simulator holds exactly the new client, and the link carries its UUID.
    (client,) = panel.clients()
    users = panel.simulator.users()
    assert list(users) == [client.email]
    link = page.locator("textarea.link").input_value()
    assert link.startswith("vless://")
    assert users[client.email].uuid in link

    # The QR code is an SVG the browser could draw.
    assert qr.value.status == 200
    assert qr.value.headers["content-type"].split(";")[0] == "image/svg+xml"
    page.wait_for_function(
        "() => document.querySelector('img.qr').complete"
        " && document.querySelector('img.qr').naturalWidth > 0"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "client-page.png", full_page=True)

    # Disable swaps the card in place: a full reload would lose the marker.
    status = page.locator("#client-card .status").first
    expect(status).to_have_text("active")
    page.evaluate("window.notReloaded = true")
    page.get_by_role("button", name="Disable").click()
    expect(status).to_have_text("disabled")
    expect(page.get_by_role("button", name="Enable")).to_be_visible()
    assert page.evaluate("window.notReloaded") is True
    assert panel.simulator.users() == {}

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{panel.url}/login")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.goto(f"{panel.url}/clients")
    expect(page).to_have_url(re.compile(r"/login\?next=(/|%2F)clients$"))
    assert console.errors == []
    assert console.failed_loads == []


def test_it_answers_a_wrong_password_and_a_stranger_with_the_same_message(
    page: Page, panel: Panel, console: Console
) -> None:
    for username, password in ((ADMIN, "not the password"), ("nobody", PASSWORD)):
        sign_in(page, panel, password=password, username=username)

        expect(page).to_have_url(f"{panel.url}/login")
        expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
        expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
    assert console.errors == []
    assert console.failed_loads == [("/login", 422)] * 2


def test_it_shows_an_inline_error_for_an_empty_name_and_saves_nothing(
    page: Page, panel: Panel, console: Console
) -> None:
    panel.add_client("Боб")
    before = panel.simulator.users()
    sign_in(page, panel)
    rows = page.locator("#clients-table tbody tr")
    expect(rows).to_have_count(1)

    form = page.locator("#create-form")
    form.locator("[name=limit_gb]").fill("5")
    form.get_by_role("button", name="Create").click()

    expect(form.get_by_role("alert")).to_have_text("Name is required.")
    expect(form.locator("[name=name]")).to_have_attribute("aria-invalid", "true")
    expect(form.locator("[name=limit_gb]")).to_have_value("5")
    expect(page).to_have_url(f"{panel.url}/clients")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Боб")
    assert [c.name for c in panel.clients()] == ["Боб"]
    assert panel.simulator.users() == before
    assert console.errors == []
    assert console.failed_loads == [("/clients", 422)]


def test_it_deletes_a_client_only_once_the_admin_confirms(
    page: Page, panel: Panel, console: Console
) -> None:
    client = panel.add_client("Боб")
    sign_in(page, panel)
    page.goto(f"{panel.url}/clients/{client.id}")
    questions: list[str] = []
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)

    # Saying no to the confirm sends nothing.
    page.once("dialog", lambda d: (questions.append(d.message), d.dismiss()))
    page.get_by_role("button", name="Delete").click()
    assert questions == ["Delete Боб? This cannot be undone."]
    assert posts == []

    page.once("dialog", lambda d: (questions.append(d.message), d.accept()))
    page.get_by_role("button", name="Delete").click()
    expect(page).to_have_url(f"{panel.url}/clients")
    expect(page.locator("#clients-table")).to_contain_text("No clients yet")
    assert len(questions) == 2
    assert posts == [f"{panel.url}/clients/{client.id}/delete"]
    assert panel.clients() == []
    assert panel.simulator.users() == {}
    assert console.errors == []
    assert console.failed_loads == []


def test_it_hears_content_security_policy_violations(
    page: Page, panel: Panel, console: Console
) -> None:
    # The console checks above are only worth something if a violation shows up.
    page.goto(f"{panel.url}/login")
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.ran = true'; document.body.append(s); }"
    )

    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert page.evaluate("window.ran") is None
    assert any("Content Security Policy" in error for error in console.errors)


def test_it_makes_an_api_key_that_a_script_can_use_but_a_session_cannot(
    page: Page, panel: Panel, console: Console
) -> None:
    sign_in(page, panel)
    page.get_by_role("link", name="API keys").click()
    expect(page).to_have_url(f"{panel.url}/api-keys")
    page.get_by_label("Name").fill("shop")
    page.get_by_label("Scope").select_option("write")
    page.get_by_role("button", name="Make key").click()
    key = page.get_by_label("The new API key").input_value()
    assert key.startswith("inf_")

    # The signed-in browser, cookies and all, is refused without the key.
    call = """async ([key, body]) => {
        const headers = {"Content-Type": "application/json"};
        if (key) headers["Authorization"] = "Bearer " + key;
        const r = await fetch("/api/v1/clients", {method: "POST", headers, body});
        return [r.status, r.headers.get("content-type"), await r.json()];
    }"""
    body = '{"name": "Из API", "limit": 5368709120, "days": 30}'
    status, kind, problem = page.evaluate(call, [None, body])
    assert (status, kind) == (401, "application/problem+json")
    assert "Authorization: Bearer" in problem["detail"]
    assert panel.clients() == []

    status, _, made = page.evaluate(call, [key, body])
    assert status == 201
    assert made["name"] == "Из API"
    assert [c.name for c in panel.clients()] == ["Из API"]
    assert made["email"] in panel.simulator.users()

    # The key list shows its use; the docs page renders under the CSP.
    page.reload()
    row = page.locator('tr[data-key="shop"]')
    expect(row).not_to_contain_text("never")
    expect(page.get_by_label("The new API key")).to_have_count(0)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "api-keys-page.png", full_page=True)

    # Revoking asks first; dismissed, the key stays; accepted, it stops.
    page.once("dialog", lambda dialog: dialog.dismiss())
    row.get_by_role("button", name="Revoke").click()
    expect(row).not_to_contain_text("revoked")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(row).to_contain_text("revoked")
    status, _, _ = page.evaluate(call, [key, '{"name": "late"}'])
    assert status == 401

    page.get_by_role("link", name="JSON API").click()
    expect(page.locator("#create_client")).to_contain_text("/clients")
    page.screenshot(path=ARTIFACTS / "api-docs-page.png", full_page=True)
    assert console.errors == []
    assert console.failed_loads == [("/api/v1/clients", 401)] * 2


def test_it_shows_a_client_their_subscription_page_with_working_qr_codes(
    page: Page, panel: Panel, console: Console
) -> None:
    client = panel.add_client("Ира 🚀")
    page.goto(f"{panel.url}/sub/{client.sub_token}")

    expect(page.locator("h1")).to_have_text("Ира 🚀")
    for image in ("img.sub-qr", ".node-link img.qr"):
        page.wait_for_function(
            f"() => document.querySelector('{image}').complete"
            f" && document.querySelector('{image}').naturalWidth > 0"
        )
    buttons = page.locator(".actions a")
    assert "streisand://import/" in buttons.nth(5).get_attribute("href")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "subscription-page.png", full_page=True)
    assert console.errors == []
    assert console.failed_loads == []

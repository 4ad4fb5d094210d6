"""The admin's pages, through Flask's test client (the browser test is separate)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.conftest import PASSWORD
from tests.conftest import csrf_from
from tests.conftest import htmx_post
from webpanel.models import Client
from webpanel.services import clients as service
from xray.simulator import Simulator


def test_it_sends_a_stranger_to_the_sign_in_page(client: FlaskClient):
    response = client.get("/clients")

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_it_asks_htmx_to_reload_when_the_session_expired(client: FlaskClient):
    response = client.get("/nodes/banner", headers={"HX-Request": "true"})

    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")


@pytest.mark.parametrize(
    ("username", "password"), [("root", "wrong password"), ("nobody", PASSWORD)]
)
def test_it_gives_the_same_message_for_any_wrong_login(
    client: FlaskClient,
    admin,
    username: str,
    password: str,
):
    token = csrf_from(client.get("/login").get_data(as_text=True))

    response = client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )

    assert response.status_code == 422
    assert "Wrong username or password." in response.get_data(as_text=True)
    assert client.get("/clients").status_code == 302


def test_it_refuses_a_form_without_its_csrf_token(signed_in: FlaskClient):
    response = signed_in.post("/clients", data={"name": "no token"})

    assert response.status_code == 400
    assert Client.select().count() == 0


def test_it_creates_a_client_and_shows_its_link_and_qr(
    signed_in: FlaskClient, simulator: Simulator
):
    response = htmx_post(signed_in, "/clients", {"name": "Алиса 🦊", "limit_gb": "5"})

    assert response.status_code == 201
    client = Client.get()
    assert response.headers["HX-Redirect"] == f"/clients/{client.id}"
    page = signed_in.get(f"/clients/{client.id}").get_data(as_text=True)
    assert f"vless://{client.uuid}@vpn.example.com:8443?" in page
    assert "%D0%90%D0%BB%D0%B8%D1%81%D0%B0%20%F0%9F%A6%8A" in page
    qr = signed_in.get(f"/clients/{client.id}/qr.svg")
    assert qr.status_code == 200 and qr.mimetype == "image/svg+xml"
    assert b"<svg" in qr.data
    assert client.email in simulator.users()


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"name": ""}, "Name is required."),
        ({"name": "x", "limit_gb": "abc"}, "Data limit must be a number of GB."),
        ({"name": "x", "limit_gb": "-5"}, "Data limit must be more than 0"),
        ({"name": "x", "days": "soon"}, "Days must be a whole number"),
    ],
)
def test_it_shows_form_errors_in_place_and_saves_nothing(
    signed_in: FlaskClient, simulator: Simulator, form: dict, field: str
):
    response = htmx_post(signed_in, "/clients", form)

    assert response.status_code == 422
    assert field in response.get_data(as_text=True)
    assert Client.select().count() == 0
    assert simulator.users() == {}


def test_it_refuses_a_duplicate_name_in_the_form(signed_in: FlaskClient):
    service.create_client("Bob")

    response = htmx_post(signed_in, "/clients", {"name": "BOB"})

    assert response.status_code == 422
    assert "already exists" in response.get_data(as_text=True)
    assert Client.select().count() == 1


def test_it_disables_and_enables_a_client_through_htmx(
    signed_in: FlaskClient, simulator: Simulator
):
    client = service.create_client("carol")

    off = htmx_post(signed_in, f"/clients/{client.id}/disable")
    assert off.status_code == 200 and "status-disabled" in off.get_data(as_text=True)
    assert client.email not in simulator.users()

    on = htmx_post(signed_in, f"/clients/{client.id}/enable")
    assert "status-active" in on.get_data(as_text=True)
    assert client.email in simulator.users()


def test_it_deletes_a_client_and_sends_htmx_back_to_the_list(
    signed_in: FlaskClient, simulator: Simulator
):
    client = service.create_client("dave")

    response = htmx_post(signed_in, f"/clients/{client.id}/delete")

    assert response.headers["HX-Redirect"] == "/clients"
    assert Client.select().count() == 0 and simulator.users() == {}


def test_it_saves_a_client_while_xray_is_down_and_says_it_is_pending(
    signed_in: FlaskClient, simulator: Simulator
):
    simulator.stop()

    response = htmx_post(signed_in, "/clients", {"name": "offline"})

    assert response.status_code == 201
    client = Client.get()
    page = signed_in.get(f"/clients/{client.id}").get_data(as_text=True)
    assert "not yet applied in Xray" in page
    assert "offline: no daemon answers there" in page


def test_it_shows_the_node_online_in_the_banner(signed_in: FlaskClient):
    from webpanel.models import Node
    from webpanel.services import sync

    sync.recover_node(Node.get())

    banner = signed_in.get("/nodes/banner").get_data(as_text=True)
    assert 'data-node-state="online"' in banner


def test_it_answers_unknown_clients_with_404_not_500(signed_in: FlaskClient):
    assert signed_in.get("/clients/999").status_code == 404
    assert signed_in.get("/clients/999/qr.svg").status_code == 404


def test_it_escapes_names_on_every_page(signed_in: FlaskClient):
    client = service.create_client("<script>alert(1)</script>")

    html = signed_in.get("/clients").get_data(as_text=True)
    html += signed_in.get(f"/clients/{client.id}").get_data(as_text=True)

    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;" in html


def test_it_sets_a_strict_content_security_policy(signed_in: FlaskClient):
    response = signed_in.get("/clients")

    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "HX-Request" in response.headers["Vary"]


def test_it_signs_out(signed_in: FlaskClient):
    token = csrf_from(signed_in.get("/clients").get_data(as_text=True))

    signed_in.post("/logout", data={"csrf_token": token})

    assert signed_in.get("/clients").status_code == 302


def test_it_makes_the_first_admin_through_the_one_time_link(client: FlaskClient):
    from webpanel.auth import setup_token

    token = setup_token()
    page = client.get(f"/setup/{token}")
    form = {
        "username": "first",
        "password": "long enough",
        "password2": "long enough",
        "csrf_token": csrf_from(page.get_data(as_text=True)),
    }

    response = client.post(f"/setup/{token}", data=form)

    assert response.status_code == 302
    assert client.get(f"/setup/{token}").status_code == 404
    assert client.get("/clients").status_code == 200


def test_it_hides_the_setup_page_behind_the_right_token(client: FlaskClient):
    from webpanel.auth import setup_token

    setup_token()

    assert client.get("/setup/guess").status_code == 404


def test_it_edits_a_clients_name_and_limits_in_place(
    signed_in: FlaskClient, simulator: Simulator
):
    client = service.create_client("erin", data_limit=5 * 1024**3, days=10)
    page = signed_in.get(f"/clients/{client.id}").get_data(as_text=True)
    assert 'name="limit_gb" value="5"' in page

    response = htmx_post(
        signed_in,
        f"/clients/{client.id}/edit",
        {"name": "Erin B", "limit_gb": "1.5", "expire_on": "2030-06-30"},
    )

    assert response.status_code == 200
    saved = Client.get_by_id(client.id)
    assert saved.name == "Erin B" and saved.data_limit == int(1.5 * 1024**3)
    assert saved.expire_at.isoformat() == "2030-07-01T00:00:00"
    html = response.get_data(as_text=True)
    assert 'value="2030-06-30"' in html and 'value="1.5"' in html


def test_it_shows_edit_errors_in_place_and_keeps_the_saved_client(
    signed_in: FlaskClient,
):
    client = service.create_client("fay", data_limit=1024**3)

    response = htmx_post(
        signed_in, f"/clients/{client.id}/edit", {"name": "fay", "limit_gb": "lots"}
    )

    assert response.status_code == 422
    assert "Data limit must be a number of GB." in response.get_data(as_text=True)
    assert Client.get_by_id(client.id).data_limit == 1024**3


def test_it_creates_an_on_hold_client_with_a_weekly_reset_from_the_form(
    signed_in: FlaskClient,
):
    form = {"name": "hold", "days": "30", "on_hold": "on", "reset": "week"}

    response = htmx_post(signed_in, "/clients", form)

    assert response.status_code == 201
    client = Client.get()
    assert (client.status, client.on_hold_days, client.reset_strategy) == (
        "on_hold",
        30,
        "week",
    )
    page = signed_in.get(f"/clients/{client.id}").get_data(as_text=True)
    assert "30 days after the first connection" in page
    assert "weekly, next" in page


def test_it_resets_usage_and_extends_from_the_client_page(
    signed_in: FlaskClient, simulator: Simulator
):
    client = service.create_client("gus", data_limit=100, days=1)
    Client.update(downlink=500).where(Client.id == client.id).execute()
    service.enforce_limits()

    reset = htmx_post(signed_in, f"/clients/{client.id}/reset")
    extended = htmx_post(signed_in, f"/clients/{client.id}/extend", {"days": "7"})
    refused = htmx_post(signed_in, f"/clients/{client.id}/extend", {"days": "a week"})

    assert reset.status_code == 200 and "status-active" in reset.get_data(as_text=True)
    assert extended.status_code == 200
    assert refused.status_code == 422
    assert "Days must be a whole number" in refused.get_data(as_text=True)
    html = extended.get_data(as_text=True)
    assert "reset by admin:root" in html and "extended by admin:root: +7 days" in html
    assert client.email in simulator.users()


def test_it_pages_a_long_client_list_and_keeps_the_query_count_flat(
    signed_in: FlaskClient,
):
    from webpanel.models import db

    rows = [
        {
            "name": f"n{i}",
            "name_key": f"n{i}",
            "email": f"p{i}",
            "uuid": f"00000000-0000-4000-8000-{i:012d}",
            "sub_token": f"s{i}",
        }
        for i in range(120)
    ]
    Client.insert_many(rows).execute()
    statements = []
    original = db.obj.execute_sql

    def counting(sql, *args, **kwargs):
        statements.append(sql)
        return original(sql, *args, **kwargs)

    db.obj.execute_sql = counting
    try:
        first = signed_in.get("/clients").get_data(as_text=True)
    finally:
        db.obj.execute_sql = original
    last = signed_in.get("/clients?page=3").get_data(as_text=True)

    assert first.count('data-client="') == 50 and last.count('data-client="') == 20
    assert "page 1 of 3, 120 clients" in first and 'data-client="p0"' in last
    assert 2 <= len(statements) < 15  # counted, and no query per row


@pytest.mark.parametrize(
    "target", ["//evil.example", "/\t/evil.example", "/\\evil.example", "https://e.x/"]
)
def test_it_never_redirects_away_after_sign_in(client: FlaskClient, admin, target: str):
    token = csrf_from(client.get("/login").get_data(as_text=True))

    response = client.post(
        "/login",
        query_string={"next": target},
        data={"username": "root", "password": PASSWORD, "csrf_token": token},
    )

    assert response.status_code == 302
    assert response.headers["Location"] == "/clients"


def test_it_follows_a_local_next_after_sign_in(client: FlaskClient, admin):
    token = csrf_from(client.get("/login").get_data(as_text=True))

    response = client.post(
        "/login",
        query_string={"next": "/nodes"},
        data={"username": "root", "password": PASSWORD, "csrf_token": token},
    )

    assert response.headers["Location"] == "/nodes"


@pytest.mark.parametrize(
    "url", ["/setup/é", "/clients?page=²", "/clients?page=-1", "/clients/0"]
)
def test_it_answers_odd_addresses_without_a_server_error(signed_in: FlaskClient, url):
    assert signed_in.get(url).status_code < 500


def test_it_refuses_odd_digits_in_forms(signed_in: FlaskClient):
    client = service.create_client("odd", days=1)

    days = htmx_post(signed_in, "/clients", {"name": "x", "days": "²"})
    extend = htmx_post(signed_in, f"/clients/{client.id}/extend", {"days": "²"})
    tiny = htmx_post(signed_in, "/clients", {"name": "y", "limit_gb": "0.0000000001"})
    far = htmx_post(signed_in, f"/clients/{client.id}/extend", {"days": "36500"})
    farther = [
        htmx_post(signed_in, f"/clients/{client.id}/extend", {"days": "36500"})
        for _ in range(70)
    ][-1]

    assert days.status_code == extend.status_code == tiny.status_code == 422
    assert far.status_code == 200
    assert farther.status_code == 422
    assert "year 9000" in farther.get_data(as_text=True)

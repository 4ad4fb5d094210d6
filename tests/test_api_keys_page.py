"""The API keys page: a key is shown once, works, and stops when revoked."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from tests.conftest import csrf_from
from webpanel.models import ApiKey


def make_key(client: FlaskClient, **fields: str):
    token = csrf_from(client.get("/api-keys").get_data(as_text=True))
    return client.post("/api-keys", data={"csrf_token": token, **fields})


def shown_key(html: str) -> str:
    found = re.search(r'class="link api-key"[^>]*>(inf_[A-Za-z0-9_-]+)<', html)
    assert found, "no key on the page"
    return found.group(1)


def test_it_needs_a_signed_in_admin(client: FlaskClient) -> None:
    response = client.get("/api-keys")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_it_shows_a_new_key_once_and_keeps_only_its_hash(signed_in: FlaskClient):
    response = make_key(signed_in, name="shop", scope="write")
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    key = shown_key(response.get_data(as_text=True))

    again = signed_in.get("/api-keys").get_data(as_text=True)
    assert key not in again
    assert key[:12] + "…" in again
    row = ApiKey.get(ApiKey.name == "shop")
    assert row.scope == "write"
    assert key not in (row.key_hash, row.prefix)


def test_it_makes_keys_that_work_and_revokes_them(signed_in: FlaskClient) -> None:
    key = shown_key(make_key(signed_in, name="reader").get_data(as_text=True))
    api = signed_in.application.test_client()  # no session: only the key counts
    headers = {"Authorization": f"Bearer {key}"}
    assert api.get("/api/v1/clients", headers=headers).status_code == 200
    assert (
        api.post("/api/v1/clients", json={"name": "x"}, headers=headers).status_code
        == 403
    )

    page = signed_in.get("/api-keys").get_data(as_text=True)
    assert "never" not in page.split('data-key="reader"')[1].split("</tr>")[0]
    row = ApiKey.get(ApiKey.name == "reader")
    token = csrf_from(page)
    response = signed_in.post(f"/api-keys/{row.id}/revoke", data={"csrf_token": token})
    assert response.status_code == 302
    assert api.get("/api/v1/clients", headers=headers).status_code == 401
    assert "revoked" in signed_in.get("/api-keys").get_data(as_text=True)


def test_it_shows_the_webhook_secret_with_the_key(signed_in: FlaskClient) -> None:
    response = make_key(
        signed_in, name="hooked", scope="read", webhook_url="https://shop.example/hook"
    )
    html = response.get_data(as_text=True)
    secret = ApiKey.get(ApiKey.name == "hooked").webhook_secret
    assert len(secret) == 64
    assert secret in html
    assert secret not in signed_in.get("/api-keys").get_data(as_text=True)


def test_it_refuses_bad_input_with_a_message_and_saves_nothing(
    signed_in: FlaskClient,
) -> None:
    cases = [
        ({"name": "", "scope": "read"}, "Name: 1-64"),
        ({"name": "x" * 65, "scope": "read"}, "Name: 1-64"),
        ({"name": "ok", "scope": "admin"}, "Scope must be read or write."),
        ({"name": "ok", "webhook_url": "ftp://x"}, "Webhook URL must be"),
        ({"name": "ok", "webhook_url": "not a url"}, "Webhook URL must be"),
        ({"name": "ok", "webhook_url": "http://[::1"}, "Webhook URL must be"),
        (
            {"name": "ok", "webhook_url": "http://x.example:port/"},
            "Webhook URL must be",
        ),
        ({"name": "ok", "webhook_url": "http://x.example/a b"}, "Webhook URL must be"),
    ]
    for fields, message in cases:
        response = make_key(signed_in, **fields)
        assert response.status_code == 422, fields
        assert message in response.get_data(as_text=True), fields
    assert ApiKey.select().count() == 0


def test_it_refuses_a_second_active_key_of_the_same_name(signed_in: FlaskClient):
    assert make_key(signed_in, name="shop").status_code == 201
    response = make_key(signed_in, name="shop")
    assert response.status_code == 422
    assert "A key with this name exists" in response.get_data(as_text=True)
    assert ApiKey.select().count() == 1


def test_it_refuses_a_form_without_its_csrf_token(signed_in: FlaskClient) -> None:
    response = signed_in.post("/api-keys", data={"name": "shop"})
    assert response.status_code == 400
    assert ApiKey.select().count() == 0


def test_it_sets_changes_and_removes_a_keys_webhook(signed_in: FlaskClient) -> None:
    make_key(signed_in, name="shop")
    key = ApiKey.get(ApiKey.name == "shop")
    token = csrf_from(signed_in.get("/api-keys").get_data(as_text=True))
    url = f"/api-keys/{key.id}/webhook"

    response = signed_in.post(
        url, data={"csrf_token": token, "webhook_url": "https://shop.example/a"}
    )
    assert response.status_code == 200
    secret = ApiKey.get_by_id(key.id).webhook_secret
    assert len(secret) == 64
    assert secret in response.get_data(as_text=True)  # shown this once

    # A new URL keeps the secret, and the page does not show it again.
    response = signed_in.post(
        url, data={"csrf_token": token, "webhook_url": "https://shop.example/b"}
    )
    row = ApiKey.get_by_id(key.id)
    assert (row.webhook_url, row.webhook_secret) == ("https://shop.example/b", secret)
    assert secret not in response.get_data(as_text=True)

    signed_in.post(url, data={"csrf_token": token, "webhook_url": ""})
    row = ApiKey.get_by_id(key.id)
    assert (row.webhook_url, row.webhook_secret) == ("", "")


def test_it_refuses_a_bad_webhook_url_and_keeps_the_old_one(signed_in: FlaskClient):
    make_key(signed_in, name="shop", webhook_url="https://shop.example/a")
    key = ApiKey.get(ApiKey.name == "shop")
    token = csrf_from(signed_in.get("/api-keys").get_data(as_text=True))

    response = signed_in.post(
        f"/api-keys/{key.id}/webhook",
        data={"csrf_token": token, "webhook_url": "gopher://x"},
    )
    assert response.status_code == 422
    assert "Webhook URL must be" in response.get_data(as_text=True)
    row = ApiKey.get_by_id(key.id)
    assert (row.webhook_url, row.webhook_secret) == (
        key.webhook_url,
        key.webhook_secret,
    )


def test_it_sets_a_webhook_from_the_command_line(signed_in: FlaskClient, runner):
    make_key(signed_in, name="shop")
    result = runner.invoke(
        args=["api-key", "webhook", "shop", "https://shop.example/h"]
    )
    assert result.exit_code == 0, result.output
    secret = ApiKey.get(ApiKey.name == "shop").webhook_secret
    assert f"webhook secret: {secret}" in result.output

    result = runner.invoke(args=["api-key", "webhook", "shop"])
    assert result.exit_code == 0
    assert ApiKey.get(ApiKey.name == "shop").webhook_url == ""

    result = runner.invoke(args=["api-key", "webhook", "shop", "http://[::1"])
    assert result.exit_code == 1
    assert "Webhook URL must be" in result.output
    assert "Traceback" not in result.output

    result = runner.invoke(args=["api-key", "webhook", "nobody", "https://x.example"])
    assert result.exit_code != 0
    assert "no active key named 'nobody'" in result.output


def test_it_never_shows_a_webhook_password_and_keeps_it_when_saved_as_shown(
    signed_in: FlaskClient, runner
):
    make_key(signed_in, name="shop", webhook_url="https://shop:s3cret@hooks.example/x")
    key = ApiKey.get(ApiKey.name == "shop")
    page = signed_in.get("/api-keys").get_data(as_text=True)
    assert "s3cret" not in page
    assert "https://shop:***@hooks.example/x" in page

    listed = runner.invoke(args=["api-key", "list", "--json"])
    assert "s3cret" not in listed.output

    token = csrf_from(page)
    signed_in.post(
        f"/api-keys/{key.id}/webhook",
        data={"csrf_token": token, "webhook_url": "https://shop:***@hooks.example/x"},
    )
    assert ApiKey.get_by_id(key.id).webhook_url == "https://shop:s3cret@hooks.example/x"

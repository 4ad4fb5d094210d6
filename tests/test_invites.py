"""Invite codes: made in the panel, redeemed once by a plugin such as the bot."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import htmx_post
from webpanel.models import utcnow
from webpanel.services import clients as service
from webpanel.services.invites import make_invite
from webpanel.services.invites import redeem_invite


def test_it_redeems_a_code_once(app: Flask):
    client = service.create_client("invited")
    code = make_invite(client).code

    first = redeem_invite(code, actor="bot:1")
    second = redeem_invite(code, actor="bot:2")

    assert first.id == client.id and second is None
    assert len(code) <= 64 and code.replace("-", "").replace("_", "").isalnum()


def test_it_refuses_an_expired_or_unknown_code(app: Flask):
    code = make_invite(service.create_client("late")).code

    assert redeem_invite(code, actor="bot", now=utcnow() + timedelta(days=8)) is None
    assert redeem_invite("no-such-code", actor="bot") is None


def test_it_makes_an_invite_from_the_client_page(signed_in: FlaskClient):
    client = service.create_client("page invite")

    response = htmx_post(signed_in, f"/clients/{client.id}/invite")

    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "/start " in html
    code = html.split("/start ")[1].split("<")[0].strip()
    assert redeem_invite(code, actor="bot").id == client.id

"""Webhook mode: Telegram posts updates to the panel, which checks the secret."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from plugins.telegram_bot.webhook import SECRET_HEADER
from tests.telegram_standin import ADMIN
from tests.telegram_standin import Harness
from tests.telegram_standin import TelegramStandIn
from tests.telegram_standin import fast_bot_fixture  # noqa: F401 - fixtures
from tests.telegram_standin import standin_fixture  # noqa: F401
from tests.telegram_standin import start_bot_fixture  # noqa: F401

URL = "https://panel.example.com/telegram/webhook"
SECRET = "test-webhook-secret"
PATH = "/telegram/webhook"


def with_route(harness: Harness) -> FlaskClient:
    """The app factory registers the route, CSRF-exempt."""
    assert any(rule.rule == PATH for rule in harness.app.url_map.iter_rules())
    return harness.app.test_client()


@pytest.fixture
def hooked(start_bot: Callable[..., Harness]) -> Harness:
    harness = start_bot(TELEGRAM_WEBHOOK_URL=URL, TELEGRAM_WEBHOOK_SECRET=SECRET)
    harness.api.wait_for(lambda: harness.api.webhook, what="setWebhook")
    return harness


def test_it_sets_the_webhook_with_the_secret_instead_of_polling(hooked: Harness):
    assert hooked.api.webhook["url"] == URL
    assert hooked.api.webhook["secret_token"] == SECRET
    assert hooked.api.calls_of("getUpdates") == []


def test_it_answers_an_update_posted_with_the_secret(hooked: Harness):
    client = with_route(hooked)
    update = hooked.api.message_update(ADMIN, "/top")

    response = client.post(PATH, json=update, headers={SECRET_HEADER: SECRET})

    assert response.status_code == 200
    hooked.api.wait_for(lambda: hooked.api.sent(ADMIN), what="the reply")
    assert hooked.last(ADMIN).plain == "No traffic in the last 24 hours."


@pytest.mark.parametrize("secret", [None, "", "wrong-secret"])
def test_it_refuses_a_post_without_the_right_secret(hooked: Harness, secret):
    client = with_route(hooked)
    headers = {} if secret is None else {SECRET_HEADER: secret}

    response = client.post(
        PATH, json=hooked.api.message_update(ADMIN, "/top"), headers=headers
    )

    assert response.status_code == 403


def test_it_refuses_a_body_that_is_not_an_update(hooked: Harness):
    client = with_route(hooked)

    response = client.post(PATH, data="nope", headers={SECRET_HEADER: SECRET})

    assert response.status_code == 400


def test_it_has_no_webhook_while_polling(
    start_bot: Callable[..., Harness], standin: TelegramStandIn
):
    client = with_route(start_bot())

    response = client.post(PATH, json={"update_id": 1}, headers={SECRET_HEADER: SECRET})

    assert response.status_code == 404
    assert standin.wait_for(lambda: standin.calls_of("deleteWebhook"))
    assert standin.webhook == {}

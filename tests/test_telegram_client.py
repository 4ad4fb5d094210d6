"""The bot for clients: an invite binds the chat, then links, QR codes and usage."""

from __future__ import annotations

import pytest

from tests.telegram_standin import CLIENT
from tests.telegram_standin import STRANGER
from tests.telegram_standin import Harness
from tests.telegram_standin import fast_bot_fixture  # noqa: F401 - fixtures
from tests.telegram_standin import standin_fixture  # noqa: F401
from tests.telegram_standin import start_bot_fixture  # noqa: F401
from tests.telegram_standin import telegram_fixture  # noqa: F401
from webpanel.models import AuditEntry
from webpanel.models import Client
from webpanel.models import db
from webpanel.services import clients as service
from webpanel.services import links
from webpanel.services.inputs import GB
from webpanel.services.invites import make_invite


def bound(telegram: Harness, name: str = "Carol", **limits) -> Client:
    client = service.create_client(name, **limits)
    telegram.say(CLIENT, f"/start {make_invite(client).code}")
    return client


def test_it_binds_a_chat_with_an_invite_and_sends_link_and_qr(telegram: Harness):
    client = bound(telegram, data_limit=10 * GB, days=30)

    texts = [m.plain for m in telegram.api.sent(CLIENT, "text")]
    assert texts[0] == "✅ Your Telegram is now linked to Carol."
    assert "Traffic: 0 B of 10.00 GB (0 %)" in texts[1]
    assert f"vless://{client.uuid}@vpn.example.com:8443" in texts[2]
    photo = telegram.api.sent(CLIENT, "photo")[0]
    assert photo.file.startswith(b"\x89PNG") and photo.file_name == "qr.png"
    audit = AuditEntry.get(AuditEntry.event == "invite_used")
    assert audit.actor == f"bot:{CLIENT}"


def test_it_refuses_a_used_or_unknown_invite(telegram: Harness):
    client = service.create_client("Once")
    code = make_invite(client).code
    telegram.say(CLIENT, f"/start {code}")

    telegram.say(STRANGER, f"/start {code}")
    assert "invite is not valid" in telegram.last(STRANGER).plain
    telegram.say(STRANGER, "/start <script>")
    assert "invite is not valid" in telegram.last(STRANGER).plain
    telegram.say(STRANGER, "/link")
    assert "open the invite link" in telegram.last(STRANGER).plain


def test_it_shows_usage_and_expiry_to_the_bound_client(telegram: Harness):
    client = bound(telegram, data_limit=4 * GB, days=10)
    Client.update(uplink=GB, downlink=0).where(Client.id == client.id).execute()

    telegram.say(CLIENT, "/usage")

    text = telegram.last(CLIENT).plain
    assert "Traffic: 1.00 GB of 4.00 GB (25 %)" in text
    assert "Valid until:" in text and "in 10 d" in text


def test_it_answers_the_clients_own_buttons(telegram: Harness):
    bound(telegram)
    summary = telegram.api.sent(CLIENT, "text")[1]
    photos = len(telegram.api.sent(CLIENT, "photo"))

    telegram.press(CLIENT, summary, "Link & QR")

    assert len(telegram.api.sent(CLIENT, "photo")) == photos + 1
    telegram.press(CLIENT, summary, "Usage")
    assert telegram.toast() == ""  # unchanged: "not modified" is no error


def test_it_refuses_a_button_for_a_client_not_bound_here(telegram: Harness):
    bound(telegram)
    summary = telegram.api.sent(CLIENT, "text")[1]

    telegram.press(STRANGER, summary, "Link & QR")

    assert telegram.toast() == "This button is out of date."
    assert telegram.api.sent(STRANGER, "photo") == []


def test_it_speaks_russian_from_the_language_code(telegram: Harness):
    client = service.create_client("Дмитрий", data_limit=GB)
    code = make_invite(client).code

    telegram.say(CLIENT, f"/start {code}", language_code="ru-RU")

    texts = [m.plain for m in telegram.api.sent(CLIENT, "text")]
    assert texts[0] == "✅ Ваш Telegram привязан к Дмитрий."
    assert "Трафик: 0 Б из 1,00 ГБ (0 %)" in texts[1]
    assert telegram.api.sent(CLIENT, "photo")[0].plain == "QR-код: main"


def test_it_lets_a_client_switch_language_with_a_button(telegram: Harness):
    bound(telegram)

    telegram.say(CLIENT, "/lang")
    telegram.press(CLIENT, telegram.last(CLIENT), "Русский")
    telegram.say(CLIENT, "/usage")

    assert "Статус: активен" in telegram.last(CLIENT).plain


def test_it_sends_the_subscription_url_once_the_panel_has_one(
    telegram: Harness, monkeypatch: pytest.MonkeyPatch
):
    def subscription_url(client: Client) -> str:
        return f"https://vpn.example.com/sub/{client.sub_token}"

    monkeypatch.setattr(links, "subscription_url", subscription_url, raising=False)
    client = bound(telegram)

    text = telegram.api.sent(CLIENT, "text")[2].plain
    assert f"Subscription: https://vpn.example.com/sub/{client.sub_token}" in text
    captions = [photo.plain for photo in telegram.api.sent(CLIENT, "photo")]
    assert captions == ["QR code: main", "QR code: subscription"]


def test_it_leaves_the_subscription_out_without_a_public_url(telegram: Harness):
    # The bot has no request to build the URL from; PANEL_PUBLIC_URL is unset.
    bound(telegram)

    assert "Subscription" not in telegram.api.sent(CLIENT, "text")[2].plain


def test_it_helps_a_stranger_without_showing_anything(telegram: Harness):
    service.create_client("private")

    telegram.say(STRANGER, "/start")
    telegram.say(STRANGER, "private")

    texts = [m.plain for m in telegram.api.sent(STRANGER)]
    assert all("open the invite link" in text for text in texts)


def test_it_sends_the_subscription_url_built_on_the_public_url(start_bot):
    harness = start_bot(PANEL_PUBLIC_URL="https://panel.example.com/")
    with harness.app.app_context(), db.connection_context():
        client = bound(harness)

        text = harness.api.sent(CLIENT, "text")[2].plain

    assert f"https://panel.example.com/sub/{client.sub_token}" in text

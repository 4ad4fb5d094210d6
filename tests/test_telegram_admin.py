"""The bot for admins: status, search, cards and their buttons, the create dialog."""

from __future__ import annotations

import logging
import sqlite3

import pytest

from plugins.telegram_bot import admin
from tests.telegram_standin import ADMIN
from tests.telegram_standin import CLIENT
from tests.telegram_standin import Harness
from tests.telegram_standin import fast_bot_fixture  # noqa: F401 - fixtures
from tests.telegram_standin import standin_fixture  # noqa: F401
from tests.telegram_standin import start_bot_fixture  # noqa: F401
from tests.telegram_standin import telegram_fixture  # noqa: F401
from tests.telegram_standin import utf16_units
from webpanel.models import AuditEntry
from webpanel.models import Client
from webpanel.models import db
from webpanel.services import clients as service
from webpanel.services.inputs import GB


def card_of(telegram: Harness, name: str):
    """The card /find shows (a notice to the admin may arrive after it)."""
    telegram.say(ADMIN, f"/find {name}")
    return [m for m in telegram.api.sent(ADMIN) if m.plain.startswith("👤")][-1]


def test_it_shows_the_server_status_to_an_admin(telegram: Harness):
    service.create_client("one")
    service.disable_client(service.create_client("two"))

    telegram.say(ADMIN, "/status")

    text = telegram.last(ADMIN).plain
    assert "Server status" in text and "main" in text
    assert "Clients: 2" in text and "active ✅: 1" in text
    assert "disabled ⏸: 1" in text and "Traffic today (UTC): 0 B" in text


def test_it_finds_a_client_and_shows_its_card_with_buttons(telegram: Harness):
    service.create_client("Alice", data_limit=10 * GB, days=30)

    card = card_of(telegram, "alice")

    assert "👤 Alice" in card.plain and "Status: active ✅" in card.plain
    assert "Traffic: 0 B of 10.00 GB (0 %)" in card.plain
    assert "Valid until:" in card.plain and "in 30 d" in card.plain
    labels = [label for label, _ in card.buttons()]
    assert labels == [
        "⏸ Disable",
        "🔄 Reset usage",
        "📅 Extend",
        "✉️ Invite",
        "🔗 Link & QR",
        "🔑 New link",
        "🗑 Delete",
    ]
    assert all(len(data.encode()) <= 64 for _, data in card.buttons())


def test_it_lists_several_matches_as_buttons(telegram: Harness):
    for name in ("team a", "team b", "other"):
        service.create_client(name)

    telegram.say(ADMIN, "team")

    found = telegram.last(ADMIN)
    assert "Found: 2" in found.plain
    assert [label for label, _ in found.buttons()] == ["team a", "team b"]
    telegram.press(ADMIN, found, "team b")
    assert "👤 team b" in telegram.last(ADMIN).plain


def test_it_disables_and_enables_a_client_from_its_card(telegram: Harness):
    client = service.create_client("toggled")
    card = card_of(telegram, "toggled")

    telegram.press(ADMIN, card, "Disable")

    assert Client.get_by_id(client.id).status == "disabled"
    assert "Disabled" in telegram.toast()
    assert "disabled ⏸" in card.plain and card.button("Enable")
    assert card.edits == 1
    audit = AuditEntry.select().where(AuditEntry.event == "disabled").get()
    assert audit.actor == f"bot:{ADMIN}"

    telegram.press(ADMIN, card, "Enable")

    assert Client.get_by_id(client.id).status == "active"
    assert "active ✅" in card.plain


def test_it_resets_usage_and_extends_from_the_card(telegram: Harness):
    client = service.create_client("busy", data_limit=GB, days=2)
    Client.update(uplink=GB, downlink=5).where(Client.id == client.id).execute()
    service.enforce_limits()
    card = card_of(telegram, "busy")
    assert "limit reached" in card.plain

    telegram.press(ADMIN, card, "Reset usage")
    assert Client.get_by_id(client.id).used == 0
    assert "active ✅" in card.plain

    before = Client.get_by_id(client.id).expire_at
    telegram.press(ADMIN, card, "Extend")
    assert "by how many days" in card.plain
    telegram.press(ADMIN, card, "+30")
    assert (Client.get_by_id(client.id).expire_at - before).days == 30
    assert "Extended by 30 days" in telegram.toast() and "👤 busy" in card.plain


def test_it_asks_before_deleting_and_cancel_keeps_the_client(telegram: Harness):
    client = service.create_client("doomed")
    card = card_of(telegram, "doomed")

    telegram.press(ADMIN, card, "Delete")
    assert "Delete doomed?" in card.plain
    telegram.press(ADMIN, card, "Cancel")
    assert Client.get_or_none(Client.id == client.id) is not None
    assert "👤 doomed" in card.plain

    telegram.press(ADMIN, card, "Delete")
    telegram.press(ADMIN, card, "Yes, delete")

    assert Client.get_or_none(Client.id == client.id) is None
    assert "doomed was deleted" in card.plain and card.buttons() == []


def test_it_makes_a_new_link_and_sends_it_with_a_qr_code(telegram: Harness):
    client = service.create_client("relinked")
    old_uuid = client.uuid
    card = card_of(telegram, "relinked")

    telegram.press(ADMIN, card, "New link")

    new_uuid = Client.get_by_id(client.id).uuid
    assert new_uuid != old_uuid
    assert new_uuid in telegram.last(ADMIN).plain
    photo = telegram.api.sent(ADMIN, "photo")[-1]
    assert photo.file.startswith(b"\x89PNG") and "QR code: main" in photo.plain


def test_it_makes_an_invite_link_with_the_bots_username(telegram: Harness):
    service.create_client("invitee")
    card = card_of(telegram, "invitee")

    telegram.press(ADMIN, card, "Invite")

    text = telegram.last(ADMIN).plain
    assert "https://t.me/infinity_test_bot?start=" in text


def test_it_creates_a_client_in_a_dialog_and_asks_again_on_bad_input(
    telegram: Harness,
):
    telegram.say(ADMIN, "/new")
    assert "Send a name" in telegram.last(ADMIN).plain
    telegram.say(ADMIN, "Bob")
    assert "Data limit in GB" in telegram.last(ADMIN).plain

    telegram.say(ADMIN, "abc")
    assert "«abc» is not a number of GB" in telegram.last(ADMIN).plain
    telegram.say(ADMIN, "2,5")
    assert "Days until it expires" in telegram.last(ADMIN).plain
    telegram.say(ADMIN, "soon")
    assert "«soon» is not a whole number" in telegram.last(ADMIN).plain
    telegram.say(ADMIN, "30")

    client = Client.get(Client.name == "Bob")
    assert client.data_limit == int(2.5 * GB) and client.expire_at is not None
    texts = [m.plain for m in telegram.api.sent(ADMIN, "text")]
    assert "✅ Client Bob created." in texts and "👤 Bob" in texts[-1]
    audit = AuditEntry.get(AuditEntry.event == "created")
    assert audit.actor == f"bot:{ADMIN}"


def test_it_skips_the_limit_and_days_with_a_command_or_a_button(telegram: Harness):
    telegram.say(ADMIN, "/new")
    telegram.say(ADMIN, "Free")
    telegram.say(ADMIN, "/skip")
    telegram.press(ADMIN, telegram.last(ADMIN), "Skip")

    client = Client.get(Client.name == "Free")
    assert client.data_limit is None and client.expire_at is None


def test_it_refuses_a_taken_name_and_keeps_the_dialog_across_a_restart(start_bot):
    first = start_bot()
    with first.app.app_context(), db.connection_context():
        service.create_client("Taken")
    first.say(ADMIN, "/new")
    first.say(ADMIN, "taken")
    assert "«taken» already exists" in first.last(ADMIN).plain
    first.say(ADMIN, "Fresh")
    first.stop()

    again = start_bot()
    again.say(ADMIN, "10")
    again.say(ADMIN, "7")

    with again.app.app_context(), db.connection_context():
        assert Client.get(Client.name == "Fresh").data_limit == 10 * GB


def test_it_cancels_a_dialog(telegram: Harness):
    telegram.say(ADMIN, "/new")
    telegram.say(ADMIN, "/cancel")
    assert telegram.last(ADMIN).plain == "Cancelled."
    telegram.say(ADMIN, "nobody")

    assert "Nothing found for «nobody»" in telegram.last(ADMIN).plain
    assert Client.select().count() == 0


def test_it_splits_a_long_client_list_on_line_breaks(telegram: Harness):
    names = [
        f"клиент {i:03} 🎉 с довольно длинным именем для проверки" for i in range(150)
    ]
    for name in names:
        service.create_client(name)

    telegram.say(ADMIN, "/clients")

    parts = telegram.api.sent(ADMIN, "text")
    assert len(parts) >= 3
    assert all(0 < utf16_units(part.plain) <= 4096 for part in parts)
    lines = [line for part in parts for line in part.plain.split("\n")]
    assert lines[0] == "👥 Clients: 150"
    assert [line.split(" ", 1)[1].split(":")[0] for line in lines[1:]] == sorted(names)


def test_it_lists_the_first_clients_and_says_how_many_more(
    telegram: Harness, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(admin, "LIST_SHOWN", 2)
    for name in ("a", "b", "c"):
        service.create_client(name)

    telegram.say(ADMIN, "/clients")

    lines = telegram.last(ADMIN).plain.split("\n")
    assert lines[0] == "👥 Clients: 3" and len(lines) == 4
    assert lines[-1] == "…and 1 more: /find narrows the list."


def test_it_escapes_names_with_html_and_emoji(telegram: Harness):
    name = '<b>Tom & "Jerry"</b> 🐱‍👤'
    service.create_client(name)

    telegram.say(ADMIN, "/find tom")

    card = telegram.last(ADMIN)
    assert f"👤 {name}" in card.plain
    assert "&lt;b&gt;Tom &amp;" in card.text


def test_it_shows_the_top_list(telegram: Harness):
    telegram.say(ADMIN, "/top")

    assert telegram.last(ADMIN).plain == "No traffic in the last 24 hours."


def test_it_sends_a_database_backup_as_a_file(telegram: Harness, tmp_path):
    service.create_client("backed up")

    telegram.say(ADMIN, "/backup")

    document = telegram.api.sent(ADMIN, "document")[-1]
    assert (
        document.file_name.startswith("infinity-")
        and "Database backup" in document.plain
    )
    copy = tmp_path / "copy.db"
    copy.write_bytes(document.file)
    with sqlite3.connect(copy) as connection:
        names = [row[0] for row in connection.execute("select name from client")]
    assert names == ["backed up"]


def test_it_answers_an_unknown_command_briefly(telegram: Harness):
    telegram.say(ADMIN, "/frobnicate")

    assert "I don't know that command" in telegram.last(ADMIN).plain


def test_it_answers_a_stale_button_briefly(telegram: Harness):
    client = service.create_client("gone soon")
    card = card_of(telegram, "gone soon")
    service.delete_client(client)

    telegram.press(ADMIN, card, "Disable")

    assert telegram.toast() == "This client no longer exists."
    assert "👤 gone soon" in card.plain  # nothing else happened


def test_it_gives_a_non_admin_nothing_and_logs_the_attempt(
    telegram: Harness, caplog: pytest.LogCaptureFixture
):
    service.create_client("secret")
    caplog.set_level(logging.WARNING, logger="plugins.telegram_bot")

    for command in ("/status", "/find secret", "/backup", "/new"):
        telegram.say(CLIENT, command)

    texts = [m.plain for m in telegram.api.sent(CLIENT)]
    assert all("I don't know that command" in text for text in texts)
    assert len(texts) == 4 and telegram.api.sent(CLIENT, "document") == []
    assert f"telegram user {CLIENT} is not an admin and sent /status" in caplog.text


def test_it_ignores_a_forged_admin_button_from_a_non_admin(
    telegram: Harness, caplog: pytest.LogCaptureFixture
):
    client = service.create_client("target")
    telegram.say(CLIENT, "/help")
    caplog.set_level(logging.WARNING, logger="plugins.telegram_bot")

    forged = telegram.api.press(CLIENT, telegram.last(CLIENT), f"a:del:{client.id}:yes")
    telegram.api.wait_handled(forged)

    assert Client.get_or_none(Client.id == client.id) is not None
    assert telegram.toast() == "This button is out of date."
    assert f"telegram user {CLIENT} is not an admin and pressed" in caplog.text


def test_it_refuses_a_button_pressed_outside_its_chat(telegram: Harness):
    client = service.create_client("elsewhere")
    card = card_of(telegram, "elsewhere")

    telegram.press(CLIENT, card, "Delete")

    assert Client.get_or_none(Client.id == client.id) is not None
    assert telegram.toast() == "This button is out of date."


def test_it_speaks_russian_to_a_russian_admin_and_lang_switches(telegram: Harness):
    telegram.say(ADMIN, "/status", language_code="ru")
    assert "Состояние сервера" in telegram.last(ADMIN).plain

    telegram.say(ADMIN, "/lang en", language_code="ru")
    telegram.say(ADMIN, "/status", language_code="ru")

    assert "Server status" in telegram.last(ADMIN).plain

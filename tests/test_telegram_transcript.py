"""A whole conversation against the stand-in, readable as a transcript.

`TELEGRAM_TRANSCRIPT=plugins/telegram_bot/TRANSCRIPT.md pytest
tests/test_telegram_transcript.py` writes it out.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.telegram_standin import ADMIN
from tests.telegram_standin import CLIENT
from tests.telegram_standin import Harness
from tests.telegram_standin import fast_bot_fixture  # noqa: F401 - fixtures
from tests.telegram_standin import standin_fixture  # noqa: F401
from tests.telegram_standin import start_bot_fixture  # noqa: F401
from tests.telegram_standin import telegram_fixture  # noqa: F401
from webpanel.models import Client
from webpanel.services import clients as service
from webpanel.services.inputs import GB
from webpanel.services.invites import make_invite

HEADER = """# The bot, as a conversation

Made by `tests/test_telegram_transcript.py` against the Bot API stand-in
(`tests/telegram_standin.py`): what the admin ({admin}) and a client
({client}) send, the buttons they press, and what the bot answers, as
Telegram would show it. Links, UUIDs and codes differ on every run.

"""


def test_it_holds_a_whole_conversation(telegram: Harness):
    service.create_client("Alice", data_limit=50 * GB, days=30)
    service.create_client("Alice's tablet", days=7)

    telegram.say(ADMIN, "/status")
    telegram.say(ADMIN, "/find alice")
    telegram.press(ADMIN, telegram.last(ADMIN), "Alice's tablet")
    card = telegram.last(ADMIN)
    telegram.press(ADMIN, card, "Disable")
    telegram.press(ADMIN, card, "Delete")
    telegram.press(ADMIN, card, "Cancel")

    telegram.say(ADMIN, "/new")
    telegram.say(ADMIN, "Bob <3")
    telegram.say(ADMIN, "abc")
    telegram.say(ADMIN, "50")
    telegram.say(ADMIN, "/skip")
    bob = Client.get(Client.name == "Bob <3")

    telegram.say(CLIENT, f"/start {make_invite(bob).code}")
    telegram.say(CLIENT, "/usage", language_code="ru")
    telegram.say(CLIENT, "/status")

    names = {ADMIN: "admin", CLIENT: "client"}
    text = HEADER.format(admin=ADMIN, client=CLIENT) + telegram.api.transcript(names)
    assert "Bob &lt;3" not in text and "✅ Client Bob <3 created." in text
    assert "Ваш Telegram" not in text and "Трафик" in text
    target = os.environ.get("TELEGRAM_TRANSCRIPT")
    if target:
        Path(target).write_text(text)

"""The bot's small parts: message splitting, callback data, texts, settings."""

from __future__ import annotations

import re
import string
from datetime import datetime

import pytest

from plugins.telegram_bot.config import ConfigError
from plugins.telegram_bot.config import load_config
from plugins.telegram_bot.keyboards import button_data
from plugins.telegram_bot.keyboards import card_keys
from plugins.telegram_bot.masking import Redactor
from plugins.telegram_bot.splitting import split_message
from plugins.telegram_bot.splitting import utf16_len
from plugins.telegram_bot.texts import EN
from plugins.telegram_bot.texts import RU
from plugins.telegram_bot.texts import Html
from plugins.telegram_bot.texts import language_for
from plugins.telegram_bot.texts import t
from tests.telegram_standin import TOKEN
from tests.telegram_standin import parse_html
from webpanel.models import Client

# Splitting


def test_it_keeps_a_short_text_whole():
    assert split_message("one\ntwo") == ["one\ntwo"]


def test_it_makes_no_empty_chunk_when_the_text_fills_messages_exactly():
    line = "x" * 4095
    text = f"{line}\n{line}"  # 4095 + 1 + 4095: two full messages

    chunks = split_message(text)

    assert chunks == [line, line]


def test_it_counts_utf16_units_so_emoji_count_twice():
    emoji = "🎉" * 2048  # 4096 units, 2048 code points
    assert utf16_len(emoji) == 4096 and split_message(emoji) == [emoji]

    chunks = split_message(emoji + "🎉")

    assert [utf16_len(c) for c in chunks] == [4096, 2]


def test_it_cuts_on_line_breaks_and_keeps_every_line():
    lines = [f"{i:04} {'é' * (i % 90)} 🚀" for i in range(600)]

    chunks = split_message("\n".join(lines))

    assert len(chunks) > 1
    assert all(0 < utf16_len(chunk) <= 4096 for chunk in chunks)
    assert [line for chunk in chunks for line in chunk.split("\n")] == lines


def test_it_cuts_an_overlong_line_at_a_space_and_never_inside_markup():
    words = " ".join(f"<b>w{i}</b>&amp;" for i in range(600))

    chunks = split_message(words, limit=100)

    assert all(utf16_len(chunk) <= 100 for chunk in chunks)
    assert all(parse_html(chunk) for chunk in chunks)  # each one valid HTML
    assert " ".join(chunks) == words


def test_it_drops_blank_chunks():
    assert split_message("") == [] and split_message("\n\n\n") == []


# Callback data and texts


def test_it_refuses_callback_data_over_64_bytes():
    assert button_data("a", "del", 10**15, "yes") == "a:del:1000000000000000:yes"
    with pytest.raises(ValueError, match="64 bytes"):
        button_data("a", "я" * 32)


def test_it_escapes_every_value_put_into_a_text():
    text = t("en", "bound", name='<i>Eve & "Mallory"</i>')

    expected = '<b>&lt;i&gt;Eve &amp; "Mallory"&lt;/i&gt;</b>'
    assert text == f"✅ Your Telegram is now linked to {expected}."
    assert parse_html(text).endswith('<i>Eve & "Mallory"</i>.')
    assert t("en", "subscription", url=Html("<code>x</code>")).endswith(
        "<code>x</code>"
    )


def test_it_has_every_text_in_both_languages_with_the_same_placeholders():
    def fields(template: str) -> set[str]:
        return {f for _, f, _, _ in string.Formatter().parse(template) if f}

    language_neutral = {"node_line", "clients_status"}
    assert set(EN) - set(RU) == language_neutral
    for key, template in RU.items():
        assert fields(template) == fields(EN[key]), key
        values = dict.fromkeys(fields(template), "x")
        parse_html(template.format(**values))  # valid HTML in Russian too


def test_it_reads_the_language_from_the_language_code():
    assert [language_for(c) for c in ("ru", "ru-RU", "en", "uk", None)] == [
        "ru",
        "ru",
        "en",
        "en",
        "en",
    ]


# Settings


def settings(**values: str) -> dict[str, str]:
    return {"TELEGRAM_BOT_TOKEN": TOKEN, **values}


def test_it_reads_the_settings_with_telegrams_defaults():
    config = load_config(settings(TELEGRAM_ADMIN_IDS=" 1001, 42 ,"))

    assert config.admin_ids == {1001, 42}
    assert config.api_url == "https://api.telegram.org"
    assert config.proxy is None and not config.webhook
    assert TOKEN not in repr(config)


def test_it_takes_an_api_base_url_without_a_trailing_slash():
    config = load_config(settings(TELEGRAM_API_URL="http://127.0.0.1:8081/"))

    assert config.api_url == "http://127.0.0.1:8081"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TELEGRAM_BOT_TOKEN", ""),
        ("TELEGRAM_BOT_TOKEN", "no-colon-here"),
        ("TELEGRAM_ADMIN_IDS", "1001,@someone"),
        ("TELEGRAM_API_URL", "api.telegram.org"),
        ("TELEGRAM_API_URL", "http://127.0.0.1:8081/bot{0}/{1}"),
        ("TELEGRAM_PROXY", "ftp://proxy:21"),
        ("TELEGRAM_PROXY", "socks4://127.0.0.1:1080"),  # only http(s) and socks5
        ("TELEGRAM_WEBHOOK_URL", "http://panel.example.com/telegram/webhook"),
        ("TELEGRAM_WEBHOOK_URL", "https://panel.example.com/hook"),
    ],
)
def test_it_refuses_a_bad_setting_naming_it(name: str, value: str):
    with pytest.raises(ConfigError, match=f"^{name} "):
        load_config({**settings(), name: value})


def test_it_wants_a_secret_with_a_webhook():
    url = "https://panel.example.com/telegram/webhook"
    with pytest.raises(ConfigError, match="^TELEGRAM_WEBHOOK_SECRET "):
        load_config(settings(TELEGRAM_WEBHOOK_URL=url))

    config = load_config(
        settings(TELEGRAM_WEBHOOK_URL=url, TELEGRAM_WEBHOOK_SECRET="s3cret_-")
    )
    assert config.webhook and "s3cret" not in repr(config)


def test_it_never_echoes_a_malformed_token():
    with pytest.raises(ConfigError) as caught:
        load_config({"TELEGRAM_BOT_TOKEN": "123:abc def"})

    assert "abc" not in str(caught.value)


def test_it_masks_the_token_and_its_secret_half():
    redact = Redactor(TOKEN)
    secret = TOKEN.partition(":")[2]

    masked = redact(f"url /bot{TOKEN}/getMe and %3A{secret}")

    assert TOKEN not in masked and secret not in masked
    assert re.fullmatch(r"url /bot1234…al/getMe and %3A1234…al", masked)


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        ({}, False),  # never expires: nothing to extend
        ({"expire_at": datetime(2030, 1, 1)}, True),
        ({"on_hold_days": 7}, True),
    ],
)
def test_it_offers_extend_only_for_a_client_that_can_expire(fields: dict, shown: bool):
    client = Client(id=5, name="x", status="active", **fields)

    buttons = [b.callback_data for row in card_keys(client, "en").keyboard for b in row]

    assert ("a:ext:5" in buttons) is shown

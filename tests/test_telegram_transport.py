"""Telegram's rules: 429 waits, 409 stops, network errors retried, token kept secret."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable

import pytest
from telebot import apihelper

from plugins.telegram_bot import config as bot_config
from plugins.telegram_bot.config import load_config
from plugins.telegram_bot.transport import Api
from plugins.telegram_bot.transport import TelegramError
from plugins.telegram_bot.transport import Unreachable
from plugins.telegram_bot.transport import install
from plugins.telegram_bot.transport import uninstall
from tests.daemons import free_port
from tests.telegram_standin import ADMIN
from tests.telegram_standin import FAST
from tests.telegram_standin import TOKEN
from tests.telegram_standin import Harness
from tests.telegram_standin import TelegramStandIn
from tests.telegram_standin import fast_bot_fixture  # noqa: F401 - fixtures
from tests.telegram_standin import standin_fixture  # noqa: F401
from tests.telegram_standin import start_bot_fixture  # noqa: F401
from tests.telegram_standin import telegram_fixture  # noqa: F401

SECRET_HALF = TOKEN.partition(":")[2]


def replies(harness: Harness, chat_id: int) -> list[str]:
    return [m.plain for m in harness.api.sent(chat_id, "text")]


def test_it_waits_out_a_429_then_sends(telegram: Harness):
    telegram.api.fail(
        "sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1
    )

    telegram.say(ADMIN, "/top")

    attempts = telegram.api.calls_of("sendMessage")
    assert [call.ok for call in attempts] == [False, True]
    assert attempts[1].at - attempts[0].at >= 1.0
    assert replies(telegram, ADMIN) == ["No traffic in the last 24 hours."]


def test_it_waits_out_a_429_on_get_updates(telegram: Harness):
    telegram.api.fail("getUpdates", 429, "Too Many Requests", retry_after=1)
    started = time.monotonic()

    telegram.say(ADMIN, "/top")

    assert time.monotonic() - started >= 1.0
    assert replies(telegram, ADMIN) == ["No traffic in the last 24 hours."]


def test_it_stops_polling_on_409_with_one_clear_log_line(
    start_bot: Callable[..., Harness],
    standin: TelegramStandIn,
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.INFO, logger="plugins.telegram_bot")
    standin.fail(
        "getUpdates",
        409,
        "Conflict: terminated by other getUpdates request; make sure that only "
        "one bot instance is running",
    )

    harness = start_bot()
    standin.wait_for(lambda: harness.state.status == "failed", what="the 409")
    polls = len(standin.calls_of("getUpdates"))
    time.sleep(0.3)

    assert len(standin.calls_of("getUpdates")) == polls == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "another process polls with this token" in errors[0].getMessage()
    assert "Conflict" in harness.state.error


def test_it_stops_when_the_token_is_refused(
    start_bot: Callable[..., Harness],
    standin: TelegramStandIn,
    caplog: pytest.LogCaptureFixture,
):
    standin.fail("getMe", 401, "Unauthorized")

    harness = start_bot()

    standin.wait_for(lambda: harness.state.status == "failed", what="the 401")
    assert "Telegram refused TELEGRAM_BOT_TOKEN" in caplog.text
    assert standin.calls_of("getUpdates") == []


def test_it_retries_dropped_connections_with_back_off(
    telegram: Harness, caplog: pytest.LogCaptureFixture
):
    telegram.api.drop("getUpdates", times=3)

    telegram.say(ADMIN, "/top")

    assert replies(telegram, ADMIN) == ["No traffic in the last 24 hours."]
    assert caplog.text.count("getUpdates failed") >= 3
    waits = [float(w) for w in _waits(caplog.text)]
    assert waits[:3] == [0.05, 0.1, 0.2]  # doubling, capped at 0.2


def _waits(text: str) -> list[str]:
    return [
        line.rsplit("trying again in ", 1)[1].split(" ")[0]
        for line in text.splitlines()
        if "getUpdates failed" in line
    ]


def test_it_retries_a_send_that_timed_out(
    start_bot: Callable[..., Harness],
    standin: TelegramStandIn,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
):
    monkeypatch.setattr(
        bot_config, "DEFAULT_TUNING", dataclasses.replace(FAST, request_timeout=0.5)
    )
    harness = start_bot()
    standin.delay("sendMessage", 1.0)

    harness.say(ADMIN, "/top")

    assert "Read timed out" in caplog.text and "retrying" in caplog.text
    # Telegram may have taken the first one too: a retry can repeat a message.
    assert "No traffic in the last 24 hours." in replies(harness, ADMIN)


def test_it_retries_a_server_error(telegram: Harness):
    telegram.api.fail("sendMessage", 502, "Bad Gateway")

    telegram.say(ADMIN, "/top")

    assert replies(telegram, ADMIN) == ["No traffic in the last 24 hours."]


def test_it_never_logs_the_token(
    start_bot: Callable[..., Harness],
    standin: TelegramStandIn,
    caplog: pytest.LogCaptureFixture,
):
    caplog.set_level(logging.DEBUG, logger="plugins.telegram_bot")
    caplog.set_level(logging.DEBUG, logger="plugins")
    standin.drop("getMe")
    standin.fail("getUpdates", 500, f"Internal error for {TOKEN}")
    standin.delay("getUpdates", 0.1)
    harness = start_bot()
    harness.api.fail("sendMessage", 429, "Too Many Requests", retry_after=1)
    harness.say(ADMIN, "/status")
    standin.fail("getUpdates", 409, "Conflict")
    standin.wait_for(lambda: harness.state.status == "failed", what="the 409")

    assert caplog.records and "1234…al" in caplog.text
    assert TOKEN not in caplog.text and SECRET_HALF not in caplog.text
    assert SECRET_HALF not in harness.state.error
    assert logging.getLogger("telebot").getEffectiveLevel() > logging.DEBUG


def test_its_errors_carry_no_token_even_when_the_url_is_in_them():
    port = free_port()  # nothing listens here: the error names the URL
    config = load_config(
        {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": f"http://127.0.0.1:{port}"}
    )
    tuning = dataclasses.replace(FAST, send_attempts=2)
    install(config, tuning)
    try:
        with pytest.raises(Unreachable) as caught:
            Api(config, tuning, threading.Event()).get_me()
    finally:
        uninstall()

    text = str(caught.value)
    assert "/bot1234…al/getMe" in text and SECRET_HALF not in text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_it_stops_promptly_and_puts_the_library_settings_back(telegram: Harness):
    assert apihelper.API_URL == telegram.api.url + "/bot{0}/{1}"
    started = time.monotonic()

    telegram.stop()

    assert time.monotonic() - started < 2.0
    assert apihelper.API_URL is None and apihelper.proxy is None
    names = {thread.name for thread in threading.enumerate()}
    assert not names & {"telegram-updates", "telegram-outbox"}


def test_it_refuses_a_second_bot_with_other_api_settings():
    first = load_config({"TELEGRAM_BOT_TOKEN": TOKEN})
    second = load_config(
        {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": "http://127.0.0.1:9"}
    )
    install(first, FAST)
    try:
        with pytest.raises(TelegramError, match="process-wide"):
            install(second, FAST)
    finally:
        uninstall()
    assert apihelper.API_URL is None


def test_it_talks_through_the_proxy(
    start_bot: Callable[..., Harness], standin: TelegramStandIn
):
    # The API address is a closed local port: only the proxy can answer.
    harness = start_bot(
        TELEGRAM_API_URL=f"http://127.0.0.1:{free_port()}",
        TELEGRAM_PROXY=standin.url,
    )

    harness.say(ADMIN, "/top")

    assert standin.calls and all(call.via_proxy for call in standin.calls)
    assert replies(harness, ADMIN) == ["No traffic in the last 24 hours."]


def test_it_fails_to_load_with_a_bad_setting_and_names_it(
    start_bot: Callable[..., Harness], standin: TelegramStandIn
):
    harness = start_bot(TELEGRAM_ADMIN_IDS="1001,me")

    assert harness.state.status == "failed"
    assert "TELEGRAM_ADMIN_IDS" in harness.state.error
    assert harness.state.settings["TELEGRAM_BOT_TOKEN"] == "1234…al"
    assert standin.calls == []


def test_it_stops_promptly_while_a_long_poll_hangs(
    start_bot: Callable[..., Harness],
    standin: TelegramStandIn,
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(
        bot_config, "DEFAULT_TUNING", dataclasses.replace(FAST, stop_wait=0.2)
    )
    harness = start_bot()
    standin.delay("getUpdates", 1.5)
    standin.wait_for(lambda: not standin.faults_left(), what="the slow poll")
    started = time.monotonic()

    harness.stop()

    assert time.monotonic() - started < 1.0
    assert apihelper.API_URL is not None  # the poll in flight still needs it
    standin.wait_for(lambda: apihelper.API_URL is None, what="the last thread out")

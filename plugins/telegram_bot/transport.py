"""The one door to the Bot API: pyTelegramBotAPI calls, retried by Telegram's rules.

Errors come out as one small family (TelegramError and its kinds), with the
token masked and the library's exception (whose URL holds the token) dropped.

pyTelegramBotAPI keeps its API URL, proxy and timeouts in module globals of
`telebot.apihelper`, shared by every bot object in the process. `install`
sets them for this bot and `uninstall` puts back what was there; a second
bot in the same process with other values is refused rather than silently
sending one bot's calls to the other's server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from typing import TypeVar

import requests
import telebot
from telebot import apihelper
from telebot import types

from plugins.telegram_bot.config import BotConfig
from plugins.telegram_bot.config import Tuning
from plugins.telegram_bot.masking import Redactor
from plugins.telegram_bot.splitting import split_message

log = logging.getLogger(__name__)

T = TypeVar("T")
NOT_MODIFIED = "message is not modified"
GLOBALS = ("API_URL", "FILE_URL", "proxy", "CONNECT_TIMEOUT", "READ_TIMEOUT")
_installed_lock = threading.Lock()
_installed: dict[str, Any] | None = None  # what this process's bot set


class TelegramError(Exception):
    """A Bot API call failed; the message never holds the token."""


class Unreachable(TelegramError):
    """Network trouble, a timeout, a 5xx or a garbled reply: worth retrying later."""


class RateLimited(Unreachable):
    """429 on a call that may not wait itself: the caller waits retry_after."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Conflict(TelegramError):
    """409: another process polls with this token, or a webhook is set."""


class Unauthorized(TelegramError):
    """401: the token was refused."""


class Refused(TelegramError):
    """Telegram said no for good (400, 403, 404 …): retrying won't help."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(f"{code} {description}")
        self.code = code
        self.description = description


def install(config: BotConfig, tuning: Tuning) -> None:
    """Point the library's process-wide settings at this bot's API and proxy."""
    global _installed
    wanted = {
        "API_URL": config.api_url + "/bot{0}/{1}",
        "FILE_URL": config.api_url + "/file/bot{0}/{1}",
        "proxy": {"http": config.proxy, "https": config.proxy}
        if config.proxy
        else None,
        "CONNECT_TIMEOUT": tuning.request_timeout,
        "READ_TIMEOUT": tuning.request_timeout,
    }
    with _installed_lock:
        if _installed is not None and _installed["wanted"] != wanted:
            raise TelegramError(
                "another Telegram bot in this process uses other API settings; "
                "pyTelegramBotAPI keeps them process-wide, so only one can run"
            )
        if _installed is None:
            saved = {name: getattr(apihelper, name) for name in GLOBALS}
            _installed = {"wanted": wanted, "saved": saved, "users": 0}
        _installed["users"] += 1
        for name, value in wanted.items():
            setattr(apihelper, name, value)


def uninstall() -> None:
    global _installed
    with _installed_lock:
        if _installed is None:
            return
        _installed["users"] -= 1
        if _installed["users"] > 0:
            return
        for name, value in _installed["saved"].items():
            setattr(apihelper, name, value)
        _installed = None


@dataclass
class Backoff:
    """Waits that double after each failure, up to a cap; a success resets them."""

    first: float
    cap: float
    current: float = 0.0

    def next(self) -> float:
        self.current = min(self.cap, self.current * 2 if self.current else self.first)
        return self.current

    def reset(self) -> None:
        self.current = 0.0


class Api:
    """The calls the bot makes, with 429 waits, retries and masked errors."""

    def __init__(
        self, config: BotConfig, tuning: Tuning, stopped: threading.Event
    ) -> None:
        self.bot = telebot.TeleBot(config.token, threaded=False)
        self.redact = Redactor(config.token)
        self.tuning = tuning
        self.stopped = stopped

    # The Bot API methods we use

    def get_me(self) -> types.User:
        return self.call("getMe", self.bot.get_me)

    def get_updates(self, offset: int | None) -> list[types.Update]:
        """One long poll; network errors are the caller's to retry."""
        return self.call(
            "getUpdates",
            self.bot.get_updates,
            offset=offset,
            timeout=self.tuning.long_poll + self.tuning.request_timeout,
            long_polling_timeout=self.tuning.long_poll,
            allowed_updates=["message", "callback_query"],
            attempts=1,
        )

    def send_text(
        self,
        chat_id: int,
        text: str,
        markup: types.InlineKeyboardMarkup | str | None = None,
    ) -> types.Message | None:
        """Send text in as many messages as it takes; the buttons go on the last."""
        chunks = split_message(text)
        message = None
        for index, chunk in enumerate(chunks):
            last = index == len(chunks) - 1
            message = self.call(
                "sendMessage",
                self.bot.send_message,
                chat_id,
                chunk,
                parse_mode="HTML",
                reply_markup=markup if last else None,
                link_preview_options=types.LinkPreviewOptions(is_disabled=True),
            )
        return message

    def send_photo(self, chat_id: int, png: bytes, caption: str = "") -> None:
        self.call(
            "sendPhoto",
            self.bot.send_photo,
            chat_id,
            ("qr.png", png),
            caption=caption or None,
            parse_mode="HTML",
        )

    def send_document(
        self, chat_id: int, content: bytes, file_name: str, caption: str = ""
    ) -> None:
        self.call(
            "sendDocument",
            self.bot.send_document,
            chat_id,
            content,
            visible_file_name=file_name,
            caption=caption or None,
            parse_mode="HTML",
        )

    def edit_text(
        self,
        chat_id: int,
        message_id: int,
        text: str,
        markup: types.InlineKeyboardMarkup | None = None,
    ) -> None:
        """Replace a message's text (cut to one message) and buttons."""
        self.call(
            "editMessageText",
            self.bot.edit_message_text,
            (split_message(text) or ["…"])[0],
            chat_id,
            message_id,
            parse_mode="HTML",
            reply_markup=markup,
            link_preview_options=types.LinkPreviewOptions(is_disabled=True),
        )

    def answer_callback(self, callback_id: str, text: str = "") -> None:
        """Stop the button's spinner; a too-old query is no one's problem."""
        try:
            self.call(
                "answerCallbackQuery",
                self.bot.answer_callback_query,
                callback_id,
                text=text[:200] or None,
            )
        except Refused as error:
            log.debug("callback answer refused: %s", error.description)

    def delete_webhook(self) -> None:
        self.call("deleteWebhook", self.bot.delete_webhook)

    def set_webhook(self, url: str, secret: str) -> None:
        self.call(
            "setWebhook",
            self.bot.set_webhook,
            url=url,
            secret_token=secret,
            allowed_updates=["message", "callback_query"],
        )

    # Retries

    def call(
        self, method: str, function: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T | None:
        """Call with Telegram's rules: wait out 429s, retry network errors.

        "Message is not modified" is success (None); a 409 or 401 is raised
        at once.
        Each retry of a send after a timeout may repeat a message Telegram
        did receive: the API has no idempotency key to prevent that.
        """
        attempts = kwargs.pop("attempts", self.tuning.send_attempts)
        backoff = Backoff(self.tuning.backoff_first, self.tuning.backoff_cap)
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            if self.stopped.is_set():
                raise Unreachable(f"{method}: the bot is stopping")
            try:
                return function(*args, **kwargs)
            except apihelper.ApiTelegramException as error:
                if error.error_code == 400 and NOT_MODIFIED in str(error.description):
                    return None  # an edit to the same content: done already
                wait = self._telegram_error(method, error, last, backoff)
            except (requests.RequestException, apihelper.ApiException) as error:
                # Network trouble, or an answer that is not the API's JSON.
                if last:
                    raise Unreachable(f"{method}: {self.redact(error)}") from None
                wait = backoff.next()
                log.warning(
                    "telegram %s failed (%s); retrying in %g s",
                    method,
                    self.redact(error),
                    wait,
                )
            if self.stopped.wait(wait):
                raise Unreachable(f"{method}: the bot is stopping") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _telegram_error(
        self,
        method: str,
        error: apihelper.ApiTelegramException,
        last: bool,
        backoff: Backoff,
    ) -> float:
        """How long to wait before the next try, or raise our error."""
        code, description = error.error_code, self.redact(error.description)
        if code == 429:
            parameters = error.result_json.get("parameters") or {}
            wait = float(parameters.get("retry_after") or 1)
            if last or wait > self.tuning.max_retry_after:
                raise RateLimited(f"{method}: 429 {description}", wait) from None
            log.warning("telegram %s: flood limit, waiting %g s", method, wait)
            return wait
        if code == 409:
            raise Conflict(f"{method}: 409 {description}") from None
        if code == 401:
            raise Unauthorized(f"{method}: 401 {description}") from None
        if code >= 500 and not last:
            log.warning("telegram %s: %s %s; retrying", method, code, description)
            return backoff.next()
        if code >= 500:
            raise Unreachable(f"{method}: {code} {description}") from None
        raise Refused(code, description) from None

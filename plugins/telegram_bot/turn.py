"""One update being answered, and the panel services the answer may use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from telebot.types import InlineKeyboardMarkup

from plugins import PluginContext
from plugins.telegram_bot.texts import Html
from plugins.telegram_bot.texts import t
from plugins.telegram_bot.transport import Api


@dataclass
class Panel:
    """The panel as the bot sees it: services, admins, the bot's own name."""

    clients: ModuleType
    stats: ModuleType
    invites: ModuleType
    backup: ModuleType
    links: ModuleType
    backup_folder: Path
    admin_ids: frozenset[int]
    username: Callable[[], str]


def panel_from(
    context: PluginContext, admin_ids: frozenset[int], username: Callable[[], str]
) -> Panel:
    def service(name: str) -> ModuleType:
        return getattr(context.services, name)

    return Panel(
        clients=service("clients"),
        stats=service("stats"),
        invites=service("invites"),
        backup=service("backup"),
        links=service("links"),
        backup_folder=Path(context.app.instance_path) / "backups",
        admin_ids=admin_ids,
        username=username,
    )


@dataclass
class Turn:
    """Who wrote, in which chat and language, and how to answer them."""

    api: Api
    chat_id: int
    user_id: int
    lang: str
    admin: bool
    callback_id: str | None = None  # set for a button press until answered
    message_id: int | None = None  # the message whose button was pressed

    @property
    def actor(self) -> str:
        """Who the panel's audit log names for changes made here."""
        return f"bot:{self.user_id}"

    def t(self, key: str, **values: object) -> Html:
        return t(self.lang, key, **values)

    def say(self, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
        self.api.send_text(self.chat_id, text, markup)

    def edit(self, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
        """Rewrite the message whose button was pressed (or send a new one)."""
        if self.message_id is None:
            self.say(text, markup)
        else:
            self.api.edit_text(self.chat_id, self.message_id, text, markup)

    def toast(self, text: str = "") -> None:
        """Answer the button press once: Telegram shows a spinner until then."""
        if self.callback_id is not None:
            callback_id, self.callback_id = self.callback_id, None
            self.api.answer_callback(callback_id, text)

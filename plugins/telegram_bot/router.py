"""Which handler answers an update: commands, dialog answers, button presses.

Only private chats are served. An admin is a user whose id is in
TELEGRAM_ADMIN_IDS; anyone else who sends an admin command gets the same
answer as for an unknown command, and the attempt is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from telebot import types

from plugins.telegram_bot.admin import COMMANDS as ADMIN_COMMANDS
from plugins.telegram_bot.admin import AdminDesk
from plugins.telegram_bot.client import ClientDesk
from plugins.telegram_bot.dialogs import SKIP
from plugins.telegram_bot.keyboards import language_keys
from plugins.telegram_bot.models import TelegramChat
from plugins.telegram_bot.models import end_dialog
from plugins.telegram_bot.models import get_dialog
from plugins.telegram_bot.texts import LANGUAGES
from plugins.telegram_bot.texts import language_for
from plugins.telegram_bot.transport import Api
from plugins.telegram_bot.transport import TelegramError
from plugins.telegram_bot.turn import Panel
from plugins.telegram_bot.turn import Turn

log = logging.getLogger(__name__)

CLIENT_COMMANDS = ("link", "usage")


class Router:
    def __init__(self, api: Api, panel: Panel) -> None:
        self.api = api
        self.panel = panel
        self.admin = AdminDesk(panel)
        self.client = ClientDesk(panel)

    def handle(self, update: types.Update) -> None:
        """Answer one update; a failure is logged and, if possible, apologised for."""
        turn = None
        try:
            if update.message is not None:
                turn = self._turn_for_message(update.message)
                if turn is not None:
                    self._message(turn, update.message)
            elif update.callback_query is not None:
                turn = self._turn_for_button(update.callback_query)
                if turn is not None:
                    self._button(turn, update.callback_query)
        except TelegramError as error:
            log.warning("telegram: no answer to update %s: %s", update.update_id, error)
        except Exception:
            log.exception("telegram: update %s failed", update.update_id)
            if turn is not None:
                self._apologise(turn)
        finally:
            if turn is not None:
                self._quietly(turn.toast)

    # Who and where

    def _turn_for_message(self, message: types.Message) -> Turn | None:
        user = message.from_user
        if message.chat.type != "private" or user is None or user.is_bot:
            log.debug("telegram: ignoring a message in a %s chat", message.chat.type)
            return None
        return self._turn(message.chat.id, user)

    def _turn_for_button(self, query: types.CallbackQuery) -> Turn | None:
        """In a private chat, the chat is the user's: a button elsewhere is stale."""
        user = query.from_user
        turn = self._turn(user.id, user)
        turn.callback_id = query.id
        chat = getattr(query.message, "chat", None)
        if chat is None or chat.id == user.id:
            turn.message_id = getattr(query.message, "message_id", None)
        else:
            log.warning(
                "telegram user %s pressed a button in chat %s", user.id, chat.id
            )
            turn.callback_id = None
            self.api.answer_callback(query.id, turn.t("stale_button"))
            return None
        return turn

    def _turn(self, chat_id: int, user: types.User) -> Turn:
        return Turn(
            api=self.api,
            chat_id=chat_id,
            user_id=user.id,
            lang=self._language(chat_id, user),
            admin=user.id in self.panel.admin_ids,
        )

    def _language(self, chat_id: int, user: types.User) -> str:
        """The chat's chosen language, else what the user's app says."""
        seen = language_for(user.language_code)
        chat = TelegramChat.get_or_none(TelegramChat.chat_id == chat_id)
        if chat is None:
            TelegramChat.insert(
                chat_id=chat_id, language=seen
            ).on_conflict_ignore().execute()
        elif chat.chosen:
            return chat.language
        elif chat.language != seen:
            TelegramChat.update(language=seen).where(
                TelegramChat.chat_id == chat_id
            ).execute()
        return seen

    # Messages

    def _message(self, turn: Turn, message: types.Message) -> None:
        text = (message.text or "").strip()
        if not text.startswith("/"):
            self._text(turn, text)
            return
        word, _, argument = text.replace("\n", " ").partition(" ")
        command = word[1:].split("@", 1)[0].lower()
        self._command(turn, command, argument.strip())

    def _command(self, turn: Turn, command: str, argument: str) -> None:
        dialog = get_dialog(turn.chat_id)
        if command == "cancel":
            turn.say(
                turn.t("cancelled" if end_dialog(turn.chat_id) else "nothing_to_cancel")
            )
            return
        if command == "skip" and dialog is not None:
            self._text(turn, SKIP)
            return
        if dialog is not None:
            end_dialog(turn.chat_id)  # another command leaves the dialog

        if command == "start":
            self._start(turn, argument)
        elif command == "help":
            self._help(turn)
        elif command == "lang":
            self._choose_language(turn, argument)
        elif command in ADMIN_COMMANDS and turn.admin:
            self.admin.command(turn, command, argument)
        elif command in ADMIN_COMMANDS:
            log.warning(
                "telegram user %s is not an admin and sent /%s", turn.user_id, command
            )
            turn.say(turn.t("unknown_command"))
        elif command in CLIENT_COMMANDS:
            if not self.client.command(turn, command):
                turn.say(turn.t("help_stranger"))
        else:
            turn.say(turn.t("unknown_command"))

    def _text(self, turn: Turn, text: str) -> None:
        dialog = get_dialog(turn.chat_id)
        if dialog is not None and turn.admin:
            self.admin.answer(turn, dialog, text)
        elif dialog is not None:
            end_dialog(turn.chat_id)  # no longer an admin: the dialog is over
            turn.say(turn.t("unknown_command"))
        elif turn.admin and text:
            self.admin.find(turn, text)
        else:
            self._help(turn)

    def _start(self, turn: Turn, code: str) -> None:
        if code:
            self.client.redeem(turn, code)
        elif turn.admin:
            self._help(turn)
        elif clients := self.client.clients(turn):
            for client in clients:
                self.client.show(turn, client)
        else:
            turn.say(turn.t("help_stranger"))

    def _help(self, turn: Turn) -> None:
        parts = []
        if turn.admin:
            parts.append(turn.t("help_admin"))
        if self.client.clients(turn):
            parts.append(turn.t("help_client"))
        turn.say("\n\n".join(parts) if parts else turn.t("help_stranger"))

    def _choose_language(self, turn: Turn, choice: str) -> None:
        choice = choice.lower()
        if choice not in LANGUAGES:
            turn.say(turn.t("choose_language"), language_keys())
            return
        self._set_language(turn, choice)
        turn.say(turn.t("language_set"))

    def _set_language(self, turn: Turn, language: str) -> None:
        row = {TelegramChat.language: language, TelegramChat.chosen: True}
        (
            TelegramChat.insert({TelegramChat.chat_id: turn.chat_id, **row})
            .on_conflict(conflict_target=[TelegramChat.chat_id], update=row)
            .execute()
        )
        turn.lang = language

    # Buttons

    def _button(self, turn: Turn, query: types.CallbackQuery) -> None:
        kind, _, rest = (query.data or "").partition(":")
        parts = rest.split(":")
        if kind == "a" and turn.admin:
            self.admin.on_button(turn, parts)
        elif kind == "d" and turn.admin and get_dialog(turn.chat_id) is not None:
            turn.toast()
            if parts[0] == "cancel":
                end_dialog(turn.chat_id)
                turn.say(turn.t("cancelled"))
            else:
                self._text(turn, SKIP)
        elif kind == "m":
            self.client.on_button(turn, parts)
        elif kind == "l" and parts[0] in LANGUAGES:
            self._set_language(turn, parts[0])
            turn.toast(turn.t("language_set"))
            turn.edit(turn.t("language_set"))
        else:
            if kind in ("a", "d") and not turn.admin:
                log.warning(
                    "telegram user %s is not an admin and pressed %r",
                    turn.user_id,
                    query.data,
                )
            turn.toast(turn.t("stale_button"))

    # Failures

    def _apologise(self, turn: Turn) -> None:
        self._quietly(lambda: turn.say(turn.t("error")))

    def _quietly(self, action: Callable[[], object]) -> None:
        try:
            action()
        except TelegramError as error:
            log.warning("telegram: %s", error)

"""Creating a client in a short dialog: name, then limit, then days.

Each answer is checked by the panel's own parsers; a bad one asks again.
Where the dialog stands is kept in the database (TelegramDialog), so a
restart of the panel in the middle of it loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from plugins.telegram_bot.keyboards import dialog_keys
from plugins.telegram_bot.models import TelegramDialog
from plugins.telegram_bot.models import end_dialog
from plugins.telegram_bot.models import set_dialog
from plugins.telegram_bot.turn import Panel
from plugins.telegram_bot.turn import Turn
from webpanel.models import Client
from webpanel.services.inputs import ClientError

log = logging.getLogger(__name__)

SKIP = "/skip"
SKIP_WORDS = {SKIP, "-", "skip"}
ECHO_MAX = 40  # how much of a bad answer is quoted back


class CreateDialog:
    def __init__(self, panel: Panel, created: Callable[[Turn, Client], None]) -> None:
        self.panel = panel
        self.created = created

    def begin(self, turn: Turn) -> None:
        set_dialog(turn.chat_id, "create", "name", {})
        turn.say(turn.t("ask_name"), dialog_keys(turn.lang, skip=False))

    def answer(self, turn: Turn, dialog: TelegramDialog, text: str) -> None:
        step = {"name": self._name, "limit": self._limit, "days": self._days}
        step[dialog.step](turn, dialog.answers, text.strip())

    def _name(self, turn: Turn, answers: dict, text: str) -> None:
        clients = self.panel.clients
        try:
            if text.startswith("/"):  # a command (or a stale Skip) is no name
                raise ClientError({"name": "a command"})
            name = clients.clean_name(text)
        except ClientError:
            turn.say(turn.t("name_bad"), dialog_keys(turn.lang, skip=False))
            return
        if Client.select().where(Client.name_key == clients.name_key(name)).exists():
            turn.say(
                turn.t("name_taken", name=name), dialog_keys(turn.lang, skip=False)
            )
            return
        set_dialog(turn.chat_id, "create", "limit", {"name": name})
        turn.say(turn.t("ask_limit"), dialog_keys(turn.lang, skip=True))

    def _limit(self, turn: Turn, answers: dict, text: str) -> None:
        limit = None
        if text.lower() not in SKIP_WORDS:
            try:
                limit = self.panel.clients.parse_limit_gb(text)
            except ClientError:
                turn.say(
                    turn.t("bad_limit", text=text[:ECHO_MAX]),
                    dialog_keys(turn.lang, skip=True),
                )
                return
        set_dialog(turn.chat_id, "create", "days", {**answers, "limit": limit})
        turn.say(turn.t("ask_days"), dialog_keys(turn.lang, skip=True))

    def _days(self, turn: Turn, answers: dict, text: str) -> None:
        days = None
        if text.lower() not in SKIP_WORDS:
            try:
                days = self.panel.clients.parse_days(text)
            except ClientError:
                turn.say(
                    turn.t("bad_days", text=text[:ECHO_MAX]),
                    dialog_keys(turn.lang, skip=True),
                )
                return

        try:
            client = self.panel.clients.create_client(
                answers["name"],
                data_limit=answers.get("limit"),
                days=days,
                actor=turn.actor,
            )
        except ClientError as error:
            # Someone took the name since it was asked: ask for another.
            log.info("telegram dialog: client not created (%s)", error)
            set_dialog(turn.chat_id, "create", "name", {})
            turn.say(turn.t("name_taken", name=answers["name"]))
            return
        end_dialog(turn.chat_id)
        turn.say(turn.t("created", name=client.name))
        self.created(turn, client)

"""An admin in the bot: status, search, client cards with buttons, backups."""

from __future__ import annotations

import logging
from datetime import UTC
from datetime import datetime
from pathlib import Path

from plugins.telegram_bot.client import send_links
from plugins.telegram_bot.dialogs import CreateDialog
from plugins.telegram_bot.keyboards import EXTEND_DAYS
from plugins.telegram_bot.keyboards import card_keys
from plugins.telegram_bot.keyboards import client_keys
from plugins.telegram_bot.keyboards import delete_keys
from plugins.telegram_bot.keyboards import extend_keys
from plugins.telegram_bot.models import TelegramDialog
from plugins.telegram_bot.models import bound_chats
from plugins.telegram_bot.models import end_dialog
from plugins.telegram_bot.models import set_dialog
from plugins.telegram_bot.turn import Panel
from plugins.telegram_bot.turn import Turn
from plugins.telegram_bot.views import amount
from plugins.telegram_bot.views import client_card
from plugins.telegram_bot.views import client_line
from plugins.telegram_bot.views import client_list
from plugins.telegram_bot.views import server_status
from plugins.telegram_bot.views import top_list
from plugins.telegram_bot.views import when
from webpanel.models import Client

log = logging.getLogger(__name__)

COMMANDS = ("status", "find", "clients", "new", "top", "backup")
FIND_SHOWN = 20
LIST_SHOWN = 500  # about six messages; /find reaches the rest
TOP_SHOWN = 10
UPLOAD_MAX = 50 * 1024 * 1024  # what a bot may send as a document


class AdminDesk:
    def __init__(self, panel: Panel) -> None:
        self.panel = panel
        self.dialog = CreateDialog(panel, created=self.show_card)

    def command(self, turn: Turn, name: str, argument: str) -> None:
        if name == "status":
            turn.say(server_status(self.panel.stats.server_stats(), turn.lang))
        elif name == "find":
            self.find(turn, argument)
        elif name == "clients":
            self.list_clients(turn)
        elif name == "new":
            self.dialog.begin(turn)
        elif name == "top":
            rows = self.panel.stats.top_clients(hours=24, limit=TOP_SHOWN)
            keys = client_keys([client for client, _ in rows])
            turn.say(top_list(rows, turn.lang), keys)
        elif name == "backup":
            self.backup(turn)

    def answer(self, turn: Turn, dialog: TelegramDialog, text: str) -> None:
        """Plain text (or /skip) while a dialog is open."""
        if dialog.kind == "find":
            end_dialog(turn.chat_id)
            self.find(turn, text)
        else:
            self.dialog.answer(turn, dialog, text)

    def list_clients(self, turn: Turn) -> None:
        total = Client.select().count()
        shown = list(Client.select().order_by(Client.name_key).limit(LIST_SHOWN))
        text = client_list(shown, turn.lang, total)
        if total > len(shown):
            text += "\n" + turn.t("list_more", count=total - len(shown))
        turn.say(text)

    # Finding

    def find(self, turn: Turn, query: str) -> None:
        query = query.strip()
        if not query:
            set_dialog(turn.chat_id, "find", "query", {})
            turn.say(turn.t("find_ask"))
            return
        found = self.search(query)
        if not found:
            turn.say(turn.t("find_none", query=query[:100]))
        elif len(found) == 1:
            self.show_card(turn, found[0])
        else:
            shown = found[:FIND_SHOWN]
            lines = [turn.t("find_found", count=len(shown))]
            lines += [client_line(client, turn.lang) for client in shown]
            if len(found) > FIND_SHOWN:
                lines.append(turn.t("find_more", shown=FIND_SHOWN))
            turn.say("\n".join(lines), client_keys(shown))

    def search(self, query: str) -> list[Client]:
        """The exact match (name, key or UUID) first, then names containing it."""
        exact = self.panel.clients.find_client(query)
        similar = (
            Client.select()
            .where(Client.name_key.contains(self.panel.clients.name_key(query)))
            .order_by(Client.name_key)
            .limit(FIND_SHOWN + 1)
        )
        found = [exact] if exact else []
        return found + [c for c in similar if exact is None or c.id != exact.id]

    # Cards and their buttons

    def show_card(self, turn: Turn, client: Client, *, edit: bool = False) -> None:
        text = client_card(client, len(bound_chats(client.id)), turn.lang)
        keys = card_keys(client, turn.lang)
        if edit:
            turn.edit(text, keys)
        else:
            turn.say(text, keys)

    def on_button(self, turn: Turn, parts: list[str]) -> None:
        """a:ACTION:CLIENT_ID[:ARGUMENT], as made by keyboards.py."""
        action, client_id, argument = (parts + ["", "", ""])[:3]
        presses = {
            "open": self._press_open,
            "card": self._press_card,
            "on": self._press_on,
            "off": self._press_off,
            "reset": self._press_reset,
            "ext": self._press_ext,
            "link": self._press_link,
            "uuid": self._press_uuid,
            "inv": self._press_inv,
            "del": self._press_del,
        }
        press = presses.get(action)
        if press is None or not (client_id.isascii() and client_id.isdigit()):
            turn.toast(turn.t("stale_button"))
            return
        client = Client.get_or_none(Client.id == int(client_id))
        if client is None:
            turn.toast(turn.t("client_gone"))
            return
        press(turn, client, argument)

    def _press_open(self, turn: Turn, client: Client, _: str) -> None:
        turn.toast()
        self.show_card(turn, client)

    def _press_card(self, turn: Turn, client: Client, _: str) -> None:
        turn.toast()
        self.show_card(turn, client, edit=True)

    def _press_on(self, turn: Turn, client: Client, _: str) -> None:
        client = self.panel.clients.enable_client(client, actor=turn.actor)
        turn.toast(turn.t("done_enabled"))
        self.show_card(turn, client, edit=True)

    def _press_off(self, turn: Turn, client: Client, _: str) -> None:
        client = self.panel.clients.disable_client(client, actor=turn.actor)
        turn.toast(turn.t("done_disabled"))
        self.show_card(turn, client, edit=True)

    def _press_reset(self, turn: Turn, client: Client, _: str) -> None:
        client = self.panel.clients.reset_usage(client, actor=turn.actor)
        turn.toast(turn.t("done_reset"))
        self.show_card(turn, client, edit=True)

    def _press_ext(self, turn: Turn, client: Client, days: str) -> None:
        if not days:
            turn.toast()
            turn.edit(
                turn.t("extend_choose", name=client.name),
                extend_keys(client.id, turn.lang),
            )
            return
        if not (days.isascii() and days.isdigit()) or int(days) not in EXTEND_DAYS:
            turn.toast(turn.t("stale_button"))
            return
        try:
            client = self.panel.clients.extend_client(
                client, int(days), actor=turn.actor
            )
        except self.panel.clients.ClientError as error:
            turn.toast(next(iter(error.errors.values())))
            return
        turn.toast(turn.t("done_extended", n=days))
        self.show_card(turn, client, edit=True)

    def _press_link(self, turn: Turn, client: Client, _: str) -> None:
        turn.toast()
        send_links(turn, self.panel, client)

    def _press_uuid(self, turn: Turn, client: Client, _: str) -> None:
        client = self.panel.clients.regenerate_uuid(client, actor=turn.actor)
        turn.toast(turn.t("done_new_link"))
        self.show_card(turn, client, edit=True)
        send_links(turn, self.panel, client)

    def _press_inv(self, turn: Turn, client: Client, _: str) -> None:
        code = self.panel.invites.make_invite(client, actor=turn.actor).code
        username = self.panel.username()
        link = f"https://t.me/{username}?start={code}" if username else f"/start {code}"
        turn.toast()
        turn.say(turn.t("invite_made", name=client.name, link=link))

    def _press_del(self, turn: Turn, client: Client, confirmed: str) -> None:
        if confirmed != "yes":
            turn.toast()
            turn.edit(
                turn.t("confirm_delete", name=client.name),
                delete_keys(client.id, turn.lang),
            )
            return
        name = client.name
        self.panel.clients.delete_client(client, actor=turn.actor)
        turn.toast()
        turn.edit(turn.t("deleted", name=name))

    # Backups

    def backup(self, turn: Turn) -> None:
        backup = self.panel.backup
        try:
            path = backup.backup_database(self.panel.backup_folder)
        except backup.BackupError as error:
            turn.say(turn.t("backup_failed", reason=str(error)))
            return
        size = path.stat().st_size
        if size > UPLOAD_MAX:
            turn.say(turn.t("backup_too_big", size=amount(size, turn.lang), path=path))
            return
        caption = turn.t("backup_caption", when=when(_modified(path)))
        turn.api.send_document(turn.chat_id, path.read_bytes(), path.name, caption)
        log.info(
            "telegram: database backup %s sent to admin %s", path.name, turn.user_id
        )


def _modified(path: Path) -> datetime:
    """A file's modification time as the naive UTC the views expect."""
    return datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(tzinfo=None)

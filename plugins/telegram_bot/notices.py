"""Notices from the panel's signals and a periodic check, each sent once.

Signal handlers run in the thread of whatever changed (a job, a page), so
they only write: the key of the notice (TelegramNotice, so it is never sent
twice, even after a restart) and its messages (TelegramOutbox), in one
transaction. A thread of the bot sends the outbox, waiting out Telegram's
limits without holding up the panel's jobs.

Keys name the client and what the notice is about, including the limit or
the expiry date it was about: a new limit or a later date makes new keys.
A usage reset forgets the usage keys, so the next period warns again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from datetime import timedelta
from types import SimpleNamespace

from plugins.telegram_bot.keyboards import open_keys
from plugins.telegram_bot.models import TelegramNotice
from plugins.telegram_bot.models import TelegramOutbox
from plugins.telegram_bot.models import bound_chats
from plugins.telegram_bot.models import chat_language
from plugins.telegram_bot.models import claim_notice
from plugins.telegram_bot.models import forget_notices
from plugins.telegram_bot.texts import t
from plugins.telegram_bot.transport import Api
from plugins.telegram_bot.transport import Refused
from plugins.telegram_bot.views import amount
from plugins.telegram_bot.views import left
from plugins.telegram_bot.views import percent
from plugins.telegram_bot.views import when
from webpanel.models import IN_XRAY
from webpanel.models import Client
from webpanel.models import Node
from webpanel.models import db
from webpanel.models import utcnow

log = logging.getLogger(__name__)

WARN_PERCENT = 80  # the usage warning
EXPIRY_WARNINGS = (("e3", timedelta(days=3)), ("e1", timedelta(days=1)))
OUTBOX_BATCH = 50


class Notices:
    def __init__(
        self,
        signals: SimpleNamespace,
        admin_ids: frozenset[int],
        wake: Callable[[], None],
    ) -> None:
        self.signals = signals
        self.admin_ids = admin_ids
        self.wake = wake

    def connect(self) -> None:
        self.signals.client_changed.connect(self._on_client, weak=False)
        self.signals.node_changed.connect(self._on_node, weak=False)

    def disconnect(self) -> None:
        self.signals.client_changed.disconnect(self._on_client)
        self.signals.node_changed.disconnect(self._on_node)

    # Signals: never let a failure here break the service that sent them

    def _on_client(self, client: Client, event: str = "", **_: object) -> None:
        try:
            self.client_event(client, event)
        except Exception:
            log.exception("telegram: notice for client %s failed", client.email)

    def _on_node(self, node: Node, event: str = "", **details: object) -> None:
        try:
            count = int(details.get("count") or 0)
            seconds = float(details.get("seconds") or 0)
            self.node_event(node, event, count, seconds)
        except Exception:
            log.exception("telegram: notice for node %s failed", node.name)

    def client_event(self, client: Client, event: str) -> None:
        prefix = f"c{client.id}:"
        if event == "limited":
            self.notify_client(client, "u100", f"{prefix}u100:{client.data_limit}")
        elif event == "expired":
            self.notify_client(
                client, "expired", f"{prefix}x:{_stamp(client.expire_at)}"
            )
        elif event == "reset":
            forget_notices(f"{prefix}u")
        elif event == "deleted":
            forget_notices(prefix)

    def node_event(self, node: Node, event: str, count: int, seconds: float) -> None:
        down_key = f"n{node.id}:down"
        if event == "down" and claim_notice(down_key):
            self.notify_admins("n_node_down", node=node.name)
        elif event == "up" and _unclaim(down_key):
            self.notify_admins("n_node_up", node=node.name)
        elif event == "restarted":
            self.notify_admins("n_node_restarted", node=node.name)
        elif event == "restored" and count > 0:
            self.notify_admins(
                "n_node_restored", node=node.name, count=count, seconds=f"{seconds:.1f}"
            )

    # The periodic check: usage past 80 %, expiry within 3 days and 1 day

    def check(self, now: datetime | None = None) -> int:
        """Queue the warnings that are due; returns how many were new."""
        now = now or utcnow()
        sent = 0
        used = Client.uplink + Client.downlink
        limit = Client.data_limit
        warn = (
            limit.is_null(False) & (used * 100 >= limit * WARN_PERCENT) & (used < limit)
        )
        for client in Client.select().where(Client.status.in_(IN_XRAY) & warn):
            sent += self.notify_client(
                client, "u80", f"c{client.id}:u80:{client.data_limit}"
            )

        soon = Client.expire_at.between(now, now + EXPIRY_WARNINGS[0][1])
        for client in Client.select().where(Client.status.in_(IN_XRAY) & soon):
            remaining = client.expire_at - now
            due = [name for name, ahead in EXPIRY_WARNINGS if remaining <= ahead]
            stamp = _stamp(client.expire_at)
            keys = [f"c{client.id}:{name}:{stamp}" for name in due]
            # Only the nearest warning is sent; the farther one counts as sent.
            for key in keys[:-1]:
                claim_notice(key)
            sent += self.notify_client(client, "expiry", keys[-1], now)
        return sent

    # Queueing

    def notify_client(
        self, client: Client, kind: str, key: str, now: datetime | None = None
    ) -> bool:
        """Queue a notice to the client's chats and to the admins, once per key."""
        with db.atomic():
            if not claim_notice(key):
                return False
            for chat_id in bound_chats(client.id):
                lang = chat_language(chat_id)
                self._queue(
                    chat_id, t(lang, f"n_{kind}_client", **_facts(client, lang, now))
                )
            for chat_id in self.admin_ids:
                lang = chat_language(chat_id)
                text = t(lang, f"n_{kind}_admin", **_facts(client, lang, now))
                self._queue(chat_id, text, open_keys(client, lang).to_json())
        log.info("telegram: notice %s queued", key)
        self.wake()
        return True

    def notify_admins(self, key: str, **values: object) -> None:
        with db.atomic():
            for chat_id in self.admin_ids:
                self._queue(chat_id, t(chat_language(chat_id), key, **values))
        self.wake()

    def _queue(self, chat_id: int, text: str, markup: str = "") -> None:
        TelegramOutbox.create(chat_id=chat_id, text=text, markup=markup)

    # Sending (in the bot's outbox thread)

    def flush(self, api: Api) -> int:
        """Send what waits, oldest first; returns how many rows were done with.

        Unreachable (raised) leaves the rest for the next round.
        """
        batch = list(
            TelegramOutbox.select().order_by(TelegramOutbox.id).limit(OUTBOX_BATCH)
        )
        for row in batch:
            try:
                api.send_text(row.chat_id, row.text, row.markup or None)
            except Refused as error:
                # Blocked by the user, never started, chat gone: drop it.
                log.info("telegram: notice to chat %s dropped: %s", row.chat_id, error)
            row.delete_instance()
        return len(batch)


def _facts(client: Client, lang: str, now: datetime | None) -> dict[str, object]:
    """What the notice templates may mention, in the reader's language."""
    facts: dict[str, object] = {
        "name": client.name,
        "used": amount(client.used, lang),
        "limit": amount(client.data_limit, lang),
        "percent": percent(client),
    }
    if client.expire_at is not None:
        facts["when"] = when(client.expire_at)
        facts["left"] = left(client.expire_at, lang, now)
    return facts


def _stamp(moment: datetime | None) -> str:
    return moment.strftime("%Y%m%d%H%M") if moment else "never"


def _unclaim(key: str) -> bool:
    return TelegramNotice.delete().where(TelegramNotice.key == key).execute() > 0

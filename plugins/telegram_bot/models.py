"""The bot's own tables: chats, bindings to clients, dialogs, notices, outbox.

They live in the panel's database, created at start (`create_tables`, safe);
the panel's migrations know nothing of them.
"""

from __future__ import annotations

import json
from datetime import timedelta

from peewee import BigIntegerField
from peewee import BooleanField
from peewee import CharField
from peewee import DateTimeField
from peewee import ForeignKeyField
from peewee import IntegrityError
from peewee import TextField

from webpanel.models import BaseModel
from webpanel.models import Client
from webpanel.models import db
from webpanel.models import utcnow

DIALOG_KEPT = timedelta(days=1)  # an untouched dialog is forgotten after this


class TelegramChat(BaseModel):
    """A private chat we have seen, and the language it reads."""

    chat_id = BigIntegerField(primary_key=True)
    language = CharField(max_length=8, default="en")
    chosen = BooleanField(default=False)  # set by /lang: language_code no longer rules
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "telegram_chat"


class TelegramBinding(BaseModel):
    """A Telegram chat bound to a client by an invite code."""

    chat_id = BigIntegerField(index=True)
    client = ForeignKeyField(Client, on_delete="CASCADE", backref="+")
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "telegram_binding"
        indexes = ((("chat_id", "client"), True),)


class TelegramDialog(BaseModel):
    """Where a chat is in a multi-step dialog, kept across restarts."""

    chat_id = BigIntegerField(primary_key=True)
    kind = CharField(max_length=16)  # create, find
    step = CharField(max_length=16)
    payload = TextField(default="{}")  # JSON of the answers so far
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "telegram_dialog"

    @property
    def answers(self) -> dict:
        return json.loads(self.payload)


class TelegramNotice(BaseModel):
    """A notice already sent: its key is never sent again."""

    key = CharField(max_length=128, primary_key=True)
    sent_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "telegram_notice"


class TelegramOutbox(BaseModel):
    """A notice waiting to be sent: written by signal handlers, sent by a thread."""

    chat_id = BigIntegerField()
    text = TextField()
    markup = TextField(default="")  # JSON of an inline keyboard, or empty
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "telegram_outbox"


MODELS = [TelegramChat, TelegramBinding, TelegramDialog, TelegramNotice, TelegramOutbox]


def create_tables() -> None:
    db.create_tables(MODELS, safe=True)


def claim_notice(key: str) -> bool:
    """True the first time a key is claimed, in this process or any before it."""
    try:
        with db.atomic():
            TelegramNotice.create(key=key[:128])
    except IntegrityError:
        return False
    return True


def forget_notices(prefix: str) -> None:
    """Let notices starting with prefix be sent again (a reset, a new limit)."""
    TelegramNotice.delete().where(TelegramNotice.key.startswith(prefix)).execute()


def bound_chats(client_id: int) -> list[int]:
    query = TelegramBinding.select(TelegramBinding.chat_id).where(
        TelegramBinding.client == client_id
    )
    return [row.chat_id for row in query]


def bound_clients(chat_id: int) -> list[Client]:
    query = (
        Client.select()
        .join(TelegramBinding, on=TelegramBinding.client == Client.id)
        .where(TelegramBinding.chat_id == chat_id)
        .order_by(Client.id)
    )
    return list(query)


def bind(chat_id: int, client: Client) -> None:
    TelegramBinding.insert(
        chat_id=chat_id, client=client, created_at=utcnow()
    ).on_conflict_ignore().execute()


def chat_language(chat_id: int) -> str:
    chat = TelegramChat.get_or_none(TelegramChat.chat_id == chat_id)
    return chat.language if chat else "en"


def get_dialog(chat_id: int) -> TelegramDialog | None:
    dialog = TelegramDialog.get_or_none(TelegramDialog.chat_id == chat_id)
    if dialog is not None and dialog.updated_at < utcnow() - DIALOG_KEPT:
        dialog.delete_instance()
        return None
    return dialog


def set_dialog(chat_id: int, kind: str, step: str, answers: dict) -> None:
    row = {
        TelegramDialog.kind: kind,
        TelegramDialog.step: step,
        TelegramDialog.payload: json.dumps(answers),
        TelegramDialog.updated_at: utcnow(),
    }
    (
        TelegramDialog.insert({TelegramDialog.chat_id: chat_id, **row})
        .on_conflict(conflict_target=[TelegramDialog.chat_id], update=row)
        .execute()
    )


def end_dialog(chat_id: int) -> bool:
    return (
        TelegramDialog.delete().where(TelegramDialog.chat_id == chat_id).execute() > 0
    )

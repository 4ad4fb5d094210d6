"""Inline buttons and their callback data.

Callback data carries ids, never names, and Telegram allows 64 bytes of it:
`button_data` refuses anything longer. The first part says whose button it
is: `a` an admin's, `m` a client's own, `d` a dialog's, `l` a language.
"""

from __future__ import annotations

from telebot.types import InlineKeyboardButton
from telebot.types import InlineKeyboardMarkup

from plugins.telegram_bot.texts import plain
from webpanel.models import Client

MAX_DATA = 64
LABEL_MAX = 40
EXTEND_DAYS = (7, 30, 90, 365)


def button_data(*parts: object) -> str:
    data = ":".join(str(part) for part in parts)
    if len(data.encode()) > MAX_DATA:
        raise ValueError(f"callback data over {MAX_DATA} bytes: {data[:20]}…")
    return data


def button(label: str, *parts: object) -> InlineKeyboardButton:
    return InlineKeyboardButton(label, callback_data=button_data(*parts))


def keyboard(*rows: list[InlineKeyboardButton]) -> InlineKeyboardMarkup:
    markup = InlineKeyboardMarkup()
    for row in rows:
        if row:
            markup.row(*row)
    return markup


def short(label: str) -> str:
    return label if len(label) <= LABEL_MAX else label[: LABEL_MAX - 1] + "…"


def card_keys(client: Client, lang: str) -> InlineKeyboardMarkup:
    toggle = (
        button(plain(lang, "btn_enable"), "a", "on", client.id)
        if client.status == "disabled"
        else button(plain(lang, "btn_disable"), "a", "off", client.id)
    )
    return keyboard(
        [toggle, button(plain(lang, "btn_reset"), "a", "reset", client.id)],
        [
            # A client that never expires has nothing to extend.
            *(
                [button(plain(lang, "btn_extend"), "a", "ext", client.id)]
                if client.expire_at is not None or client.on_hold_days is not None
                else []
            ),
            button(plain(lang, "btn_invite"), "a", "inv", client.id),
        ],
        [
            button(plain(lang, "btn_links"), "a", "link", client.id),
            button(plain(lang, "btn_new_link"), "a", "uuid", client.id),
        ],
        [button(plain(lang, "btn_delete"), "a", "del", client.id)],
    )


def extend_keys(client_id: int, lang: str) -> InlineKeyboardMarkup:
    days = [
        button(plain(lang, "btn_days", n=n), "a", "ext", client_id, n)
        for n in EXTEND_DAYS
    ]
    return keyboard(days, [button(plain(lang, "btn_back"), "a", "card", client_id)])


def delete_keys(client_id: int, lang: str) -> InlineKeyboardMarkup:
    return keyboard(
        [
            button(plain(lang, "btn_yes_delete"), "a", "del", client_id, "yes"),
            button(plain(lang, "btn_cancel"), "a", "card", client_id),
        ]
    )


def client_keys(clients: list[Client]) -> InlineKeyboardMarkup | None:
    """One button per client, opening its card."""
    if not clients:
        return None
    return keyboard(*[[button(short(c.name), "a", "open", c.id)] for c in clients])


def open_keys(client: Client, lang: str) -> InlineKeyboardMarkup:
    label = plain(lang, "btn_open", name=short(client.name))
    return keyboard([button(label, "a", "open", client.id)])


def own_keys(client_id: int, lang: str) -> InlineKeyboardMarkup:
    return keyboard(
        [
            button(plain(lang, "btn_link"), "m", "link", client_id),
            button(plain(lang, "btn_usage"), "m", "usage", client_id),
        ]
    )


def language_keys() -> InlineKeyboardMarkup:
    return keyboard([button("English", "l", "en"), button("Русский", "l", "ru")])


def dialog_keys(lang: str, skip: bool) -> InlineKeyboardMarkup:
    row = [button(plain(lang, "btn_skip"), "d", "skip")] if skip else []
    return keyboard(row + [button(plain(lang, "btn_cancel"), "d", "cancel")])

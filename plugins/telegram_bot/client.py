"""A client in the bot: binding with an invite, links, QR codes, usage."""

from __future__ import annotations

import io
import logging
import re

import segno

from plugins.telegram_bot.keyboards import own_keys
from plugins.telegram_bot.models import bind
from plugins.telegram_bot.models import bound_clients
from plugins.telegram_bot.texts import Html
from plugins.telegram_bot.texts import escape
from plugins.telegram_bot.turn import Panel
from plugins.telegram_bot.turn import Turn
from plugins.telegram_bot.views import client_summary
from webpanel.models import Client

log = logging.getLogger(__name__)

# Telegram's deep-link parameter: what an invite code can look like.
CODE_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def qr_png(text: str) -> bytes:
    """A QR code of text as PNG bytes, big enough to scan from a phone screen."""
    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buffer, kind="png", scale=6, border=2)
    return buffer.getvalue()


def subscription_url(panel: Panel, client: Client) -> str | None:
    """The client's subscription URL, once the panel has subscriptions."""
    make = getattr(panel.links, "subscription_url", None)
    if not callable(make):
        return None
    try:
        return make(client) or None
    except Exception:
        log.warning("no subscription URL for client %s", client.email, exc_info=True)
        return None


def send_links(turn: Turn, panel: Panel, client: Client) -> None:
    """Every link of the client as text to copy, then each as a QR code."""
    links = panel.links.client_links(client)
    subscription = subscription_url(panel, client)
    if not links and not subscription:
        turn.say(turn.t("no_link"))
        return

    lines = []
    for node, link in links:
        lines += [
            turn.t("link_for", node=node.name),
            Html(f"<code>{escape(link)}</code>"),
        ]
    if subscription:
        lines.append(turn.t("subscription", url=subscription))
    lines.append(turn.t("link_hint"))
    turn.say("\n".join(lines))

    codes = [(turn.t("qr_caption", node=node.name), link) for node, link in links]
    if subscription:
        codes.append((turn.t("qr_subscription"), subscription))
    for caption, text in codes:
        turn.api.send_photo(turn.chat_id, qr_png(text), caption)


class ClientDesk:
    """The commands and buttons of a chat bound to one or more clients."""

    def __init__(self, panel: Panel) -> None:
        self.panel = panel

    def redeem(self, turn: Turn, code: str) -> None:
        """`/start CODE`: bind this chat to the invite's client, then show it."""
        client = None
        if CODE_SHAPE.fullmatch(code):
            client = self.panel.invites.redeem_invite(code, actor=turn.actor)
        if client is None:
            log.info("telegram user %s sent an unknown or used invite", turn.user_id)
            turn.say(turn.t("invite_bad"))
            return
        bind(turn.chat_id, client)
        log.info("telegram chat %s bound to client %s", turn.chat_id, client.email)
        turn.say(turn.t("bound", name=client.name))
        self.show(turn, client)

    def clients(self, turn: Turn) -> list[Client]:
        return bound_clients(turn.chat_id)

    def show(self, turn: Turn, client: Client) -> None:
        turn.say(client_summary(client, turn.lang), own_keys(client.id, turn.lang))
        send_links(turn, self.panel, client)

    def command(self, turn: Turn, name: str) -> bool:
        """/link or /usage for each bound client; False if the chat has none."""
        clients = self.clients(turn)
        for client in clients:
            if name == "link":
                send_links(turn, self.panel, client)
            else:
                turn.say(
                    client_summary(client, turn.lang), own_keys(client.id, turn.lang)
                )
        return bool(clients)

    def on_button(self, turn: Turn, parts: list[str]) -> None:
        """m:link:ID or m:usage:ID, for a client bound to this chat only."""
        action, client_id = (parts + ["", ""])[:2]
        mine = {client.id: client for client in self.clients(turn)}
        client = (
            mine.get(int(client_id))
            if client_id.isascii() and client_id.isdigit()
            else None
        )
        if client is None or action not in ("link", "usage"):
            turn.toast(turn.t("stale_button"))
            return
        turn.toast()
        if action == "link":
            send_links(turn, self.panel, client)
        else:
            turn.edit(client_summary(client, turn.lang), own_keys(client.id, turn.lang))

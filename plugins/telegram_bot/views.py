"""Messages built from the panel's records: cards, lists, status, usage."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

from plugins.telegram_bot.texts import Html
from plugins.telegram_bot.texts import escape
from plugins.telegram_bot.texts import t
from webpanel.models import STATUSES
from webpanel.models import Client
from webpanel.models import utcnow
from webpanel.settings import current_settings

UNITS = {"en": ("B", "KB", "MB", "GB", "TB"), "ru": ("Б", "КБ", "МБ", "ГБ", "ТБ")}
STATUS_ICONS = {
    "active": "✅",
    "on_hold": "⏳",
    "disabled": "⏸",
    "limited": "⛔",
    "expired": "⌛",
}
NODE_ICONS = {"online": "🟢", "out_of_sync": "🟡", "offline": "🔴", "unchecked": "⚪"}


def amount(value: int | None, lang: str) -> str:
    """Bytes as people read them, 1 KB = 1024 B as in the limits; None is ∞."""
    if value is None:
        return "∞"
    units = UNITS.get(lang, UNITS["en"])
    size, unit = float(value), units[0]
    for unit in units:
        if abs(size) < 1024 or unit == units[-1]:
            break
        size /= 1024
    text = f"{int(size)} {unit}" if unit == units[0] else f"{size:.2f} {unit}"
    return text.replace(".", ",") if lang == "ru" else text


def when(moment: datetime) -> str:
    """A stored UTC time in the panel's time zone."""
    local = moment.replace(tzinfo=UTC).astimezone(current_settings().tz)
    return local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or "")


def left(moment: datetime, lang: str, now: datetime | None = None) -> str:
    """How long until moment, rounded: hours under two days, then days."""
    seconds = (moment - (now or utcnow())).total_seconds()
    if seconds < 0:
        return t(lang, "passed")
    hours = round(seconds / 3600)
    if hours < 48:
        return t(lang, "in_hours", n=max(hours, 1))
    return t(lang, "in_days", n=round(seconds / 86400))


def percent(client: Client) -> int:
    if not client.data_limit:
        return 100
    return min(999, client.used * 100 // client.data_limit)


def status_name(status: str, lang: str) -> str:
    return t(lang, f"status_{status}")


def usage_line(client: Client, lang: str) -> Html:
    used = amount(client.used, lang)
    if client.data_limit is None:
        return t(lang, "usage_unlimited", used=used)
    limit = amount(client.data_limit, lang)
    return t(lang, "usage_of", used=used, limit=limit, percent=percent(client))


def expiry_line(client: Client, lang: str) -> Html:
    if client.expire_at is not None:
        if client.expire_at <= utcnow():
            return t(lang, "expired_at", when=when(client.expire_at))
        stamp = when(client.expire_at)
        return t(lang, "expires", when=stamp, left=left(client.expire_at, lang))
    if client.on_hold_days is not None:
        return t(lang, "on_hold", days=client.on_hold_days)
    return t(lang, "no_expiry")


def client_summary(client: Client, lang: str) -> Html:
    """Name, status, usage and expiry: what both a client and an admin see."""
    lines = [
        Html(f"👤 <b>{escape(client.name)}</b>"),
        t(lang, "status_line", status=status_name(client.status, lang)),
        usage_line(client, lang),
        expiry_line(client, lang),
    ]
    return Html("\n".join(lines))


def client_card(client: Client, chats: int, lang: str) -> Html:
    """The admin's view of one client."""
    lines = [client_summary(client, lang), t(lang, "card_key", email=client.email)]
    if client.last_traffic_at is not None:
        lines.append(t(lang, "card_last", when=when(client.last_traffic_at)))
    else:
        lines.append(t(lang, "card_never"))
    if chats:
        lines.append(t(lang, "card_chats", count=chats))
    if client.pending:
        lines.append(t(lang, "card_pending"))
    return Html("\n".join(lines))


def client_line(client: Client, lang: str) -> Html:
    icon = STATUS_ICONS.get(client.status, "•")
    usage = f"{amount(client.used, lang)} / {amount(client.data_limit, lang)}"
    return Html(f"{icon} {escape(client.name)}: {escape(usage)}")


def client_list(clients: list[Client], lang: str, total: int) -> Html:
    if not clients:
        return t(lang, "list_empty")
    lines = [t(lang, "list_head", count=total)]
    lines += [client_line(client, lang) for client in clients]
    return Html("\n".join(lines))


def top_list(rows: list[tuple[Client, int]], lang: str) -> Html:
    if not rows:
        return t(lang, "top_empty")
    lines = [t(lang, "top_head")]
    for place, (client, total) in enumerate(rows, start=1):
        lines.append(Html(f"{place}. {escape(client.name)}: {amount(total, lang)}"))
    return Html("\n".join(lines))


def server_status(stats: object, lang: str) -> Html:
    """stats: webpanel.services.stats.ServerStats."""
    lines = [t(lang, "status_head"), t(lang, "nodes_head")]
    for node in stats.nodes:
        state = node.state
        lines.append(
            t(
                lang,
                "node_line",
                icon=NODE_ICONS.get(state, "•"),
                name=node.name,
                state=t(lang, f"node_{state}"),
            )
        )
    lines.append(t(lang, "clients_total", total=stats.clients_total))
    for status in STATUSES:
        count = stats.clients_by_status.get(status, 0)
        if count:
            name = status_name(status, lang)
            lines.append(t(lang, "clients_status", status=name, count=count))
    lines.append(t(lang, "traffic_today", amount=amount(stats.traffic_today, lang)))
    return Html("\n".join(lines))

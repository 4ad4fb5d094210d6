"""What the bot says, in English and Russian.

Templates are HTML for Telegram's HTML parse mode. `t()` escapes every value
put into them, unless it is `Html` (already safe, built by us), so a client
named `<b>&` shows as typed and can't break a message.
"""

from __future__ import annotations

import html

LANGUAGES = ("en", "ru")


class Html(str):
    """Text that is already valid Telegram HTML: inserted as it is."""


def escape(value: object) -> Html:
    return Html(html.escape(str(value), quote=False))


def language_for(code: str | None) -> str:
    """Russian for a `ru…` language_code, English for anything else."""
    return "ru" if (code or "").lower().startswith("ru") else "en"


def t(lang: str, key: str, **values: object) -> Html:
    template = TEXTS.get(lang, TEXTS["en"]).get(key) or TEXTS["en"][key]
    safe = {k: v if isinstance(v, Html) else escape(v) for k, v in values.items()}
    return Html(template.format(**safe))


def plain(lang: str, key: str, **values: object) -> str:
    """A text for a button label, which Telegram shows as is: nothing escaped."""
    template = TEXTS.get(lang, TEXTS["en"]).get(key) or TEXTS["en"][key]
    return template.format(**values)


EN = {
    # Anyone
    "unknown_command": "I don't know that command. /help shows what I can do.",
    "error": "Something went wrong on our side. Please try again later.",
    "stale_button": "This button is out of date.",
    "client_gone": "This client no longer exists.",
    "choose_language": "Choose a language:",
    "language_set": "Language: English.",
    "cancelled": "Cancelled.",
    "nothing_to_cancel": "There is nothing to cancel.",
    "help_stranger": (
        "👋 This bot serves the clients of a private VPN.\n"
        "To link your Telegram, open the invite link your administrator sent you."
    ),
    "invite_bad": (
        "⚠️ This invite is not valid: it was used already or has expired. "
        "Ask your administrator for a new one."
    ),
    # Clients
    "help_client": (
        "/link: your connection link and QR code\n"
        "/usage: traffic and expiry\n"
        "/lang: language"
    ),
    "bound": "✅ Your Telegram is now linked to <b>{name}</b>.",
    "status_line": "Status: {status}",
    "usage_of": "Traffic: {used} of {limit} ({percent} %)",
    "usage_unlimited": "Traffic: {used} (no limit)",
    "expires": "Valid until: {when} ({left})",
    "expired_at": "Expired: {when}",
    "no_expiry": "No expiry",
    "on_hold": "Starts at the first connection, then lasts {days} days",
    "link_for": "🔗 Link for {node}:",
    "link_hint": "Tap a link to copy it, or scan its QR code in your app.",
    "no_link": "Your link is not ready yet. Ask your administrator.",
    "subscription": "📥 Subscription: {url}",
    "qr_caption": "QR code: {node}",
    "qr_subscription": "QR code: subscription",
    "btn_link": "🔗 Link & QR",
    "btn_usage": "📊 Usage",
    "in_days": "in {n} d",
    "in_hours": "in {n} h",
    "passed": "passed",
    "status_active": "active ✅",
    "status_on_hold": "waiting for first use ⏳",
    "status_disabled": "disabled ⏸",
    "status_limited": "limit reached ⛔",
    "status_expired": "expired ⌛",
    # Admins
    "help_admin": (
        "/status: nodes, clients, today's traffic\n"
        "/find NAME: find a client (or just send a name)\n"
        "/clients: every client\n"
        "/new: create a client\n"
        "/top: top traffic, last 24 h\n"
        "/backup: the database as a file\n"
        "/lang: language\n"
        "/cancel: stop a dialog"
    ),
    "status_head": "📊 <b>Server status</b>",
    "nodes_head": "Nodes:",
    "node_line": "{icon} {name}: {state}",
    "node_online": "online",
    "node_out_of_sync": "online, catching up",
    "node_offline": "offline",
    "node_unchecked": "not checked yet",
    "clients_total": "Clients: {total}",
    "clients_status": "  {status}: {count}",
    "traffic_today": "Traffic today (UTC): {amount}",
    "find_ask": "Send a name, key (like c42) or UUID to look for.",
    "find_none": "Nothing found for «{query}».",
    "find_found": "Found: {count}",
    "find_more": "Showing the first {shown}; narrow the search to see others.",
    "list_head": "👥 <b>Clients</b>: {count}",
    "list_empty": "No clients yet. /new creates one.",
    "list_more": "…and {count} more: /find narrows the list.",
    "top_head": "🏆 <b>Top traffic, last 24 h</b>",
    "top_empty": "No traffic in the last 24 hours.",
    "card_key": "Key: <code>{email}</code>",
    "card_last": "Last traffic: {when}",
    "card_never": "Last traffic: none yet",
    "card_chats": "Telegram chats: {count}",
    "card_pending": "⚠️ Waiting for a node to take the change.",
    "btn_enable": "▶️ Enable",
    "btn_disable": "⏸ Disable",
    "btn_reset": "🔄 Reset usage",
    "btn_extend": "📅 Extend",
    "btn_links": "🔗 Link & QR",
    "btn_new_link": "🔑 New link",
    "btn_invite": "✉️ Invite",
    "btn_delete": "🗑 Delete",
    "btn_back": "« Back",
    "btn_yes_delete": "🗑 Yes, delete",
    "btn_cancel": "Cancel",
    "btn_days": "+{n} d",
    "btn_skip": "Skip",
    "btn_open": "Open {name}",
    "done_enabled": "Enabled.",
    "done_disabled": "Disabled. Open connections last until they close.",
    "done_reset": "Usage reset.",
    "done_extended": "Extended by {n} days.",
    "done_new_link": "New link made: the old one no longer connects.",
    "extend_choose": "📅 Extend <b>{name}</b> by how many days?",
    "confirm_delete": (
        "🗑 Delete <b>{name}</b>? Its link stops working. This can't be undone."
    ),
    "deleted": "🗑 <b>{name}</b> was deleted.",
    "invite_made": "✉️ Invite for <b>{name}</b> (works once, for 7 days):\n{link}",
    "ask_name": "➕ New client. Send a name, or /cancel.",
    "name_taken": "A client named «{name}» already exists. Send another name.",
    "name_bad": (
        "A name is 1 to 64 characters, with no control or invisible characters,"
        " and can't look like a key (c12) or a UUID. Try again."
    ),
    "ask_limit": "Data limit in GB (for example 50), or /skip for no limit.",
    "bad_limit": "«{text}» is not a number of GB above 0. Send one like 50, or /skip.",
    "ask_days": "Days until it expires (for example 30), or /skip for no expiry.",
    "bad_days": "«{text}» is not a whole number of days (1 to 36500). Try again.",
    "created": "✅ Client <b>{name}</b> created.",
    "backup_caption": "💾 Database backup, {when}",
    "backup_failed": "The backup failed: {reason}",
    "backup_too_big": (
        "The backup is {size}, over Telegram's 50 MB; it is kept at {path}"
    ),
    # Notices
    "n_u80_client": "⚠️ You have used {percent} % of your traffic: {used} of {limit}.",
    "n_u80_admin": (
        "⚠️ <b>{name}</b> has used {percent} % of the limit: {used} of {limit}."
    ),
    "n_u100_client": "⛔ Your traffic ({limit}) is used up; the connection is paused.",
    "n_u100_admin": "⛔ <b>{name}</b> used up the limit of {limit} and was paused.",
    "n_expiry_client": "⏳ Your subscription ends {when} ({left}).",
    "n_expiry_admin": "⏳ <b>{name}</b> expires {when} ({left}).",
    "n_expired_client": (
        "⌛ Your subscription has expired. Ask your administrator to renew it."
    ),
    "n_expired_admin": "⌛ <b>{name}</b> expired and was paused.",
    "n_node_down": "🔴 Node <b>{node}</b> is down: its Xray API does not answer.",
    "n_node_up": "🟢 Node <b>{node}</b> answers again.",
    "n_node_restarted": "🔄 Node <b>{node}</b> restarted.",
    "n_node_restored": "✅ Node <b>{node}</b>: {count} users restored in {seconds} s.",
}

RU = {
    "unknown_command": "Такой команды нет. /help покажет, что я умею.",
    "error": "Что-то пошло не так. Попробуйте позже.",
    "stale_button": "Эта кнопка устарела.",
    "client_gone": "Этого клиента больше нет.",
    "choose_language": "Выберите язык:",
    "language_set": "Язык: русский.",
    "cancelled": "Отменено.",
    "nothing_to_cancel": "Отменять нечего.",
    "help_stranger": (
        "👋 Этот бот обслуживает клиентов частного VPN.\n"
        "Чтобы привязать Telegram, откройте ссылку-приглашение от администратора."
    ),
    "invite_bad": (
        "⚠️ Приглашение недействительно: оно уже использовано или истекло. "
        "Попросите у администратора новое."
    ),
    "help_client": (
        "/link: ссылка для подключения и QR-код\n"
        "/usage: трафик и срок действия\n"
        "/lang: язык"
    ),
    "bound": "✅ Ваш Telegram привязан к <b>{name}</b>.",
    "status_line": "Статус: {status}",
    "usage_of": "Трафик: {used} из {limit} ({percent} %)",
    "usage_unlimited": "Трафик: {used} (без лимита)",
    "expires": "Действует до: {when} ({left})",
    "expired_at": "Истёк: {when}",
    "no_expiry": "Бессрочно",
    "on_hold": "Начнётся с первого подключения, срок {days} дн.",
    "link_for": "🔗 Ссылка для {node}:",
    "link_hint": "Нажмите на ссылку, чтобы скопировать, или отсканируйте QR-код.",
    "no_link": "Ссылка ещё не готова. Обратитесь к администратору.",
    "subscription": "📥 Подписка: {url}",
    "qr_caption": "QR-код: {node}",
    "qr_subscription": "QR-код: подписка",
    "btn_link": "🔗 Ссылка и QR",
    "btn_usage": "📊 Трафик",
    "in_days": "через {n} дн.",
    "in_hours": "через {n} ч",
    "passed": "уже прошло",
    "status_active": "активен ✅",
    "status_on_hold": "ждёт первого подключения ⏳",
    "status_disabled": "отключён ⏸",
    "status_limited": "лимит исчерпан ⛔",
    "status_expired": "срок истёк ⌛",
    "help_admin": (
        "/status: узлы, клиенты, трафик за сегодня\n"
        "/find ИМЯ: найти клиента (или просто пришлите имя)\n"
        "/clients: все клиенты\n"
        "/new: создать клиента\n"
        "/top: больше всех трафика за 24 ч\n"
        "/backup: база данных файлом\n"
        "/lang: язык\n"
        "/cancel: прервать диалог"
    ),
    "status_head": "📊 <b>Состояние сервера</b>",
    "nodes_head": "Узлы:",
    "node_online": "в сети",
    "node_out_of_sync": "в сети, догоняет изменения",
    "node_offline": "не отвечает",
    "node_unchecked": "ещё не проверен",
    "clients_total": "Клиентов: {total}",
    "traffic_today": "Трафик за сегодня (UTC): {amount}",
    "find_ask": "Пришлите имя, ключ (например, c42) или UUID.",
    "find_none": "По запросу «{query}» ничего не найдено.",
    "find_found": "Найдено: {count}",
    "find_more": "Показаны первые {shown}; уточните запрос, чтобы увидеть остальных.",
    "list_head": "👥 <b>Клиенты</b>: {count}",
    "list_empty": "Клиентов пока нет. /new создаст первого.",
    "list_more": "…и ещё {count}: /find сузит список.",
    "top_head": "🏆 <b>Больше всех трафика за 24 ч</b>",
    "top_empty": "За последние 24 часа трафика не было.",
    "card_key": "Ключ: <code>{email}</code>",
    "card_last": "Последний трафик: {when}",
    "card_never": "Последний трафик: ещё не было",
    "card_chats": "Чатов Telegram: {count}",
    "card_pending": "⚠️ Изменение ждёт, пока узел его примет.",
    "btn_enable": "▶️ Включить",
    "btn_disable": "⏸ Отключить",
    "btn_reset": "🔄 Сбросить трафик",
    "btn_extend": "📅 Продлить",
    "btn_links": "🔗 Ссылка и QR",
    "btn_new_link": "🔑 Новая ссылка",
    "btn_invite": "✉️ Приглашение",
    "btn_delete": "🗑 Удалить",
    "btn_back": "« Назад",
    "btn_yes_delete": "🗑 Да, удалить",
    "btn_cancel": "Отмена",
    "btn_days": "+{n} дн.",
    "btn_skip": "Пропустить",
    "btn_open": "Открыть {name}",
    "done_enabled": "Включён.",
    "done_disabled": "Отключён. Открытые соединения живут, пока не закроются.",
    "done_reset": "Трафик сброшен.",
    "done_extended": "Продлён на {n} дн.",
    "done_new_link": "Новая ссылка готова: старая больше не подключается.",
    "extend_choose": "📅 На сколько дней продлить <b>{name}</b>?",
    "confirm_delete": (
        "🗑 Удалить <b>{name}</b>? Ссылка перестанет работать. Это не отменить."
    ),
    "deleted": "🗑 <b>{name}</b> удалён.",
    "invite_made": (
        "✉️ Приглашение для <b>{name}</b> (одноразовое, на 7 дней):\n{link}"
    ),
    "ask_name": "➕ Новый клиент. Пришлите имя или /cancel.",
    "name_taken": "Клиент «{name}» уже есть. Пришлите другое имя.",
    "name_bad": (
        "Имя: от 1 до 64 символов, без управляющих и невидимых символов,"
        " и не похожее на ключ (c12) или UUID. Ещё раз."
    ),
    "ask_limit": "Лимит трафика в ГБ (например, 50) или /skip без лимита.",
    "bad_limit": "«{text}» не число ГБ больше 0. Пришлите, например, 50 или /skip.",
    "ask_days": "Сколько дней действует (например, 30) или /skip бессрочно.",
    "bad_days": "«{text}» не целое число дней (от 1 до 36500). Ещё раз.",
    "created": "✅ Клиент <b>{name}</b> создан.",
    "backup_caption": "💾 Резервная копия базы, {when}",
    "backup_failed": "Резервная копия не удалась: {reason}",
    "backup_too_big": "Копия весит {size}, больше 50 МБ Telegram; она лежит в {path}",
    "n_u80_client": "⚠️ Израсходовано {percent} % трафика: {used} из {limit}.",
    "n_u80_admin": (
        "⚠️ <b>{name}</b> израсходовал {percent} % лимита: {used} из {limit}."
    ),
    "n_u100_client": "⛔ Трафик ({limit}) исчерпан, подключение приостановлено.",
    "n_u100_admin": "⛔ <b>{name}</b> исчерпал лимит {limit} и приостановлен.",
    "n_expiry_client": "⏳ Подписка заканчивается {when} ({left}).",
    "n_expiry_admin": "⏳ <b>{name}</b> истекает {when} ({left}).",
    "n_expired_client": "⌛ Срок подписки истёк. Попросите администратора продлить её.",
    "n_expired_admin": "⌛ У <b>{name}</b> истёк срок, клиент приостановлен.",
    "n_node_down": "🔴 Узел <b>{node}</b> недоступен: Xray API не отвечает.",
    "n_node_up": "🟢 Узел <b>{node}</b> снова отвечает.",
    "n_node_restarted": "🔄 Узел <b>{node}</b> перезапустился.",
    "n_node_restored": (
        "✅ Узел <b>{node}</b>: восстановлено пользователей: {count} за {seconds} с."
    ),
}

TEXTS = {"en": EN, "ru": RU}

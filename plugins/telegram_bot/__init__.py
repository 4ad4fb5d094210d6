"""The Telegram bot: admins run the panel from a chat, clients get their links.

Turn it on with `PLUGINS=telegram_bot` and the TELEGRAM_* settings in
`.env` (see `.env.example` and README.md in this folder).
"""

from __future__ import annotations

from plugins import PluginContext
from plugins.telegram_bot.bot import TelegramBot

SETTINGS_PREFIX = "TELEGRAM_"


def create(context: PluginContext) -> TelegramBot:
    return TelegramBot(context)

"""The webhook route: with TELEGRAM_WEBHOOK_URL set, Telegram POSTs updates here.

A plugin can't add routes to an app that is already serving, so the panel
registers this blueprint when it builds the app, exempt from CSRF (Telegram
proves itself with the secret header instead):

    from plugins.telegram_bot.webhook import bp as telegram_webhook
    csrf.exempt(telegram_webhook)
    app.register_blueprint(telegram_webhook)

The route only queues the update for the bot's thread and answers at once.
"""

from __future__ import annotations

import logging

from flask import Blueprint
from flask import current_app
from flask import request

from plugins.telegram_bot.bot import running_bot
from plugins.telegram_bot.config import WEBHOOK_PATH

log = logging.getLogger(__name__)

bp = Blueprint("telegram_webhook", __name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@bp.post(WEBHOOK_PATH)
def receive() -> tuple[str, int]:
    bot = running_bot(current_app.extensions.get("infinity.plugins", []))
    if bot is None or not bot.config.webhook:
        env = current_app.extensions.get("infinity.env", {})
        # Set, but the bot runs in another worker (or is starting): Telegram
        # retries a 503 later. Not set at all: there is nothing here.
        return ("", 503) if env.get("TELEGRAM_WEBHOOK_URL") else ("", 404)

    if not bot.accepts(request.headers.get(SECRET_HEADER)):
        log.warning("telegram webhook: a request without the right secret")
        return "", 403

    update = request.get_json(silent=True)
    if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
        return "", 400
    try:
        bot.feed(update)
    except (KeyError, TypeError, ValueError):
        log.warning("telegram webhook: an update that does not parse")
        return "", 400
    return "", 200

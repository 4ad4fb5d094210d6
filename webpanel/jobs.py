"""The background jobs: count traffic, keep Xray in line, enforce limits."""

from __future__ import annotations

import logging
import threading

from flask import Flask

from webpanel.models import Node
from webpanel.models import db
from webpanel.services import accounting
from webpanel.services import history
from webpanel.services import sync
from webpanel.services.clients import enforce_limits

log = logging.getLogger(__name__)

# Poll and recovery both talk to the same daemons; one at a time keeps a
# recovery from racing the poll that noticed the restart.
_xray_lock = threading.Lock()


def poll_job(app: Flask) -> None:
    """Count traffic on every node; recover a node that restarted or came back."""
    settings = app.extensions["infinity.settings"]
    with app.app_context(), db.connection_context(), _xray_lock:
        for node in Node.select():
            was_online = node.online
            result = accounting.poll_node(node, settings.xray_timeout)
            if result.online and (result.restarted or not was_online):
                sync.recover_node(node, force=True, timeout=settings.xray_timeout)


def enforce_job(app: Flask) -> None:
    """Limits, expiry, on-hold starts and usage resets; Xray follows."""
    with app.app_context(), db.connection_context(), _xray_lock:
        enforce_limits()


def prune_job(app: Flask) -> None:
    """Drop usage history past its keep time."""
    settings = app.extensions["infinity.settings"]
    with app.app_context(), db.connection_context():
        gone = history.prune(settings.history_hourly_days, settings.history_daily_days)
        if gone:
            log.info("pruned %d old usage buckets", gone)


def recover_job(app: Flask) -> None:
    """Check every node; put users back where the daemon lost them."""
    settings = app.extensions["infinity.settings"]
    with app.app_context(), db.connection_context(), _xray_lock:
        sync.recover_all(timeout=settings.xray_timeout)

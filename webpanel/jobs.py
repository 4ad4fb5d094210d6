"""The background jobs: count traffic, keep Xray in line, enforce limits."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from flask import Flask

from webpanel.models import Node
from webpanel.models import db
from webpanel.services import accounting
from webpanel.services import history
from webpanel.services import sync
from webpanel.services import webhooks
from webpanel.services.clients import enforce_limits

log = logging.getLogger(__name__)

# Poll and recovery both talk to the same daemons; one at a time keeps a
# recovery from racing the poll that noticed the restart.
_xray_lock = threading.Lock()


def poll_job(app: Flask) -> None:
    """Count traffic on every node; recover a node that restarted or came back."""
    timeout = app.extensions["infinity.settings"].xray_timeout

    def poll(node: Node) -> None:
        was_online = node.online
        result = accounting.poll_node(node, timeout)
        if result.online and (result.restarted or not was_online):
            sync.recover_node(node, force=True, timeout=timeout)

    with _xray_lock:
        each_node(app, poll)


def recover_job(app: Flask) -> None:
    """Check every node; put users back where the daemon lost them."""
    timeout = app.extensions["infinity.settings"].xray_timeout
    with _xray_lock:
        each_node(app, lambda node: sync.recover_node(node, timeout=timeout))


def each_node(app: Flask, work: Callable[[Node], object]) -> None:
    """Run work for every node at once, so a slow or dead one holds no other up."""

    def run(node: Node) -> None:
        with app.app_context(), db.connection_context():
            try:
                work(node)
            except Exception:
                log.exception("job failed on node %s", node.name)

    with app.app_context(), db.connection_context():
        nodes = list(Node.select())
    if len(nodes) == 1:
        run(nodes[0])
        return
    with ThreadPoolExecutor(max_workers=len(nodes), thread_name_prefix="node") as pool:
        list(pool.map(run, nodes))


def enforce_job(app: Flask) -> None:
    """Limits, expiry, on-hold starts and usage resets; Xray follows."""
    with app.app_context(), db.connection_context(), _xray_lock:
        enforce_limits()


def history_job(app: Flask) -> None:
    """Roll closed hours up into days, then drop history past its keep time."""
    settings = app.extensions["infinity.settings"]
    with app.app_context(), db.connection_context():
        history.roll_up()
        gone = history.prune(settings.history_hourly_days, settings.history_daily_days)
        if gone:
            log.info("pruned %d old usage buckets", gone)


def webhook_job(app: Flask) -> None:
    """Send the webhook deliveries that are due, again if woken meanwhile."""
    runtime = app.extensions.get("infinity.runtime")
    if runtime is None:
        with app.app_context(), db.connection_context():
            webhooks.deliver_due()
        return
    with runtime.running("webhooks") as woken, app.app_context():
        while True:
            woken.clear()
            with db.connection_context():
                webhooks.deliver_due()
            if not woken.is_set():
                return

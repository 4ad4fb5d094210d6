"""Webhooks: client events POSTed to each key's URL, signed, retried, in the background.

A change only writes a delivery row, in the request or job that made it,
right after its own commit; the webhook job sends the rows, so a slow or
dead receiver never holds a request up.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from datetime import datetime
from datetime import timedelta
from http.client import HTTPConnection
from http.client import HTTPException
from http.client import HTTPSConnection
from urllib.parse import unquote
from urllib.parse import urlsplit

from flask import current_app
from flask import has_app_context

from webpanel.models import ApiKey
from webpanel.models import Client
from webpanel.models import WebhookDelivery
from webpanel.models import db
from webpanel.models import utcnow
from webpanel.services.client_json import client_json
from webpanel.services.client_json import iso
from webpanel.signals import client_changed

log = logging.getLogger(__name__)

# Seconds to wait after the 1st, 2nd, … failed attempt; then it is given up.
BACKOFF = (10, 60, 300, 1800, 7200)
TIMEOUT = 5.0  # for each connect and read
DEADLINE = 10.0  # for a whole delivery
PER_KEY = 100  # events a key may get in one run; the rest go in the next
KEEP = timedelta(days=7)
USER_AGENT = "infinity-webhook/1"


def connect() -> None:
    """Queue a delivery for every client change (once per process)."""
    client_changed.connect(_on_client_changed)


def _on_client_changed(client: Client, **event) -> None:
    # A failure here must never undo or fail the change that was made.
    try:
        queued = queue(client, event.get("event", ""), event.get("actor", ""), event)
    except Exception:
        log.exception("could not queue webhook for client %s", client.email)
        return
    # In the process that runs the jobs, send now rather than at the next tick.
    runtime = (
        current_app.extensions.get("infinity.runtime") if has_app_context() else None
    )
    if queued and runtime is not None:
        runtime.wake("webhooks")


def queue(client: Client, event: str, actor: str, extra: dict | None = None) -> int:
    """Write one delivery per key with a webhook; return how many."""
    keys = list(
        ApiKey.select().where(ApiKey.revoked_at.is_null() & (ApiKey.webhook_url != ""))
    )
    if not keys:
        return 0
    now = utcnow()
    body = json.dumps(
        {
            "event": event,
            "at": iso(now),
            "actor": actor,
            "old_status": (extra or {}).get("old_status"),
            "client": client_json(client),
        },
        ensure_ascii=False,
    )
    with db.atomic():
        WebhookDelivery.insert_many(
            [
                {"key": key.id, "event": event, "body": body, "next_attempt_at": now}
                for key in keys
            ]
        ).execute()
    return len(keys)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """What X-Infinity-Signature carries: HMAC-SHA256 of "TIMESTAMP.BODY"."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def deliver_due(now: datetime | None = None) -> tuple[int, int]:
    """Send what is due, each key's events in order; return (delivered, failed).

    Keys take turns: a key whose receiver is down holds up only its own
    events, which wait behind the one being retried.
    """
    now = now or utcnow()
    waiting = WebhookDelivery.select(WebhookDelivery.key).where(
        WebhookDelivery.next_attempt_at.is_null(False)
    )
    delivered = failed = 0
    for key in ApiKey.select().where(ApiKey.id.in_(waiting)):
        if not key.active or not key.webhook_url:
            _drop_all(key)
            continue
        sent, error = _deliver_for(key, now)
        delivered += sent
        failed += error
    _prune(now)
    return delivered, failed


def _deliver_for(key: ApiKey, now: datetime) -> tuple[int, int]:
    """A key's due events, oldest first, until one fails or none is due."""
    # Read them all first: a cursor left open across the POSTs would keep
    # an old snapshot, and marking a delivery sent would then fail.
    pending = list(
        WebhookDelivery.select()
        .where(
            (WebhookDelivery.key == key.id)
            & WebhookDelivery.next_attempt_at.is_null(False)
        )
        .order_by(WebhookDelivery.id)
        .limit(PER_KEY)
    )
    sent = 0
    for delivery in pending:
        if delivery.next_attempt_at > now:
            break  # the oldest waits for its retry; the rest wait behind it
        error = _send(delivery, key)
        if error is not None:
            _retry_later(delivery, error, key, now)
            return sent, 1
        _delivered(delivery)
        sent += 1
    return sent, 0


def _drop_all(key: ApiKey) -> None:
    WebhookDelivery.update(
        next_attempt_at=None, last_error="the key was revoked or lost its webhook"
    ).where(
        (WebhookDelivery.key == key.id) & WebhookDelivery.next_attempt_at.is_null(False)
    ).execute()


def _send(delivery: WebhookDelivery, key: ApiKey) -> str | None:
    """POST one delivery; None on a 2xx, else what went wrong.

    Redirects are not followed (a POST would become a GET). A receiver gets
    DEADLINE seconds in all, however slowly it drips its answer.
    """
    body = delivery.body.encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Infinity-Event": delivery.event,
        "X-Infinity-Delivery": str(delivery.id),
        "X-Infinity-Timestamp": timestamp,
        "X-Infinity-Signature": signature(key.webhook_secret, timestamp, body),
    }
    try:
        url = urlsplit(key.webhook_url)
        if url.username is not None:
            user = f"{unquote(url.username)}:{unquote(url.password or '')}"
            headers["Authorization"] = (
                "Basic " + base64.b64encode(user.encode()).decode()
            )
        connection = (HTTPSConnection if url.scheme == "https" else HTTPConnection)(
            url.hostname, url.port, timeout=TIMEOUT
        )
        target = (url.path or "/") + (f"?{url.query}" if url.query else "")
    except ValueError as error:
        return f"bad URL: {error}"
    watchdog = _Watchdog(connection)
    try:
        connection.connect()  # each address within TIMEOUT
        watchdog.armed()  # from here on the deadline can cut the socket
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        response.read(1024)
    except (OSError, HTTPException, ValueError) as error:
        if watchdog.fired:
            return f"no answer within {DEADLINE:g} s"
        return (str(error) or type(error).__name__)[:200]
    finally:
        watchdog.cancel()
        connection.close()
    return None if 200 <= response.status < 300 else f"HTTP {response.status}"


class _Watchdog:
    """Cuts a delivery off DEADLINE seconds after it started.

    Shutting the socket down wakes the read that waits on it at once; a
    deadline that passes while still connecting fails the delivery as soon
    as the connection is made.
    """

    def __init__(self, connection: HTTPConnection) -> None:
        self.connection = connection
        self.fired = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(DEADLINE, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sock = self.connection.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def armed(self) -> None:
        with self._lock:
            if self.fired:
                raise TimeoutError("deadline passed while connecting")

    def cancel(self) -> None:
        self._timer.cancel()


def _delivered(delivery: WebhookDelivery) -> None:
    WebhookDelivery.update(
        attempts=WebhookDelivery.attempts + 1,
        next_attempt_at=None,
        delivered_at=utcnow(),
        last_error="",
    ).where(WebhookDelivery.id == delivery.id).execute()


def _retry_later(
    delivery: WebhookDelivery, error: str, key: ApiKey, now: datetime
) -> None:
    attempts = delivery.attempts + 1
    if attempts > len(BACKOFF):
        log.warning(
            "webhook %s for key %s given up after %d attempts: %s",
            delivery.event,
            key.name,
            attempts,
            error,
        )
        next_at = None
    else:
        next_at = now + timedelta(seconds=BACKOFF[attempts - 1])
        log.info(
            "webhook %s for key %s failed (%s); next try in %d s",
            delivery.event,
            key.name,
            error,
            BACKOFF[attempts - 1],
        )
    WebhookDelivery.update(
        attempts=attempts, next_attempt_at=next_at, last_error=error
    ).where(WebhookDelivery.id == delivery.id).execute()


def _prune(now: datetime) -> None:
    """Forget finished deliveries after a week."""
    WebhookDelivery.delete().where(
        WebhookDelivery.next_attempt_at.is_null()
        & (WebhookDelivery.created_at < now - KEEP)
    ).execute()

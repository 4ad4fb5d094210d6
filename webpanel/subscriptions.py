"""The subscription URL: what the apps (and a browser) fetch with a client's token.

The format follows the User-Agent (see subscription_formats.format_for) unless
`?format=` names one. A client that may not connect gets a subscription that
parses but holds only a placeholder link saying why.
"""

from __future__ import annotations

import io
import logging
import math
import threading
import time
from datetime import UTC
from urllib.parse import quote

import segno
from flask import Blueprint
from flask import Response
from flask import render_template
from flask import request
from flask import url_for

from webpanel.formatting import RU_UNITS
from webpanel.formatting import UNITS
from webpanel.formatting import human_bytes
from webpanel.models import Client
from webpanel.services import subscription_formats as formats
from webpanel.services.links import client_links
from webpanel.services.links import subscription_url
from webpanel.settings import current_settings

log = logging.getLogger(__name__)

bp = Blueprint("subscriptions", __name__)

USABLE = ("active", "on_hold")
NOT_FOUND = "Not found.\n"
VARY = ("User-Agent", "Accept", "Accept-Language")


class TokenBucket:
    """Requests per key: `capacity` at once, refilled at `rate` per second."""

    def __init__(self, capacity: float, rate: float, max_keys: int = 10_000) -> None:
        self.capacity = capacity
        self.rate = rate
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 if the request may go on, else the seconds to wait for a token."""
        now = time.monotonic()
        with self._lock:
            tokens, then = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - then) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return (1 - tokens) / self.rate
            self._buckets[key] = (tokens - 1, now)
            if len(self._buckets) > self.max_keys:
                self._forget_idle(now)
            return 0.0

    def _forget_idle(self, now: float) -> None:
        # A bucket that has refilled is the same as no bucket at all.
        idle = self.capacity / self.rate
        for key, (_, then) in list(self._buckets.items()):
            if now - then >= idle:
                del self._buckets[key]


# 30 fetches per minute per token: apps refresh every few hours.
limiter = TokenBucket(capacity=30, rate=0.5)

TEXTS = {
    "en": {
        "title": "Subscription",
        "status": "Status",
        "used": "Used",
        "of": "of",
        "no_limit": "no limit",
        "expires": "Expires",
        "never": "never",
        "after_first_use": "{days} days after the first connection",
        "links": "Links",
        "qr": "QR code of the link",
        "qr_url": "QR code of the subscription URL: scan it in the app",
        "add": "Add to an app",
        "url": "Subscription URL",
        "no_links": "No working links: {reason}.",
        "no_nodes": "No server has a public address yet.",
        "units": UNITS,
        "states": {
            "active": "active",
            "on_hold": "on hold (starts at first use)",
            "disabled": "disabled",
            "limited": "data limit reached",
            "expired": "expired",
        },
        "why": {
            "disabled": "the subscription is disabled",
            "limited": "the data limit is used up",
            "expired": "the subscription has expired",
        },
    },
    "ru": {
        "title": "Подписка",
        "status": "Статус",
        "used": "Использовано",
        "of": "из",
        "no_limit": "без ограничения",
        "expires": "Действует до",
        "never": "бессрочно",
        "after_first_use": "{days} дн. с первого подключения",
        "links": "Ссылки",
        "qr": "QR-код ссылки",
        "qr_url": "QR-код адреса подписки: отсканируйте его в приложении",
        "add": "Добавить в приложение",
        "url": "Адрес подписки",
        "no_links": "Рабочих ссылок нет: {reason}.",
        "no_nodes": "Ни у одного сервера ещё нет публичного адреса.",
        "units": RU_UNITS,
        "states": {
            "active": "активна",
            "on_hold": "ожидает первого подключения",
            "disabled": "отключена",
            "limited": "лимит трафика исчерпан",
            "expired": "истекла",
        },
        "why": {
            "disabled": "подписка отключена",
            "limited": "лимит трафика исчерпан",
            "expired": "срок подписки истёк",
        },
    },
}


@bp.get("/sub/<token>")
def subscription(token: str):
    # Only known tokens get a bucket: the buckets stay as few as the clients.
    client = _client_for(token)
    if client is None:
        return _plain(NOT_FOUND, 404)
    limited = _rate_limited(token)
    if limited is not None:
        return limited

    fmt = request.args.get("format")
    if fmt is None:
        fmt = formats.format_for(
            request.headers.get("User-Agent", ""), request.headers.get("Accept", "")
        )
    elif fmt not in formats.FORMATS:
        shown = fmt[:32]
        message = f"Unknown format {shown!r}; use one of: {', '.join(formats.FORMATS)}."
        return _plain(message + "\n", 400)

    if fmt == "html":
        return _page(client)
    return _subscription(client, fmt)


@bp.get("/sub/<token>/qr/<int:index>.svg")
def qr(token: str, index: int):
    client = _client_for(token)
    if client is None:
        return _plain(NOT_FOUND, 404)
    limited = _rate_limited(f"{token}:qr")  # the page's images: their own bucket
    if limited is not None:
        return limited
    links = _usable_links(client)
    if not 0 <= index < len(links):
        return _plain(NOT_FOUND, 404)
    return _qr(links[index])


@bp.get("/sub/<token>/qr.svg")
def url_qr(token: str):
    """The subscription URL itself: scanned, the app keeps it up to date."""
    client = _client_for(token)
    if client is None:
        return _plain(NOT_FOUND, 404)
    limited = _rate_limited(f"{token}:qr")
    if limited is not None:
        return limited
    return _qr(_own_url(client))


def _own_url(client: Client) -> str:
    return subscription_url(client) or url_for(
        "subscriptions.subscription", token=client.sub_token, _external=True
    )


def _qr(text: str) -> Response:
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=4, border=2, xmldecl=False)
    response = Response(out.getvalue(), mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _rate_limited(token: str) -> Response | None:
    wait = limiter.take(token)
    if not wait:
        return None
    response = _plain("Too many requests.\n", 429)
    response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return response


def _client_for(token: str) -> Client | None:
    # Tokens are token_urlsafe(24); anything far longer is not one of ours.
    if not token or len(token) > 64:
        return None
    return Client.get_or_none(Client.sub_token == token)


def _usable_links(client: Client) -> list[str]:
    if client.status not in USABLE:
        return []
    return [link for _, link in client_links(client)]


def _subscription(client: Client, fmt: str) -> Response:
    links = _usable_links(client)
    if client.status not in USABLE:
        links = [formats.placeholder_link(client.name, client.status)]
    body, mimetype = formats.render(fmt, links)

    response = Response(body, mimetype=mimetype)
    response.headers.update(_profile_headers(client))
    url = subscription_url(client)
    if url:
        response.headers["profile-web-page-url"] = url
    support = current_settings().support_url
    if support:
        response.headers["support-url"] = support
    response.headers["Cache-Control"] = "no-cache"
    response.vary.update(VARY)
    response.add_etag()
    return response.make_conditional(request)


def _profile_headers(client: Client) -> dict[str, str]:
    expire = 0
    if client.expire_at is not None:
        expire = int(client.expire_at.replace(tzinfo=UTC).timestamp())
    return formats.profile_headers(
        client.name,
        upload=client.uplink,
        download=client.downlink,
        total=client.data_limit or 0,
        expire=expire,
    )


def _page(client: Client) -> Response:
    lang = request.accept_languages.best_match(["en", "ru"], default="en")
    texts = TEXTS[lang]
    url = _own_url(client)
    links = _usable_links(client)
    html = render_template(
        "subscription.html",
        lang=lang,
        t=texts,
        client=client,
        state=texts["states"].get(client.status, client.status),
        usable=client.status in USABLE,
        links=links,
        url=url,
        apps=import_links(url, client.name),
        size=lambda value: human_bytes(value, texts["units"]),
    )
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    response.vary.update(VARY)
    return response


def import_links(url: str, name: str) -> list[tuple[str, str]]:
    """(app, deep link) that make each app add the subscription in one tap."""
    encoded = quote(url, safe="")
    title = quote(name, safe="")
    return [
        ("v2rayNG", f"v2rayng://install-config?url={encoded}"),
        ("Hiddify", f"hiddify://import/{url}#{title}"),
        ("Happ", f"happ://add/{url}"),
        ("Clash", f"clash://install-config?url={encoded}"),
        ("sing-box", f"sing-box://import-remote-profile?url={encoded}#{title}"),
        ("Streisand", f"streisand://import/{url}#{title}"),
        ("v2RayTun", f"v2raytun://import/{url}"),
    ]


def _plain(text: str, status: int) -> Response:
    response = Response(text, status=status, mimetype="text/plain")
    response.headers["Cache-Control"] = "no-store"
    return response

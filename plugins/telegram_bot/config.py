"""The bot's settings (TELEGRAM_* in `.env`), checked once at start."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from urllib.parse import urlsplit

TELEGRAM_API = "https://api.telegram.org"
WEBHOOK_PATH = "/telegram/webhook"
TOKEN_SHAPE = re.compile(r"\d+:[A-Za-z0-9_-]+")
SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,256}")


class ConfigError(ValueError):
    """A TELEGRAM_* setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Tuning:
    """Timings that are not settings: tests shorten them."""

    long_poll: int = 10  # seconds a getUpdates may wait at Telegram
    request_timeout: float = 15.0  # seconds for any other call
    backoff_first: float = 1.0  # first wait after a network error, doubling
    backoff_cap: float = 60.0
    send_attempts: int = 4  # tries of one call through network errors and 429s
    max_retry_after: float = 300.0  # a longer 429 wait is refused, not waited
    notice_seconds: int = 60  # how often the 80 % and expiry checks run
    stop_wait: float = 3.0  # how long stop() waits for the threads


DEFAULT_TUNING = Tuning()


@dataclass(frozen=True)
class BotConfig:
    token: str = field(repr=False)
    admin_ids: frozenset[int]
    api_url: str  # a base such as https://api.telegram.org, no /bot part
    proxy: str | None = field(default=None, repr=False)  # may hold a password
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)

    @property
    def webhook(self) -> bool:
        return self.webhook_url is not None


def load_config(settings: Mapping[str, str]) -> BotConfig:
    """Read and check the settings; ConfigError names the bad variable."""

    token = _text(settings.get("TELEGRAM_BOT_TOKEN"))
    if not token:
        raise ConfigError("TELEGRAM_BOT_TOKEN is not set (ask @BotFather for one)")
    if not TOKEN_SHAPE.fullmatch(token):
        # Never echo the value: it may be a real token with a typo.
        raise ConfigError("TELEGRAM_BOT_TOKEN does not look like DIGITS:LETTERS")

    webhook_url = _text(settings.get("TELEGRAM_WEBHOOK_URL")) or None
    webhook_secret = _text(settings.get("TELEGRAM_WEBHOOK_SECRET")) or None
    if webhook_url is not None:
        _check_webhook(webhook_url, webhook_secret)

    return BotConfig(
        token=token,
        admin_ids=_admin_ids(_text(settings.get("TELEGRAM_ADMIN_IDS"))),
        api_url=_api_url(_text(settings.get("TELEGRAM_API_URL")) or TELEGRAM_API),
        proxy=_proxy(_text(settings.get("TELEGRAM_PROXY"))),
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
    )


def _text(value: str | None) -> str:
    return (value or "").strip()


def _admin_ids(raw: str) -> frozenset[int]:
    ids = set()
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        if not (part.isascii() and part.lstrip("-").isdigit()):
            raise ConfigError(
                f"TELEGRAM_ADMIN_IDS must be numeric Telegram user ids, got {part!r}"
            )
        ids.add(int(part))
    return frozenset(ids)


def _api_url(raw: str) -> str:
    """A base URL; the library's "{base}/bot{token}/{method}" is built from it."""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"TELEGRAM_API_URL must be a base URL like {TELEGRAM_API}, got {raw!r}"
        )
    if "{" in raw or parts.query or parts.fragment or "/bot" in parts.path:
        raise ConfigError(
            "TELEGRAM_API_URL is the base only (scheme, host, port, optional "
            f"path), without /bot…, braces or a query: got {raw!r}"
        )
    return raw.rstrip("/")


def _proxy(raw: str) -> str | None:
    if not raw:
        return None
    scheme = urlsplit(raw).scheme
    if scheme not in ("http", "https", "socks5", "socks5h"):
        raise ConfigError(
            "TELEGRAM_PROXY must be an http://, https://, socks5:// or socks5h:// URL"
        )
    if scheme.startswith("socks") and importlib.util.find_spec("socks") is None:
        raise ConfigError(
            "TELEGRAM_PROXY is a SOCKS proxy, which needs PySocks "
            "(pip install 'requests[socks]')"
        )
    return raw


def _check_webhook(url: str, secret: str | None) -> None:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        raise ConfigError("TELEGRAM_WEBHOOK_URL must be an https:// URL")
    if not parts.path.endswith(WEBHOOK_PATH):
        raise ConfigError(
            f"TELEGRAM_WEBHOOK_URL must end with {WEBHOOK_PATH} (the panel's route)"
        )
    if secret is None or not SECRET_SHAPE.fullmatch(secret):
        raise ConfigError(
            "TELEGRAM_WEBHOOK_SECRET must be set with a webhook: 1-256 of "
            "A-Z, a-z, 0-9, _ and -"
        )

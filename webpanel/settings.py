"""Settings: read once from the environment (and `.env`), validated at start."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote
from urllib.parse import unquote
from urllib.parse import urlsplit
from urllib.parse import urlunsplit
from zoneinfo import ZoneInfo
from zoneinfo import ZoneInfoNotFoundError

import idna

ROOT = Path(__file__).resolve().parent.parent
FLAVORS = {"xray": "xray", "v2ray": "v2ray.core"}
FLOWS = {"", "xtls-rprx-vision"}


class SettingsError(Exception):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Settings:
    secret_key: str
    database_url: str
    instance_path: Path
    panel_host: str = "127.0.0.1"
    panel_port: int = 8000
    panel_timezone: str = "UTC"
    xray_api: str = "127.0.0.1:10085"
    xray_flavor: str = "xray"
    xray_inbound_tag: str = "vless-in"
    xray_flow: str = "xtls-rprx-vision"
    xray_timeout: float = 5.0
    panel_public_url: str = ""
    support_url: str = ""
    public_host: str = ""
    public_port: int = 8443
    reality_sni: str = ""
    reality_public_key: str = ""
    reality_short_id: str = ""
    reality_fingerprint: str = "chrome"
    poll_seconds: int = 10
    recover_seconds: int = 30
    enforce_seconds: int = 10
    history_hourly_days: int = 14
    history_daily_days: int = 400
    plugins: tuple[str, ...] = ()

    @property
    def xray_prefix(self) -> str:
        return FLAVORS[self.xray_flavor]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.panel_timezone)


def load_settings(
    env: Mapping[str, str], instance_path: Path | None = None
) -> Settings:
    """Build Settings from a mapping such as os.environ; raise SettingsError."""
    instance = Path(instance_path or env.get("INFINITY_INSTANCE") or ROOT / "instance")
    read = _Reader(env)
    settings = Settings(
        secret_key=read.text("SECRET_KEY") or _stored_secret_key(instance),
        database_url=_database_url(read.text("DATABASE_URL"), instance),
        instance_path=instance,
        panel_host=read.text("PANEL_HOST", "127.0.0.1"),
        panel_port=read.port("PANEL_PORT", 8000),
        panel_timezone=read.timezone("PANEL_TIMEZONE", "UTC"),
        xray_api=read.address("XRAY_API", "127.0.0.1:10085"),
        xray_flavor=read.choice("XRAY_FLAVOR", "xray", set(FLAVORS)),
        xray_inbound_tag=read.text("XRAY_INBOUND_TAG", "vless-in") or "vless-in",
        xray_flow=read.choice("XRAY_FLOW", "xtls-rprx-vision", FLOWS),
        xray_timeout=read.number("XRAY_TIMEOUT", 5.0, low=0.1, high=120),
        panel_public_url=read.url("PANEL_PUBLIC_URL"),
        support_url=read.url("SUPPORT_URL"),
        public_host=read.text("PUBLIC_HOST"),
        public_port=read.port("PUBLIC_PORT", 8443),
        reality_sni=read.text("REALITY_SNI"),
        reality_public_key=read.text("REALITY_PUBLIC_KEY"),
        reality_short_id=read.short_id("REALITY_SHORT_ID"),
        reality_fingerprint=read.text("REALITY_FINGERPRINT", "chrome") or "chrome",
        poll_seconds=int(read.number("POLL_SECONDS", 10, low=1, high=86400)),
        recover_seconds=int(read.number("RECOVER_SECONDS", 30, low=1, high=86400)),
        enforce_seconds=int(read.number("ENFORCE_SECONDS", 10, low=1, high=86400)),
        history_hourly_days=int(
            read.number("HISTORY_HOURLY_DAYS", 14, low=1, high=3660)
        ),
        history_daily_days=int(
            read.number("HISTORY_DAILY_DAYS", 400, low=1, high=36600)
        ),
        plugins=tuple(p.strip() for p in read.text("PLUGINS").split(",") if p.strip()),
    )
    return settings


class _Reader:
    """Reads typed values out of the environment, naming the variable on error."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str, default: str = "") -> str:
        return self.env.get(name, default).strip()

    def number(self, name: str, default: float, *, low: float, high: float) -> float:
        raw = self.text(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name} must be a number, got {raw!r}") from None
        if not low <= value <= high:
            raise SettingsError(
                f"{name} must be between {low:g} and {high:g}, got {raw}"
            )
        return value

    def port(self, name: str, default: int) -> int:
        raw = self.text(name)
        if not raw:
            return default
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 65535:
            raise SettingsError(f"{name} must be a port number 1-65535, got {raw!r}")
        return int(raw)

    def address(self, name: str, default: str) -> str:
        raw = self.text(name, default) or default
        host, sep, port = raw.rpartition(":")
        if (
            not sep
            or not host
            or not (port.isascii() and port.isdigit())
            or not 1 <= int(port) <= 65535
        ):
            raise SettingsError(f"{name} must look like HOST:PORT, got {raw!r}")
        return raw

    def choice(self, name: str, default: str, allowed: set[str]) -> str:
        raw = self.env.get(name, default).strip()
        if raw not in allowed:
            options = ", ".join(repr(a) for a in sorted(allowed))
            raise SettingsError(f"{name} must be one of {options}, got {raw!r}")
        return raw

    def url(self, name: str) -> str:
        """An http(s) URL, in the ASCII form headers need (IDN host, %-path)."""
        raw = self.text(name).rstrip("/")
        if not raw:
            return raw
        try:
            return ascii_url(raw)
        except ValueError as error:
            raise SettingsError(f"{name} {error}") from None

    def timezone(self, name: str, default: str) -> str:
        raw = self.text(name, default) or default
        try:
            ZoneInfo(raw)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"{name} is not a known time zone: {raw!r}") from None
        return raw

    def short_id(self, name: str) -> str:
        raw = self.text(name).lower()
        if (
            len(raw) > 16
            or len(raw) % 2
            or any(c not in "0123456789abcdef" for c in raw)
        ):
            raise SettingsError(
                f"{name} must be an even number (up to 16) of hex digits, got {raw!r}"
            )
        return raw


def _stored_secret_key(instance: Path) -> str:
    """Use the key generated into instance/ earlier, or make one now."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.touch(mode=0o600)
    path.write_text(key)
    return key


def _database_url(raw: str, instance: Path) -> str:
    if not raw:
        return f"sqlite:///{instance / 'infinity.db'}"
    if not raw.startswith(("sqlite:///", "postgres://", "postgresql://")):
        raise SettingsError(
            f"DATABASE_URL must start with sqlite:/// or postgresql://, got {raw!r}"
        )
    if raw.startswith("sqlite:///") and not raw.startswith("sqlite:////"):
        # A relative SQLite path is relative to the project, not the cwd.
        return f"sqlite:///{ROOT / raw.removeprefix('sqlite:///')}"
    return raw


def mask(secret: str) -> str:
    """Show enough of a secret to recognise it, never enough to use it."""
    if not secret:
        return "(not set)"
    if len(secret) <= 8:
        return "•" * 8
    return f"{secret[:4]}…{secret[-2:]}"


def current_settings() -> Settings:
    """The settings of the app in whose context we run."""
    from flask import current_app

    return current_app.extensions["infinity.settings"]


SECRET_WORDS = (
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "KEY",
    "PROXY",
)  # a proxy URL may hold a login


def mask_settings(settings: Mapping[str, str]) -> dict[str, str]:
    """Settings as a page may show them: anything secret-looking masked."""
    return {
        name: mask(value) if any(word in name for word in SECRET_WORDS) else value
        for name, value in settings.items()
    }


def ascii_url(raw: str, *, userinfo: bool = False) -> str:
    """An http(s) URL in pure ASCII: the host in IDNA (UTS 46, as browsers
    read it), the path, query and fragment %-encoded. ValueError says why not.
    """
    problem = f"must be an https:// or http:// address, got {raw!r}"
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise ValueError(problem) from None
    host = parts.hostname or ""
    if host and ":" not in host:  # a name, not an IPv6 address
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            raise ValueError(problem) from None
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(problem)
    if parts.username is not None and not userinfo:
        raise ValueError("must not carry a user name or password")
    if ":" in host:
        host = f"[{host}]"  # IPv6
    netloc = host if port is None else f"{host}:{port}"
    if parts.username is not None:
        user = quote(unquote(parts.username), safe="")
        password = parts.password
        secret = "" if password is None else ":" + quote(unquote(password), safe="")
        netloc = f"{user}{secret}@{netloc}"
    keep = "/%:@!$&'()*+,;=-._~"
    return urlunsplit(
        (
            parts.scheme,
            netloc,
            quote(parts.path, safe=keep),
            quote(parts.query, safe=keep + "?"),
            quote(parts.fragment, safe=keep + "?"),
        )
    )

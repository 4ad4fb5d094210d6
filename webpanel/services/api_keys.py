"""API keys: made once, kept only as a hash, scoped, revocable."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from webpanel.models import ApiKey
from webpanel.models import db
from webpanel.models import utcnow
from webpanel.services.inputs import FieldError
from webpanel.settings import ascii_url

log = logging.getLogger(__name__)

SCOPES = ("read", "write")
KEY_START = "inf_"
PREFIX_LEN = 12  # "inf_" and 8 characters: enough to tell keys apart, not to guess
NAME_MAX = 64
URL_MAX = 2048
# Last use is a hint for the admin, not an audit log: one write a minute at most.
TOUCH_EVERY = timedelta(seconds=60)


class ApiKeyError(FieldError):
    """Bad input for an API key."""


def hash_key(key: str) -> str:
    # Keys are 32 random bytes: a plain hash is enough, no slow KDF needed.
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    name: str, scope: str = "read", webhook_url: str = ""
) -> tuple[ApiKey, str]:
    """Make a key; return it with the plain key, which is never shown again."""
    name = (name or "").strip()
    scope = (scope or "").strip().lower()
    webhook_url = (webhook_url or "").strip()
    errors = {}
    if not name or len(name) > NAME_MAX or not name.isprintable():
        errors["name"] = f"Name: 1-{NAME_MAX} printable characters."
    if scope not in SCOPES:
        errors["scope"] = "Scope must be read or write."
    if webhook_url:
        try:
            webhook_url = webhook_target(webhook_url)
        except ApiKeyError as error:
            errors.update(error.errors)
    if errors:
        raise ApiKeyError(errors)

    plain = KEY_START + secrets.token_urlsafe(32)
    with db.atomic():
        if find_key(name) is not None:
            raise ApiKeyError({"name": "A key with this name exists; revoke it first."})
        key = ApiKey.create(
            name=name,
            prefix=plain[:PREFIX_LEN],
            key_hash=hash_key(plain),
            scope=scope,
            webhook_url=webhook_url,
            webhook_secret=secrets.token_hex(32) if webhook_url else "",
        )
    log.info("API key %s (%s…, %s) created", name, key.prefix, scope)
    return key, plain


def set_webhook(key: ApiKey, url: str) -> str | None:
    """Point a key's webhook at url ("" for none); return a new secret, if made.

    A key keeps its secret while it has a URL; a key that had none gets a new
    one, shown once. Clearing the URL forgets the secret.
    """
    url = (url or "").strip()
    if key.webhook_url and url == shown_url(key.webhook_url):
        url = key.webhook_url  # sent back as shown, password masked: unchanged
    if url:
        url = webhook_target(url)
    made = None
    if not url:
        secret = ""
    elif key.webhook_secret:
        secret = key.webhook_secret
    else:
        secret = made = secrets.token_hex(32)
    ApiKey.update(webhook_url=url, webhook_secret=secret).where(
        ApiKey.id == key.id
    ).execute()
    key.webhook_url, key.webhook_secret = url, secret
    log.info("API key %s: webhook %s", key.name, "set" if url else "removed")
    return made


def shown_url(url: str) -> str:
    """A webhook URL as pages and lists show it: without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


def webhook_target(url: str) -> str:
    """The URL as deliveries use it (ASCII: IDN host, %-encoded path)."""
    message = "Webhook URL must be an http:// or https:// address."
    if len(url) > URL_MAX or not url.isprintable() or " " in url:
        raise ApiKeyError({"webhook_url": message})
    try:
        return ascii_url(url, userinfo=True)
    except ValueError:
        raise ApiKeyError({"webhook_url": message}) from None


def find_key(name: str) -> ApiKey | None:
    """The active key of that name."""
    return ApiKey.get_or_none(
        (ApiKey.name == name.strip()) & ApiKey.revoked_at.is_null()
    )


def authenticate(plain: str) -> ApiKey | None:
    """The active key whose hash matches, with its last use noted."""
    if not plain.startswith(KEY_START) or len(plain) > 128:
        return None
    key = ApiKey.get_or_none(ApiKey.key_hash == hash_key(plain))
    # The lookup is by hash already; compare again in constant time anyway.
    if key is None or not hmac.compare_digest(key.key_hash, hash_key(plain)):
        return None
    if not key.active:
        return None
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at > TOUCH_EVERY:
        ApiKey.update(last_used_at=now).where(ApiKey.id == key.id).execute()
        key.last_used_at = now
    return key


def revoke_key(key: ApiKey) -> None:
    ApiKey.update(revoked_at=utcnow()).where(ApiKey.id == key.id).execute()
    log.info("API key %s (%s…) revoked", key.name, key.prefix)


def list_keys(include_revoked: bool = False) -> list[ApiKey]:
    query = ApiKey.select().order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_null())
    return list(query)

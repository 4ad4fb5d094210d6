"""Clients: creating, changing and removing them, database first, then Xray."""

from __future__ import annotations

import logging
import secrets
import unicodedata
import uuid as uuidlib
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from datetime import tzinfo

from peewee import IntegrityError

from webpanel.models import IN_XRAY
from webpanel.models import Client
from webpanel.models import State
from webpanel.models import db
from webpanel.models import utcnow
from webpanel.services import sync
from webpanel.settings import current_settings
from webpanel.signals import client_changed

log = logging.getLogger(__name__)

GB = 1024**3
MAX_LIMIT_GB = 1_000_000
MAX_DAYS = 36_500
NAME_MAX = 64


class ClientError(ValueError):
    """Bad input for a client: field name → message, nothing was saved."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def clean_name(raw: str | None) -> str:
    name = unicodedata.normalize("NFC", (raw or "").strip())
    if not name:
        raise ClientError({"name": "Name is required."})
    if len(name) > NAME_MAX:
        raise ClientError({"name": f"Name is longer than {NAME_MAX} characters."})
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in name):
        raise ClientError({"name": "Name contains control characters."})
    return name


def name_key(name: str) -> str:
    return name.casefold()


def parse_limit_gb(raw: str | float | None) -> int | None:
    """Data limit in GB (1 GB = 1024³ bytes) → bytes; blank means unlimited."""
    text = str(raw).strip() if raw is not None else ""
    if not text:
        return None
    try:
        gb = float(text.replace(",", "."))
    except ValueError:
        raise ClientError({"limit_gb": "Data limit must be a number of GB."}) from None
    if not 0 < gb <= MAX_LIMIT_GB:  # also false for nan
        message = f"Data limit must be more than 0 and at most {MAX_LIMIT_GB} GB."
        raise ClientError({"limit_gb": message})
    return int(gb * GB)


def parse_expiry_date(raw: str | None, tz: tzinfo) -> datetime | None:
    """A last day (YYYY-MM-DD) in the admin's zone → the UTC moment it ends."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text) + timedelta(days=1)
    except (ValueError, OverflowError):
        raise ClientError(
            {"expire_on": "Expiry must be a date like 2027-01-31."}
        ) from None
    end = datetime.combine(day, time.min, tzinfo=tz)
    return end.astimezone(UTC).replace(tzinfo=None)


def parse_days(raw: str | int | None) -> int | None:
    """Whole days until expiry; blank means never."""
    text = str(raw).strip() if raw is not None else ""
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= MAX_DAYS:
        raise ClientError(
            {"days": f"Days must be a whole number from 1 to {MAX_DAYS}."}
        )
    return int(text)


def create_client(
    name: str,
    *,
    data_limit: int | None = None,
    days: int | None = None,
    actor: str = "system",
) -> Client:
    """Save a new client, then add it to Xray (or leave it pending)."""
    name = clean_name(name)
    now = utcnow()
    expire_at = now + timedelta(days=days) if days is not None else None
    settings = current_settings()
    try:
        with db.atomic():
            _check_name_free(name)
            client = Client.create(
                name=name,
                name_key=name_key(name),
                email=_next_email(),
                uuid=str(uuidlib.uuid4()),
                sub_token=secrets.token_urlsafe(24),
                flow=settings.xray_flow,
                data_limit=data_limit,
                expire_at=expire_at,
                created_at=now,
                updated_at=now,
            )
    except IntegrityError:
        raise ClientError({"name": "A client with this name already exists."}) from None
    log.info("client %s (%s) created by %s", client.email, client.name, actor)
    sync.apply_client(client, settings.xray_timeout)
    client_changed.send(client, event="created", actor=actor)
    return client


def _check_name_free(name: str, exclude_id: int | None = None) -> None:
    query = Client.select().where(Client.name_key == name_key(name))
    if exclude_id is not None:
        query = query.where(Client.id != exclude_id)
    if query.exists():
        raise ClientError({"name": "A client with this name already exists."})


def _next_email() -> str:
    """c1, c2, …: never reused, since Xray keeps a removed user's counters."""
    State.insert(key="email_seq", value=0).on_conflict_ignore().execute()
    State.update(value=State.value + 1).where(State.key == "email_seq").execute()
    return f"c{State.get_by_id('email_seq').value}"


def edit_client(
    client: Client,
    *,
    name: str,
    data_limit: int | None,
    expire_at: datetime | None,
    actor: str = "system",
) -> Client:
    """Rename and set limits at once; the status follows the new limits.

    An admin's `disabled` stays. On a ClientError nothing is saved, but the
    object passed in may hold the refused values: load it again.
    """
    name = clean_name(name)
    client.name, client.name_key = name, name_key(name)
    client.data_limit, client.expire_at = data_limit, expire_at
    if client.status != "disabled":
        client.status = status_for(client, utcnow())
    return _save_and_apply(client, "edited", actor, check_name=True)


def status_for(client: Client, now: datetime) -> str:
    """The status a client that is not disabled should have now."""
    if client.data_limit is not None and client.used >= client.data_limit:
        return "limited"
    if client.expire_at is not None and client.expire_at <= now:
        return "expired"
    return "active"


def enable_client(client: Client, *, actor: str = "system") -> Client:
    if client.status != "disabled":
        return client
    client.status = status_for(client, utcnow())
    return _save_and_apply(client, "enabled", actor)


def disable_client(client: Client, *, actor: str = "system") -> Client:
    if client.status == "disabled":
        return client
    client.status = "disabled"
    return _save_and_apply(client, "disabled", actor)


def delete_client(client: Client, *, actor: str = "system") -> None:
    with db.atomic():
        client.delete_instance()
    log.info("client %s (%s) deleted by %s", client.email, client.name, actor)
    sync.forget_client(client.email, current_settings().xray_timeout)
    client_changed.send(client, event="deleted", actor=actor)


def _save_and_apply(
    client: Client, event: str, actor: str, *, check_name: bool = False
) -> Client:
    client.updated_at = utcnow()
    try:
        with db.atomic():
            if check_name:
                _check_name_free(client.name, exclude_id=client.id)
            client.save()
    except IntegrityError:
        raise ClientError({"name": "A client with this name already exists."}) from None
    log.info("client %s %s by %s (now %s)", client.email, event, actor, client.status)
    sync.apply_client(client, current_settings().xray_timeout)
    client_changed.send(client, event=event, actor=actor)
    return client


def enforce_limits(now: datetime | None = None) -> list[Client]:
    """Take out of Xray the clients over their data limit or past expiry."""
    now = now or utcnow()
    in_xray = Client.status.in_(IN_XRAY)
    over = Client.data_limit.is_null(False) & (
        (Client.uplink + Client.downlink) >= Client.data_limit
    )
    late = Client.expire_at.is_null(False) & (Client.expire_at <= now)
    changed = list(Client.select().where(in_xray & (over | late)))
    for client in changed:
        client.status = status_for(client, now)
        _save_and_apply(client, client.status, "enforcement")
    return changed


def find_client(key: str) -> Client | None:
    """By name (ignoring case), by email key, or by UUID."""
    key = key.strip()
    return (
        Client.get_or_none(Client.name_key == name_key(key))
        or Client.get_or_none(Client.email == key.lower())
        or Client.get_or_none(Client.uuid == key.lower())
    )

"""Clients: creating, changing and removing them, database first, then Xray."""

from __future__ import annotations

import logging
import secrets
import uuid as uuidlib
from collections.abc import Callable
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta
from typing import Any

from peewee import Field
from peewee import IntegrityError

from webpanel.formatting import human_bytes
from webpanel.models import Client
from webpanel.models import ClientNode
from webpanel.models import Node
from webpanel.models import State
from webpanel.models import db
from webpanel.models import utcnow
from webpanel.services import audit
from webpanel.services import lifecycle
from webpanel.services import sync
from webpanel.services.inputs import GB  # noqa: F401 - part of this API
from webpanel.services.inputs import ClientError
from webpanel.services.inputs import clean_name
from webpanel.services.inputs import name_key
from webpanel.services.inputs import parse_days  # noqa: F401
from webpanel.services.inputs import parse_expiry_date  # noqa: F401
from webpanel.services.inputs import parse_limit_gb  # noqa: F401
from webpanel.services.inputs import parse_reset_strategy  # noqa: F401
from webpanel.services.lifecycle import status_for
from webpanel.settings import current_settings
from webpanel.signals import client_changed

log = logging.getLogger(__name__)


class ClientGone(ClientError):
    """The client was deleted while the change was being made."""


DUPLICATE = "A client with this name already exists."
NEVER_EXPIRES = "This client never expires: there is nothing to extend."
MAX_HOLD_DAYS = 36_500
LATEST_EXPIRY = datetime(9000, 1, 1)


def create_client(
    name: str,
    *,
    data_limit: int | None = None,
    days: int | None = None,
    expire_at: datetime | None = None,
    on_hold: bool = False,
    reset_strategy: str = "none",
    nodes: Sequence[Node] | None = None,
    actor: str = "system",
) -> Client:
    """Save a new client, then add it to Xray (or leave it pending).

    It goes on every node, or only on `nodes` when given.

    The expiry is `days` from now or the moment `expire_at`; with on_hold,
    the `days` start counting at the client's first traffic.
    """
    name = clean_name(name)
    if on_hold and days is None:
        raise ClientError({"days": "On hold needs a number of days."})
    if days is not None and expire_at is not None:
        raise ClientError({"expiry": "Give days or an expiry, not both."})
    now = utcnow()
    if days is not None and not on_hold:
        expire_at = now + timedelta(days=days)
    settings = current_settings()
    client = Client(
        name=name,
        name_key=name_key(name),
        uuid=str(uuidlib.uuid4()),
        sub_token=secrets.token_urlsafe(24),
        flow=settings.xray_flow,
        data_limit=data_limit,
        expire_at=expire_at,
        on_hold_days=days if on_hold else None,
        status="active",
        reset_strategy=reset_strategy,
        next_reset_at=lifecycle.next_reset(reset_strategy, now, now),
        created_at=now,
        updated_at=now,
    )
    client.status = status_for(client, now)  # an expiry already past: expired
    try:
        with db.atomic():
            _check_name_free(name)
            client.email = _next_email()
            client.all_nodes = nodes is None
            client.save(force_insert=True)
            for node in nodes or []:
                ClientNode.create(client=client, node=node)
            on = "" if nodes is None else "; on " + ", ".join(n.name for n in nodes)
            audit.record(client, "created", actor, _limits_text(client) + on)
    except IntegrityError:
        raise ClientError({"name": DUPLICATE}) from None
    log.info("client %s (%s) created by %s", client.email, client.name, actor)
    sync.apply_client(client, settings.xray_timeout)
    client_changed.send(client, event="created", actor=actor, old_status=None)
    return client


def _limits_text(client: Client) -> str:
    limit = "unlimited" if client.data_limit is None else human_bytes(client.data_limit)
    if client.on_hold_days is not None and client.expire_at is None:
        expiry = f"{client.on_hold_days} days from first use"
    elif client.expire_at is not None:
        expiry = f"until {client.expire_at.isoformat(timespec='minutes')}Z"
    else:
        expiry = "no expiry"
    return f"{limit}, {expiry}, reset {client.reset_strategy}"


def _check_name_free(name: str, exclude_id: int | None = None) -> None:
    query = Client.select().where(Client.name_key == name_key(name))
    if exclude_id is not None:
        query = query.where(Client.id != exclude_id)
    if query.exists():
        raise ClientError({"name": DUPLICATE})


def _next_email() -> str:
    """c1, c2, …: never reused, since Xray keeps a removed user's counters."""
    State.insert(key="email_seq", value=0).on_conflict_ignore().execute()
    State.update(value=State.value + 1).where(State.key == "email_seq").execute()
    return f"c{State.get_by_id('email_seq').value}"


class _Keep:
    """An argument left out: the field keeps what the row holds then."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Any = _Keep()

# Sets fields on the row as it is inside the change's transaction; returns
# the fields it set and a note for the audit log.
Apply = Callable[[Client], tuple[list[Field], str]]


def edit_client(
    client: Client,
    *,
    name: str = KEEP,
    data_limit: int | None = KEEP,
    expire_at: datetime | None = KEEP,
    reset_strategy: str | None = None,
    actor: str = "system",
) -> Client:
    """Rename and set limits; what is left out stays. The status follows.

    An admin's `disabled` stays. A change that changes nothing is not saved.
    """
    if name is not KEEP and name.strip() == client.name:
        name = KEEP  # kept as it is, even one today's rules would refuse
    if name is not KEEP:
        name = clean_name(name)

    def apply(row: Client) -> tuple[list[Field], str]:
        changed: list[Field] = []
        note = ""
        if name is not KEEP and name != row.name:
            note = f"renamed from {row.name}; "
        if name is not KEEP and (name, name_key(name)) != (row.name, row.name_key):
            row.name, row.name_key = name, name_key(name)
            changed += [Client.name, Client.name_key]
        if data_limit is not KEEP and data_limit != row.data_limit:
            row.data_limit = data_limit
            changed.append(Client.data_limit)
        if expire_at is not KEEP and expire_at != row.expire_at:
            row.expire_at = expire_at
            changed.append(Client.expire_at)
        dated = expire_at is not KEEP and expire_at is not None
        if row.on_hold_days is not None and (dated or row.last_traffic_at):
            row.on_hold_days = None  # a set date, or traffic seen, ends "on hold"
            changed.append(Client.on_hold_days)
        if reset_strategy is not None and reset_strategy != row.reset_strategy:
            row.reset_strategy = reset_strategy
            row.next_reset_at = lifecycle.next_reset(
                reset_strategy, row.created_at, utcnow()
            )
            changed += [Client.reset_strategy, Client.next_reset_at]
        return changed, note + _limits_text(row)

    return _change(client, "edited", actor, apply, check_name=name is not KEEP)


def enable_client(client: Client, *, actor: str = "system") -> Client:
    if client.status != "disabled":
        return client
    return _change(client, "enabled", actor)


def disable_client(client: Client, *, actor: str = "system") -> Client:
    if client.status == "disabled":
        return client
    return _change(client, "disabled", actor)


def reset_usage(client: Client, *, actor: str = "system") -> Client:
    """Zero the period's usage; a limited client comes back, a disabled one stays."""

    def apply(row: Client) -> tuple[list[Field], str]:
        row.uplink = row.downlink = 0
        return [Client.uplink, Client.downlink], ""

    return _change(client, "reset", actor, apply)


def extend_client(client: Client, days: int, *, actor: str = "system") -> Client:
    """Add days to the expiry, counted from now if it has passed.

    Counted on the row inside the transaction: two renewals at once add both.
    A client that never expires has nothing to extend.
    """

    def apply(row: Client) -> tuple[list[Field], str]:
        now = utcnow()
        if row.on_hold_days is not None and row.expire_at is None:
            if row.on_hold_days + days > MAX_HOLD_DAYS:
                message = f"On hold for at most {MAX_HOLD_DAYS} days."
                raise ClientError({"extend": message})
            row.on_hold_days += days
            return [Client.on_hold_days], f"+{days} days"
        if row.expire_at is None:
            raise ClientError({"extend": NEVER_EXPIRES})
        start = max(row.expire_at, now)
        if start + timedelta(days=days) > LATEST_EXPIRY:
            raise ClientError({"extend": "The expiry would pass the year 9000."})
        row.expire_at = start + timedelta(days=days)
        return [Client.expire_at], f"+{days} days"

    return _change(client, "extended", actor, apply)


def delete_client(client: Client, *, actor: str = "system") -> None:
    with db.atomic():
        client.delete_instance()
        audit.record(client, "deleted", actor)
    log.info("client %s (%s) deleted by %s", client.email, client.name, actor)
    sync.forget_client(client.email, current_settings().xray_timeout)
    client_changed.send(client, event="deleted", actor=actor, old_status=client.status)


def _change(
    client: Client,
    event: str,
    actor: str,
    apply: Apply | None = None,
    *,
    check_name: bool = False,
) -> Client:
    """Save one action with its audit entry, then bring Xray in line.

    `apply` sets its fields on the row as it is inside the transaction, so
    a poll, another admin or a second API call that changed the row since
    the caller loaded it is neither overwritten nor lost.
    """
    now = utcnow()
    try:
        with db.atomic():
            fresh = Client.get_by_id(client.id)
            old = fresh.status
            changed, detail = apply(fresh) if apply else ([], "")
            if event == "edited" and not changed:
                client.__data__.update(fresh.__data__)
                return client  # nothing to save, log or announce
            if check_name:
                _check_name_free(fresh.name, exclude_id=fresh.id)
            if event == "disabled":
                fresh.status = "disabled"
            elif event == "enabled" or fresh.status != "disabled":
                fresh.status = status_for(fresh, now)
            fresh.updated_at = now
            fresh.save(only=[*changed, Client.status, Client.updated_at])
            if old != fresh.status:
                detail = "; ".join(filter(None, [detail, _status_text(old, fresh)]))
            audit.record(fresh, event, actor, detail or fresh.status)
    except IntegrityError:
        raise ClientError({"name": DUPLICATE}) from None
    except Client.DoesNotExist:
        raise ClientGone({"name": "This client was deleted meanwhile."}) from None
    client.__data__.update(fresh.__data__)
    log.info("client %s %s by %s (now %s)", client.email, event, actor, client.status)
    sync.apply_client(client, current_settings().xray_timeout)
    client_changed.send(client, event=event, actor=actor, old_status=old)
    return client


def _status_text(old: str | None, client: Client) -> str:
    return client.status if old == client.status else f"{old} → {client.status}"


def enforce_limits(now: datetime | None = None) -> list[lifecycle.Change]:
    """One enforcement pass: save the changes, then bring Xray in line."""
    changes = lifecycle.enforce(now)
    timeout = current_settings().xray_timeout
    for change in changes:
        client = change.client
        if change.xray_changed:
            sync.apply_client(client, timeout)
        log.info("client %s %s (now %s)", client.email, change.event, client.status)
        client_changed.send(
            client,
            event=change.event,
            actor=lifecycle.ACTOR,
            old_status=change.old_status,
        )
    return changes


def find_client(key: str) -> Client | None:
    """By email key, by UUID, or by name (any case or Unicode form)."""
    key = key.strip()
    # Keys first: a name can't take over another client's email key or UUID.
    return (
        Client.get_or_none(Client.email == key.lower())
        or Client.get_or_none(Client.uuid == key.lower())
        or Client.get_or_none(Client.name_key == name_key(key))
    )


def regenerate_uuid(client: Client, *, actor: str = "system") -> Client:
    """A new UUID: the old link stops working for new connections."""
    client.uuid = str(uuidlib.uuid4())
    with db.atomic():
        Client.update(uuid=client.uuid, updated_at=utcnow()).where(
            Client.id == client.id
        ).execute()
        audit.record(client, "new_uuid", actor)
    # Xray keys users by email: the old entry must go before the new one.
    sync.replace_client(client, current_settings().xray_timeout)
    client_changed.send(client, event="new_uuid", actor=actor, old_status=client.status)
    return client


def revoke_sub_token(client: Client, *, actor: str = "system") -> Client:
    """A new subscription token; the old subscription URL stops working."""
    client.sub_token = secrets.token_urlsafe(24)
    with db.atomic():
        Client.update(sub_token=client.sub_token, updated_at=utcnow()).where(
            Client.id == client.id
        ).execute()
        audit.record(client, "new_sub_token", actor)
    client_changed.send(
        client, event="new_sub_token", actor=actor, old_status=client.status
    )
    return client

"""Keeping Xray in line with the database (DESIGN.md §4)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from peewee import Expression

from webpanel.models import IN_XRAY
from webpanel.models import Client
from webpanel.models import Node
from webpanel.models import Removal
from webpanel.models import chunks
from webpanel.models import db
from webpanel.models import utcnow
from webpanel.nodes import gateway
from webpanel.nodes import nodes_of
from webpanel.nodes import on_node
from webpanel.signals import node_changed
from xray.client import AlreadyExists
from xray.client import NotFound
from xray.client import Unavailable
from xray.client import Unsupported
from xray.client import User
from xray.client import XrayClient
from xray.client import XrayError

log = logging.getLogger(__name__)

# Uptime has whole-second resolution and calls take time: allow some slack.
UPTIME_SLACK_S = 2
POOL_SIZE = 64  # AddUser calls in flight on one asyncio channel
REMOVE_POOL_SIZE = 8  # removals are few: a small thread pool

# Nodes whose outage this process has already logged, so a dead daemon
# gives one warning, not one per job run.
_reported_down: set[int] = set()


@dataclass(frozen=True)
class RecoverResult:
    node: str
    online: bool
    restarted: bool = False
    resynced: bool = False
    added: int = 0
    removed: int = 0
    seconds: float = 0.0
    error: str = ""


def restarted_since(
    last_uptime: int | None, last_at: datetime | None, uptime: int, now: datetime
) -> bool:
    """True when the daemon's uptime is lower than it should be by now."""
    if last_uptime is None or last_at is None:
        return False
    expected = last_uptime + (now - last_at).total_seconds()
    return uptime + UPTIME_SLACK_S < expected


def xray_user(client: Client, node: Node) -> User:
    """The user as a node holds it; a node without a flow (v2ray) gets none."""
    flow = client.flow if node.flow else ""
    return User(email=client.email, uuid=client.uuid, flow=flow)


def add(gw: XrayClient, tag: str, user: User) -> bool:
    """Add a user; True when it was missing. "Already exists" is success."""
    try:
        gw.add_user(tag, user)
    except AlreadyExists:
        return False
    return True


def remove(gw: XrayClient, tag: str, email: str) -> bool:
    """Remove a user; True when it was there. "Not found" is success."""
    try:
        gw.remove_user(tag, email)
    except NotFound:
        return False
    return True


def mark_out_of_sync(node: Node, error: XrayError) -> None:
    """Changes now wait for recovery; an unreachable node is also offline."""
    was_online = node.online
    node.online = was_online and not isinstance(error, Unavailable)
    node.in_sync = False
    Node.update(in_sync=False, online=node.online, last_error=str(error)[:500]).where(
        Node.id == node.id
    ).execute()
    if not node.online and node.id not in _reported_down:
        _reported_down.add(node.id)
        log.warning(
            "node %s: no Xray API answers at %s (%s). The panel keeps running; "
            "changes are saved and applied when it is back.",
            node.name,
            node.api_address,
            error,
        )
    elif node.online:
        log.warning("node %s: %s", node.name, error)
    if was_online and not node.online:
        node_changed.send(node, event="down", count=0, seconds=0.0)


def apply_client(client: Client, timeout: float = 5.0) -> bool:
    """Bring every node in line with one client; False leaves it pending.

    A node known to be down is not called (each call would wait for its
    deadline): recovery applies the change when the node is back.
    """

    def change(gw, node: Node, wanted: bool) -> None:
        if wanted:
            add(gw, node.inbound_tag, xray_user(client, node))
        else:
            remove(gw, node.inbound_tag, client.email)

    ok = _on_each_node(client, timeout, change)
    if client.pending == ok:
        client.pending = not ok
        Client.update(pending=client.pending).where(Client.id == client.id).execute()
    return ok


def replace_client(client: Client, timeout: float = 5.0) -> bool:
    """Remove, then add again: how a node learns a client's new UUID.

    If a node fails, the client stays pending, and recovery replaces it
    (it removes pending clients before adding them back).
    """

    def change(gw, node: Node, wanted: bool) -> None:
        remove(gw, node.inbound_tag, client.email)
        if wanted:
            add(gw, node.inbound_tag, xray_user(client, node))

    ok = _on_each_node(client, timeout, change)
    Client.update(pending=not ok).where(Client.id == client.id).execute()
    client.pending = not ok
    return ok


def _on_each_node(client: Client, timeout: float, change: Callable) -> bool:
    """Run change(gateway, node, wanted in Xray) on each node that answers.

    Nodes known to be down are skipped; False if any node was skipped or failed.
    """
    ok = True
    chosen = {node.id for node in nodes_of(client)}
    for node in Node.select():
        if not node.online and node.last_error:
            ok = False
            continue
        try:
            change(gateway(node, timeout), node, client.in_xray and node.id in chosen)
        except XrayError as error:
            mark_out_of_sync(node, error)
            ok = False
    return ok


def forget_client(email: str, timeout: float = 5.0) -> bool:
    """Remove a deleted client's email everywhere, or leave a tombstone."""
    ok = True
    for node in Node.select():
        try:
            remove(gateway(node, timeout), node.inbound_tag, email)
        except XrayError as error:
            mark_out_of_sync(node, error)
            Removal.insert(node=node, email=email).on_conflict_ignore().execute()
            ok = False
    return ok


def recover_node(
    node: Node, *, force: bool = False, timeout: float = 5.0
) -> RecoverResult:
    """Check a node and, if it restarted or lost changes, put our users back."""
    gw = gateway(node, timeout)
    started = time.monotonic()
    try:
        uptime = gw.sys_stats().uptime
    except XrayError as error:
        mark_out_of_sync(node, error)
        return RecoverResult(node.name, online=False, error=str(error))

    now = utcnow()
    restarted = restarted_since(node.seen_uptime, node.seen_at, uptime, now)
    came_back = not node.online
    try:
        needed = force or restarted or came_back or not node.in_sync
        canary = 0
        if not needed:
            needed = restarted = _canary_missing(gw, node)
            canary = int(needed)  # the canary itself was one of the users restored
        added = removed = 0
        if needed:
            added, removed = _resync(gw, node)
            added += canary
    except XrayError as error:
        mark_out_of_sync(node, error)
        return RecoverResult(
            node.name, online=False, restarted=restarted, error=str(error)
        )

    seconds = time.monotonic() - started
    _mark_synced(node, uptime, now, resynced=needed, added=added)
    if came_back:
        _reported_down.discard(node.id)
        log.info("node %s answers at %s", node.name, node.api_address)
        node_changed.send(node, event="up", count=added, seconds=seconds)
    if restarted:
        log.info("node %s restarted (uptime %ds)", node.name, uptime)
        node_changed.send(node, event="restarted", count=added, seconds=seconds)
    if needed:
        quiet = not (added or removed or restarted or came_back)
        (log.debug if quiet else log.info)(
            "node %s in sync: %d users restored, %d removed in %.2f s",
            node.name,
            added,
            removed,
            seconds,
        )
        node_changed.send(node, event="restored", count=added, seconds=seconds)
    return RecoverResult(node.name, True, restarted, needed, added, removed, seconds)


def recover_all(*, force: bool = False, timeout: float = 5.0) -> list[RecoverResult]:
    return [recover_node(n, force=force, timeout=timeout) for n in Node.select()]


def _canary_missing(gw: XrayClient, node: Node) -> bool:
    """Re-add one user who should be there; if it was missing, Xray forgot us.

    Uptime alone misses a restart that happened within the slack of the
    last check; one AddUser per run is a cheap second opinion.
    """
    client = (
        Client.select()
        .where(Client.status.in_(IN_XRAY) & on_node(node))
        .order_by(Client.id.desc())
        .first()
    )
    if client is None:
        return False
    missing = add(gw, node.inbound_tag, xray_user(client, node))
    if missing:
        log.warning("node %s had lost user %s: resyncing", node.name, client.email)
    return missing


def _resync(gw: XrayClient, node: Node) -> tuple[int, int]:
    """Make the node hold exactly the users it should; return (added, removed)."""
    belongs = Client.status.in_(IN_XRAY) & on_node(node)
    wanted = _wanted(node, belongs)
    unwanted = {
        email for (email,) in Client.select(Client.email).where(~belongs).tuples()
    }
    tombstones = {r.email for r in Removal.select().where(Removal.node == node)}
    unwanted |= tombstones - set(wanted)

    try:
        present = {u.email.lower(): u for u in gw.list_users(node.inbound_tag)}
    except Unsupported:
        present = None
    if present is not None:
        unwanted = {e for e in unwanted if e.lower() in present}
        # Held with an old UUID or flow (a new link made while the node was
        # down): take it out and put it back as it is now.
        stale = {
            e
            for e, user in wanted.items()
            if e.lower() in present and _differs(present[e.lower()], user)
        }
        to_add = [
            u for e, u in wanted.items() if e.lower() not in present or e in stale
        ]
        unwanted |= stale
    else:
        # Can't list: add everyone back; a client whose change never reached
        # this node may be held as it was, so take it out first.
        to_add = list(wanted.values())
        pending = Client.select(Client.email).where(belongs & Client.pending).tuples()
        unwanted |= {email for (email,) in pending}

    tag = node.inbound_tag
    with ThreadPoolExecutor(max_workers=REMOVE_POOL_SIZE) as pool:
        # Removals first: removing an email frees its UUID, even when another
        # email has taken that UUID over since.
        removed = sum(pool.map(lambda e: remove(gw, tag, e), sorted(unwanted)))
    added = _add_all(gw, tag, to_add)
    # An admin may have disabled or moved one of them while we were adding.
    removed += _take_back(gw, node, [u.email for u in to_add])
    if tombstones:
        done = Removal.email.in_(sorted(tombstones))
        Removal.delete().where(Removal.node == node, done).execute()
    return added, removed


def _wanted(node: Node, belongs: Expression) -> dict[str, User]:
    # Plain values, not model objects: thousands of them stay light.
    rows = Client.select(Client.email, Client.uuid, Client.flow).where(belongs).tuples()
    return {
        email: User(email=email, uuid=uuid, flow=flow if node.flow else "")
        for email, uuid, flow in rows
    }


def _differs(held: User, wanted: User) -> bool:
    return held.uuid.lower() != wanted.uuid.lower() or held.flow != wanted.flow


def _take_back(gw: XrayClient, node: Node, emails: list[str]) -> int:
    """Remove the just-added users that no longer belong on the node."""
    belongs = Client.status.in_(IN_XRAY) & on_node(node)
    still = set()
    for chunk in chunks(emails, 900):
        query = Client.select(Client.email).where(belongs & Client.email.in_(chunk))
        still.update(email for (email,) in query.tuples())
    gone = [email for email in emails if email not in still]
    return sum(remove(gw, node.inbound_tag, email) for email in gone)


def _add_all(gw: XrayClient, tag: str, users: list[User]) -> int:
    """Add many users over one channel, POOL_SIZE calls in flight; return how
    many were missing. Any failure but "already exists" stops the resync."""
    failures = gw.add_users(tag, users, concurrency=POOL_SIZE)
    for error in failures.values():
        if not isinstance(error, AlreadyExists):
            raise error
    return len(users) - len(failures)


def _mark_synced(
    node: Node, uptime: int, now: datetime, *, resynced: bool, added: int
) -> None:
    fields = {
        Node.online: True,
        Node.in_sync: True,
        Node.last_error: "",
        Node.seen_uptime: uptime,
        Node.seen_at: now,
    }
    if resynced:
        fields[Node.synced_at] = now
        fields[Node.restored_count] = added
    with db.atomic():
        Node.update(fields).where(Node.id == node.id).execute()
        # A client is pending until every node has it: clear only then.
        everywhere = not Node.select().where(Node.in_sync == False).exists()
        if resynced and everywhere:
            Client.update(pending=False).where(Client.pending == True).execute()
    for field, value in fields.items():
        setattr(node, field.name, value)

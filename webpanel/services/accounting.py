"""Counting traffic exactly (DESIGN.md §5)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from dataclasses import field

from webpanel.models import Client
from webpanel.models import Counter
from webpanel.models import Node
from webpanel.models import db
from webpanel.models import utcnow
from webpanel.nodes import gateway
from webpanel.services.sync import mark_out_of_sync
from webpanel.services.sync import restarted_since
from xray.client import XrayError
from xray.client import user_traffic

log = logging.getLogger(__name__)

_unknown_logged: set[str] = set()


@dataclass
class PollResult:
    node: str
    online: bool
    restarted: bool = False
    counted: int = 0  # bytes added to clients' usage
    clients: int = 0  # clients whose usage grew
    unknown: list[str] = field(default_factory=list)
    error: str = ""


def counter_delta(raw: int, last: int, restarted: bool) -> int:
    """Bytes since the last poll; a restarted or reset counter starts from 0."""
    if restarted or raw < last:
        return raw
    return raw - last


def poll_node(node: Node, timeout: float = 5.0) -> PollResult:
    """Read every user counter of a node once and add the deltas to usage."""
    gw = gateway(node, timeout)
    try:
        uptime = gw.sys_stats().uptime
        raw = gw.query_stats("user>>>")
    except XrayError as error:
        mark_out_of_sync(node, error)
        return PollResult(node.name, online=False, error=str(error))

    now = utcnow()
    restarted = restarted_since(node.poll_uptime, node.poll_at, uptime, now)
    result = PollResult(node.name, online=True, restarted=restarted)
    traffic = user_traffic(raw)
    with db.atomic():
        _commit(node, traffic, restarted, result)
        Node.update(poll_uptime=uptime, poll_at=now).where(Node.id == node.id).execute()
    node.poll_uptime, node.poll_at = uptime, now
    return result


def _commit(
    node: Node, traffic: dict[str, tuple[int, int]], restarted: bool, result: PollResult
) -> None:
    """Write deltas and new raw values in the caller's transaction."""
    if restarted:
        # Counters the new daemon hasn't recreated yet start again from 0.
        Counter.update(last_raw=0).where(Counter.node == node).execute()
    query = Counter.select(Counter.email, Counter.direction, Counter.last_raw)
    last = {
        (email, direction): raw
        for email, direction, raw in query.where(Counter.node == node).tuples()
    }
    known = _known_emails(traffic)

    changed_counters = []
    for email, (up, down) in traffic.items():
        deltas = []
        for direction, value in (("uplink", up), ("downlink", down)):
            before = last.get((email, direction), 0)
            deltas.append(counter_delta(value, before, restarted))
            if value != before or (email, direction) not in last:
                changed_counters.append((node.id, email, direction, value))
        if email not in known:
            _note_unknown(email, result)
            continue
        if deltas[0] or deltas[1]:
            _add_usage(email, deltas[0], deltas[1])
            result.counted += deltas[0] + deltas[1]
            result.clients += 1

    for start in range(0, len(changed_counters), 200):
        rows = changed_counters[start : start + 200]
        (
            Counter.insert_many(
                rows,
                fields=[
                    Counter.node,
                    Counter.email,
                    Counter.direction,
                    Counter.last_raw,
                ],
            )
            .on_conflict(
                conflict_target=[Counter.node, Counter.email, Counter.direction],
                preserve=[Counter.last_raw],
            )
            .execute()
        )


def _known_emails(traffic: dict[str, tuple[int, int]]) -> set[str]:
    known: set[str] = set()
    emails = sorted(traffic)
    for start in range(0, len(emails), 500):
        chunk = emails[start : start + 500]
        query = Client.select(Client.email).where(Client.email.in_(chunk)).tuples()
        known.update(email for (email,) in query)
    return known


def _note_unknown(email: str, result: PollResult) -> None:
    result.unknown.append(email)
    if email not in _unknown_logged:
        _unknown_logged.add(email)
        log.info("ignoring traffic counters of unknown user %r", email)


def _add_usage(email: str, up: int, down: int) -> None:
    """Additive, so a lost poll or a retried one never double-counts."""
    (
        Client.update(uplink=Client.uplink + up, downlink=Client.downlink + down)
        .where(Client.email == email)
        .execute()
    )


def poll_all(timeout: float = 5.0) -> list[PollResult]:
    return [poll_node(node, timeout) for node in Node.select()]

"""Counting traffic exactly (DESIGN.md §5)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime

from webpanel.models import Client
from webpanel.models import Counter
from webpanel.models import Node
from webpanel.models import chunks
from webpanel.models import db
from webpanel.models import utcnow
from webpanel.nodes import gateway
from webpanel.services import history
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
    ids = _client_ids(traffic)

    counters = []
    usage = []
    for email, (up, down) in traffic.items():
        deltas = []
        for direction, value in (("uplink", up), ("downlink", down)):
            before = last.get((email, direction))
            deltas.append(counter_delta(value, before or 0, restarted))
            if value != before:
                counters.append((node.id, email, direction, value))
        if email not in ids:
            _note_unknown(email, result)
        elif deltas[0] or deltas[1]:
            usage.append((ids[email], deltas[0], deltas[1]))
            result.counted += deltas[0] + deltas[1]
            result.clients += 1

    _save_counters(counters)
    now = utcnow()
    _add_usage(usage, now)
    history.add(node, usage, now)


def _client_ids(traffic: dict[str, tuple[int, int]]) -> dict[str, int]:
    ids: dict[str, int] = {}
    emails = sorted(traffic)
    for chunk in chunks(emails, 500):
        query = Client.select(Client.email, Client.id).where(Client.email.in_(chunk))
        ids.update(query.tuples())
    return ids


def _note_unknown(email: str, result: PollResult) -> None:
    result.unknown.append(email)
    if email not in _unknown_logged:
        _unknown_logged.add(email)
        log.info("ignoring traffic counters of unknown user %r", email)


def _save_counters(rows: list[tuple[int, str, str, int]]) -> None:
    fields = [Counter.node, Counter.email, Counter.direction, Counter.last_raw]
    target = [Counter.node, Counter.email, Counter.direction]
    for chunk in chunks(rows, 200):
        (
            Counter.insert_many(chunk, fields=fields)
            .on_conflict(conflict_target=target, preserve=[Counter.last_raw])
            .execute()
        )


def _add_usage(rows: list[tuple[int, int, int]], now: datetime) -> None:
    """Additive, so a lost poll or a retried one never double-counts.

    One UPDATE … FROM a VALUES list per few hundred clients, instead of one
    UPDATE per client: 10,000 clients cost dozens of statements, not 10,000.
    """
    table = Client._meta.table_name
    param = db.param
    for chunk in chunks(rows, 300):
        values = ", ".join([f"({param}, {param}, {param})"] * len(chunk))
        sql = (
            f"WITH v(id, up, down) AS (VALUES {values}) "
            f'UPDATE "{table}" SET uplink = "{table}".uplink + v.up, '
            f'downlink = "{table}".downlink + v.down, '
            f'used_total = "{table}".used_total + v.up + v.down, '
            f"last_traffic_at = {param} "
            f'FROM v WHERE "{table}".id = v.id'
        )
        params = [value for row in chunk for value in row]
        db.execute_sql(sql, [*params, now])


def poll_all(timeout: float = 5.0) -> list[PollResult]:
    return [poll_node(node, timeout) for node in Node.select()]

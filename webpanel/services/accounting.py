"""Counting traffic exactly (DESIGN.md §5)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime

from webpanel.bulk import upsert
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
        # The uptime belongs to this moment, not to when the counters arrive:
        # a slow QueryStats must not look like a restart.
        now = utcnow()
        raw = gw.query_stats("user>>>")
    except XrayError as error:
        mark_out_of_sync(node, error)
        return PollResult(node.name, online=False, error=str(error))

    result = PollResult(node.name, online=True)
    traffic = user_traffic(raw)
    with db.atomic():
        # Read what the last poll committed inside this transaction: another
        # poll (the CLI's, another process's) may have committed meanwhile.
        last_uptime, last_at = (
            Node.select(Node.poll_uptime, Node.poll_at)
            .where(Node.id == node.id)
            .tuples()
            .get()
        )
        if last_at is not None and last_at >= now:
            return result  # a newer reading is in already; this one counts nothing
        result.restarted = restarted_since(last_uptime, last_at, uptime, now)
        _commit(node, traffic, result.restarted, result)
        Node.update(poll_uptime=uptime, poll_at=now).where(Node.id == node.id).execute()
    node.poll_uptime, node.poll_at = uptime, now
    return result


def _commit(
    node: Node, traffic: dict[str, tuple[int, int]], restarted: bool, result: PollResult
) -> None:
    """Write deltas and new raw values in the caller's transaction."""
    if restarted:
        # Counters the new daemon hasn't recreated yet start again from 0.
        Counter.update(uplink=0, downlink=0).where(
            Counter.address == node.api_address
        ).execute()
    # Plain SQL for the two reads: the ORM's per-row work would be most of a
    # 10,000-client poll.
    rows = db.execute_sql(
        f'SELECT email, uplink, downlink FROM "{Counter._meta.table_name}" '
        f"WHERE address = {db.param}",
        (node.api_address,),
    )
    last = {email: (up, down) for email, up, down in rows}
    ids = _client_ids(traffic)

    counters = []
    usage = []
    for email, raw in traffic.items():
        before = last.get(email)
        if raw == before:
            continue
        counters.append((node.api_address, email, *raw))
        up = counter_delta(raw[0], before[0] if before else 0, restarted)
        down = counter_delta(raw[1], before[1] if before else 0, restarted)
        if email not in ids:
            _note_unknown(email, result)
        elif up or down:
            usage.append((ids[email], up, down))
            result.counted += up + down
            result.clients += 1

    upsert(
        Counter,
        [Counter.address, Counter.email],
        [Counter.uplink, Counter.downlink],
        counters,
    )
    moment = utcnow()
    _add_usage(usage, moment)
    history.add(node, usage, moment)


def _client_ids(traffic: dict[str, tuple[int, int]]) -> dict[str, int]:
    ids: dict[str, int] = {}
    table = Client._meta.table_name
    for chunk in chunks(sorted(traffic), 900):
        marks = ", ".join([db.param] * len(chunk))
        sql = f'SELECT email, id FROM "{table}" WHERE email IN ({marks})'
        ids.update(db.execute_sql(sql, chunk).fetchall())
    return ids


def _note_unknown(email: str, result: PollResult) -> None:
    result.unknown.append(email)
    if email not in _unknown_logged:
        _unknown_logged.add(email)
        log.info("ignoring traffic counters of unknown user %r", email)


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

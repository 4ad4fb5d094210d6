"""Figures about the whole server: for the status command, top lists, dashboards."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from peewee import fn

from webpanel.models import STATUSES
from webpanel.models import Client
from webpanel.models import Node
from webpanel.models import UsageHour
from webpanel.models import utcnow


@dataclass(frozen=True)
class ServerStats:
    nodes: list[Node]
    clients_by_status: dict[str, int]
    traffic_today: int  # bytes since 00:00 UTC, all nodes
    clients_total: int


def server_stats(now: datetime | None = None) -> ServerStats:
    today = (now or utcnow()).replace(hour=0, minute=0, second=0, microsecond=0)
    counts = dict(
        Client.select(Client.status, fn.COUNT(Client.id))
        .group_by(Client.status)
        .tuples()
    )
    by_status = {status: counts.get(status, 0) for status in STATUSES}
    traffic = (
        UsageHour.select(fn.COALESCE(fn.SUM(UsageHour.uplink + UsageHour.downlink), 0))
        .where(UsageHour.hour >= today)
        .scalar()
    )
    return ServerStats(
        nodes=list(Node.select().order_by(Node.id)),
        clients_by_status=by_status,
        traffic_today=int(traffic or 0),
        clients_total=sum(by_status.values()),
    )


def top_clients(
    hours: int = 24, limit: int = 10, now: datetime | None = None
) -> list[tuple[Client, int]]:
    """The clients that moved the most bytes in the last `hours`, busiest first."""
    since = (now or utcnow()) - timedelta(hours=hours)
    total = fn.SUM(UsageHour.uplink + UsageHour.downlink)
    rows = (
        UsageHour.select(UsageHour.client_id, total.alias("total"))
        .where(UsageHour.hour >= since.replace(minute=0, second=0, microsecond=0))
        .group_by(UsageHour.client_id)
        .order_by(total.desc())
        .limit(limit)
        .tuples()
    )
    ranked = list(rows)
    clients = {
        c.id: c for c in Client.select().where(Client.id.in_([r[0] for r in ranked]))
    }
    return [(clients[cid], int(n)) for cid, n in ranked if cid in clients]

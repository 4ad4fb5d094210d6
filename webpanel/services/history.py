"""Usage history: hourly and daily buckets per client and node."""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta

from peewee import EXCLUDED
from peewee import Field
from peewee import fn

from webpanel.models import BaseModel
from webpanel.models import Node
from webpanel.models import NodeUsage
from webpanel.models import UsageDay
from webpanel.models import UsageHour
from webpanel.models import chunks
from webpanel.models import db
from webpanel.models import utcnow

Series = list[tuple[datetime, int, int]]


def add(node: Node, usage: list[tuple[int, int, int]], now: datetime) -> None:
    """Add (client id, up, down) to the node's totals, this hour and this day."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    totals = [(client_id, node.id, up, down) for client_id, up, down in usage]
    _add_to(NodeUsage, [], totals)
    for model, field, start in (
        (UsageHour, UsageHour.hour, hour),
        (UsageDay, UsageDay.day, hour.replace(hour=0)),
    ):
        rows = [(client_id, node.id, start, up, down) for client_id, up, down in usage]
        _add_to(model, [field], rows)


def _add_to(model: type[BaseModel], keys: list[Field], rows: list[tuple]) -> None:
    """Insert rows, or add their bytes to the rows already there."""
    target = [model.client_id, model.node, *keys]
    fields = [*target, model.uplink, model.downlink]
    for chunk in chunks(rows, 150):
        (
            model.insert_many(chunk, fields=fields)
            .on_conflict(
                conflict_target=target,
                update={
                    model.uplink: model.uplink + EXCLUDED.uplink,
                    model.downlink: model.downlink + EXCLUDED.downlink,
                },
            )
            .execute()
        )


def per_node(client_id: int) -> list[tuple[str, int, int]]:
    """(node name, up, down) of a client's all-time usage on each node."""
    query = (
        NodeUsage.select(Node.name, NodeUsage.uplink, NodeUsage.downlink)
        .join(Node)
        .where(NodeUsage.client_id == client_id)
        .order_by(Node.id)
        .tuples()
    )
    return list(query)


def prune(hourly_days: int, daily_days: int, now: datetime | None = None) -> int:
    """Drop buckets older than their keep time; return how many went."""
    now = now or utcnow()
    with db.atomic():
        hours = UsageHour.delete().where(
            UsageHour.hour < now - timedelta(days=hourly_days)
        )
        days = UsageDay.delete().where(UsageDay.day < now - timedelta(days=daily_days))
        return hours.execute() + days.execute()


def hourly(client_id: int, hours: int = 24, now: datetime | None = None) -> Series:
    """(hour, up, down) for each of the last `hours` hours, all nodes summed."""
    now = (now or utcnow()).replace(minute=0, second=0, microsecond=0)
    slots = [now - timedelta(hours=hours - 1 - i) for i in range(hours)]
    return _series(UsageHour, UsageHour.hour, client_id, slots)


def daily(client_id: int, days: int = 30, now: datetime | None = None) -> Series:
    """(day, up, down) for each of the last `days` days, all nodes summed."""
    today = (now or utcnow()).replace(hour=0, minute=0, second=0, microsecond=0)
    slots = [today - timedelta(days=days - 1 - i) for i in range(days)]
    return _series(UsageDay, UsageDay.day, client_id, slots)


def _series(
    model: type[UsageHour | UsageDay],
    field: Field,
    client_id: int,
    slots: list[datetime],
) -> Series:
    query = (
        model.select(field, fn.SUM(model.uplink), fn.SUM(model.downlink))
        .where((model.client_id == client_id) & (field >= slots[0]))
        .group_by(field)
        .tuples()
    )
    # SQLite hands an aggregate's stored text back as it is.
    found = {
        at if isinstance(at, datetime) else datetime.fromisoformat(at): (up, down)
        for at, up, down in query
    }
    return [(slot, *found.get(slot, (0, 0))) for slot in slots]

"""Usage history: hourly and daily buckets per client and node."""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta

from peewee import Field
from peewee import fn

from webpanel.bulk import upsert
from webpanel.models import BaseModel
from webpanel.models import Node
from webpanel.models import NodeUsage
from webpanel.models import State
from webpanel.models import UsageDay
from webpanel.models import UsageHour
from webpanel.models import db
from webpanel.models import utcnow

Series = list[tuple[datetime, int, int]]

ROLLED_UNTIL = "usage_rolled_until"  # hours since EPOCH
EPOCH = datetime(2000, 1, 1)


def add(node: Node, usage: list[tuple[int, int, int]], now: datetime) -> None:
    """Add (client id, up, down) to this hour's buckets; roll_up does the rest."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    rows = [(client_id, node.id, hour, up, down) for client_id, up, down in usage]
    keys = [UsageHour.client_id, UsageHour.node, UsageHour.hour]
    upsert(UsageHour, keys, [UsageHour.uplink, UsageHour.downlink], rows, add=True)


def roll_up(now: datetime | None = None) -> int:
    """Add the hours that have closed to the daily buckets and node totals.

    Polls write only the hour, which keeps a 10,000-client poll short; this
    runs a few times an hour. Returns how many hours it rolled up.
    """
    current = (now or utcnow()).replace(minute=0, second=0, microsecond=0)
    with db.atomic():
        start = rolled_until()
        if start is None or start >= current:
            _set_rolled_until(current if start is None else start)
            return 0
        closed = (UsageHour.hour >= start) & (UsageHour.hour < current)
        query = (
            UsageHour.select(
                UsageHour.client_id,
                UsageHour.node,
                UsageHour.hour,
                UsageHour.uplink,
                UsageHour.downlink,
            )
            .where(closed)
            .tuples()
        )
        days: dict[tuple, list[int]] = {}
        totals: dict[tuple, list[int]] = {}
        for client_id, node_id, hour, up, down in query:
            day = _as_datetime(hour).replace(hour=0)
            for bucket, key in (
                (days, (client_id, node_id, day)),
                (totals, (client_id, node_id)),
            ):
                pair = bucket.setdefault(key, [0, 0])
                pair[0] += up
                pair[1] += down
        _add_to(UsageDay, [UsageDay.day], [(*k, *v) for k, v in days.items()])
        _add_to(NodeUsage, [], [(*k, *v) for k, v in totals.items()])
        _set_rolled_until(current)
    return int((current - start).total_seconds() // 3600)


def rolled_until() -> datetime | None:
    """The first hour not yet in the daily buckets (None before the first roll-up)."""
    state = State.get_or_none(State.key == ROLLED_UNTIL)
    return None if state is None else EPOCH + timedelta(hours=state.value)


def _set_rolled_until(hour: datetime) -> None:
    value = int((hour - EPOCH).total_seconds() // 3600)
    State.insert(key=ROLLED_UNTIL, value=value).on_conflict_replace().execute()


def _add_to(model: type[BaseModel], keys: list[Field], rows: list[tuple]) -> None:
    """Insert rows, or add their bytes to the rows already there."""
    key_fields = [model.client_id, model.node, *keys]
    upsert(model, key_fields, [model.uplink, model.downlink], rows, add=True)


def _open_hours(client_id: int) -> list[tuple[int, datetime, int, int]]:
    """(node id, hour, up, down) of a client's hours not yet rolled up."""
    start = rolled_until()
    query = UsageHour.select(
        UsageHour.node, UsageHour.hour, UsageHour.uplink, UsageHour.downlink
    ).where(UsageHour.client_id == client_id)
    if start is not None:
        query = query.where(UsageHour.hour >= start)
    return [
        (node, _as_datetime(hour), up, down) for node, hour, up, down in query.tuples()
    ]


def per_node(client_id: int) -> list[tuple[str, int, int]]:
    """(node name, up, down) of a client's all-time usage on each node."""
    totals: dict[int, list[int]] = {}
    rolled = NodeUsage.select(NodeUsage.node, NodeUsage.uplink, NodeUsage.downlink)
    for node_id, up, down in rolled.where(NodeUsage.client_id == client_id).tuples():
        totals[node_id] = [up, down]
    for node_id, _, up, down in _open_hours(client_id):
        _add_pair(totals, node_id, up, down)
    names = dict(Node.select(Node.id, Node.name).tuples())
    return [
        (names[n], up, down) for n, (up, down) in sorted(totals.items()) if n in names
    ]


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
    merged = {
        slot: [up, down]
        for slot, up, down in _series(UsageDay, UsageDay.day, client_id, slots)
    }
    for _, hour, up, down in _open_hours(client_id):
        day = hour.replace(hour=0)
        if day in merged:
            _add_pair(merged, day, up, down)
    return [(slot, *merged[slot]) for slot in slots]


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
    found = {_as_datetime(at): (up, down) for at, up, down in query}
    return [(slot, *found.get(slot, (0, 0))) for slot in slots]


def _as_datetime(value: datetime | str) -> datetime:
    # SQLite hands an aggregate's stored text back as it is.
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _add_pair(bucket: dict, key: object, up: int, down: int) -> None:
    pair = bucket.setdefault(key, [0, 0])
    pair[0] += up
    pair[1] += down

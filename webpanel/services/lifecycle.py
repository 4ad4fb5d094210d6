"""Statuses over time: limits, expiry, on hold, and periodic usage resets.

The rules of DESIGN.md §3. None means unlimited; 0 is a limit. An admin's
`disabled` is never undone here.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from webpanel.models import IN_XRAY
from webpanel.models import Client
from webpanel.models import db
from webpanel.models import utcnow
from webpanel.services import audit

ACTOR = "enforcement"
PERIOD_DAYS = {"day": 1, "week": 7}
MONTHS = {"month": 1, "year": 12}


@dataclass(frozen=True)
class Change:
    """One client whose status or usage an enforcement pass changed."""

    client: Client
    event: str  # limited, expired, activated, reset
    old_status: str

    @property
    def xray_changed(self) -> bool:
        return (self.old_status in IN_XRAY) != self.client.in_xray


def status_for(client: Client, now: datetime) -> str:
    """The status a client that is not disabled should have now."""
    if client.data_limit is not None and client.used >= client.data_limit:
        return "limited"
    if client.expire_at is not None and client.expire_at <= now:
        return "expired"
    if client.on_hold_days is not None and client.expire_at is None:
        return "on_hold"
    return "active"


def add_months(moment: datetime, months: int, day: int) -> datetime:
    """`months` later on `day`, or on the month's last day if it is shorter."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    last = calendar.monthrange(year, month)[1]
    return moment.replace(year=year, month=month, day=min(day, last))


def next_reset(strategy: str, anchor: datetime, now: datetime) -> datetime | None:
    """The first reset after `now` in the series that starts at `anchor`."""
    if strategy in PERIOD_DAYS:
        step = timedelta(days=PERIOD_DAYS[strategy])
        periods = max(0, (now - anchor) // step) + 1
        return anchor + periods * step
    if strategy in MONTHS:
        months = MONTHS[strategy]
        passed = (now.year - anchor.year) * 12 + now.month - anchor.month
        count = max(1, passed // months)
        moment = add_months(anchor, count * months, anchor.day)
        while moment <= now:
            count += 1
            moment = add_months(anchor, count * months, anchor.day)
        return moment
    return None


def enforce(now: datetime | None = None) -> list[Change]:
    """Apply the rules to the clients that change now; save and audit them.

    Each query selects only rows whose status or period changes, so a pass
    costs what changes, not how many clients there are. Bringing Xray in
    line and sending signals is the caller's.
    """
    now = now or utcnow()
    changes: list[Change] = []
    with db.atomic():
        for step in (_start_on_hold, _reset_periods, _limit_and_expire):
            found = step(now)
            for change in found:
                change.client.updated_at = now
                change.client.save()
                audit.record(change.client, change.event, ACTOR, _detail(change))
            changes += found
    return changes


def _detail(change: Change) -> str:
    if change.old_status == change.client.status:
        return change.client.status
    return f"{change.old_status} → {change.client.status}"


def _start_on_hold(now: datetime) -> list[Change]:
    """The expiry clock of an on-hold client starts at its first traffic."""
    started = Client.select().where(
        (Client.status == "on_hold") & Client.last_traffic_at.is_null(False)
    )
    changes = []
    for client in started:
        first = min(client.last_traffic_at, now)
        client.expire_at = first + timedelta(days=client.on_hold_days or 0)
        client.on_hold_days = None  # started: an edit can't put it back on hold
        client.status = "active"
        changes.append(Change(client, "activated", "on_hold"))
    return changes


def _reset_periods(now: datetime) -> list[Change]:
    due = Client.select().where(
        (Client.reset_strategy != "none")
        & Client.next_reset_at.is_null(False)
        & (Client.next_reset_at <= now)
    )
    changes = []
    for client in due:
        old = client.status
        client.uplink = client.downlink = 0
        client.next_reset_at = next_reset(client.reset_strategy, client.created_at, now)
        if old == "limited":
            client.status = status_for(client, now)
        changes.append(Change(client, "reset", old))
    return changes


def _limit_and_expire(now: datetime) -> list[Change]:
    in_xray = Client.status.in_(IN_XRAY)
    over = Client.data_limit.is_null(False) & (
        (Client.uplink + Client.downlink) >= Client.data_limit
    )
    late = Client.expire_at.is_null(False) & (Client.expire_at <= now)
    changes = []
    for client in Client.select().where(in_xray & (over | late)):
        old = client.status
        client.status = status_for(client, now)
        changes.append(Change(client, client.status, old))
    return changes

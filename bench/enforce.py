"""One enforcement pass over 100,000 clients, of which exactly 100 change.

Ours is `lifecycle.enforce(now)` (no Xray pushes): SQL that selects only
the rows that change. The baseline loads every client row and applies the
same rules in Python. The clients are a mix of statuses, limits, expiries
and reset periods, with traps that must not change (unlimited heavy users,
disabled clients past their limits); 50 have just used up their data and
50 have just expired.

    .venv/bin/python bench/enforce.py
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from datetime import timedelta
from typing import Any

import common
from peewee import fn

from webpanel.models import Client
from webpanel.models import db
from webpanel.models import utcnow
from webpanel.services import audit
from webpanel.services import lifecycle

CLIENTS = 100_000
CROSSING_LIMIT = 50
CROSSING_EXPIRY = 50
CROSSING = CROSSING_LIMIT + CROSSING_EXPIRY
RUNS = 5
GB = 1024**3
PERIOD_HOURS = {"day": 24, "week": 24 * 7, "month": 24 * 30, "year": 24 * 365}


def main() -> None:
    with (
        common.workspace("enforce") as folder,
        common.panel(common.idle_api(), folder),
    ):
        figures = measure()
    common.report(figures)


def measure() -> dict[str, float]:
    now = utcnow().replace(microsecond=0)
    common.insert_clients(population(now, random.Random(42)))
    before = status_counts()
    common.say(f"{CLIENTS} clients: {before}")

    baseline = [rolled_back(lambda: naive_enforce(now)) for _ in range(2)]
    ours = [rolled_back(lambda: lifecycle.enforce(now)) for _ in range(RUNS - 1)]
    ours.append(common.timed(lambda: lifecycle.enforce(now)))  # this one stays
    for _, changes in baseline + ours:
        common.check(len(changes) == CROSSING, f"a pass changed {len(changes)}")
    common.say(f"baseline, every row in Python (s): {times(baseline)}")
    common.say(f"ours, {RUNS} passes (s): {times(ours)}")

    check_outcome(now, before)
    best = min(seconds for seconds, _ in ours)
    return {
        "enforce_100k_s": round(best, 3),
        "enforce_ratio": common.ratio(min(s for s, _ in baseline), best),
    }


def times(runs: list[tuple[float, Any]]) -> str:
    return common.seconds_text([seconds for seconds, _ in runs])


# The clients


def population(now: datetime, rng: random.Random) -> list[dict[str, Any]]:
    """CLIENTS rows; exactly CROSSING of them cross a limit or expiry at `now`."""
    kinds = [crossing_limit] * CROSSING_LIMIT + [crossing_expiry] * CROSSING_EXPIRY
    rest = CLIENTS - len(kinds)
    for kind, share in MIX:
        kinds += [kind] * round(rest * share)
    kinds += [active_unlimited] * (CLIENTS - len(kinds))
    rng.shuffle(kinds)

    rows = []
    for number, kind in enumerate(kinds):
        created = now - timedelta(days=rng.randint(1, 400))
        fields = kind(now, rng)
        used = fields.get("uplink", 0) + fields.get("downlink", 0)
        fields.setdefault("used_total", used)
        rows.append(common.client_row(number, created, **fields))
    return rows


def usage(total: int, rng: random.Random) -> dict[str, int]:
    up = rng.randint(0, total // 10)
    return {"uplink": up, "downlink": total - up}


def crossing_limit(now: datetime, rng: random.Random) -> dict[str, Any]:
    """Active, and its usage has just reached its limit (or gone past it)."""
    limit = rng.randint(1, 100) * GB
    expiry = rng.choice([None, now + timedelta(days=rng.randint(1, 90))])
    return {
        "data_limit": limit,
        "expire_at": expiry,
        **usage(limit + rng.randint(0, 10**6), rng),
    }


def crossing_expiry(now: datetime, rng: random.Random) -> dict[str, Any]:
    """Active and under its limit, but its expiry passed in the last minute."""
    limit = rng.choice([None, 50 * GB])
    return {
        "data_limit": limit,
        "expire_at": now - timedelta(seconds=rng.randint(0, 59)),
        **usage(rng.randint(0, 10 * GB), rng),
    }


def active_unlimited(now: datetime, rng: random.Random) -> dict[str, Any]:
    """No limit, no expiry, and heavy use: must never be limited."""
    return usage(rng.randint(0, 5000 * GB), rng)


def active_limited_expiring(now: datetime, rng: random.Random) -> dict[str, Any]:
    limit = rng.randint(1, 500) * GB
    return {
        "data_limit": limit,
        "expire_at": now + timedelta(days=rng.randint(1, 365)),
        **usage(rng.randint(0, limit - 1), rng),
    }


def active_periodic(now: datetime, rng: random.Random) -> dict[str, Any]:
    """A limit that resets each period; the next reset is still ahead."""
    limit = rng.randint(1, 200) * GB
    strategy = rng.choice(list(PERIOD_HOURS))
    return {
        "data_limit": limit,
        "reset_strategy": strategy,
        "next_reset_at": now + timedelta(hours=rng.randint(1, PERIOD_HOURS[strategy])),
        **usage(rng.randint(0, limit - 1), rng),
    }


def active_expiring(now: datetime, rng: random.Random) -> dict[str, Any]:
    return {
        "expire_at": now + timedelta(seconds=rng.randint(1, 365 * 86400)),
        **usage(rng.randint(0, 100 * GB), rng),
    }


def on_hold(now: datetime, rng: random.Random) -> dict[str, Any]:
    """Waiting for a first connection: no traffic yet, no expiry yet."""
    return {"status": "on_hold", "on_hold_days": rng.choice([7, 30, 90])}


def disabled(now: datetime, rng: random.Random) -> dict[str, Any]:
    """An admin's choice, even when past a limit or expiry: never touched."""
    return {
        "status": "disabled",
        "data_limit": rng.choice([None, 0, 10 * GB]),
        "expire_at": rng.choice([None, now - timedelta(days=rng.randint(1, 60))]),
        **usage(rng.randint(0, 20 * GB), rng),
    }


def limited(now: datetime, rng: random.Random) -> dict[str, Any]:
    limit = rng.randint(1, 50) * GB
    monthly = rng.random() < 0.5
    return {
        "status": "limited",
        "data_limit": limit,
        "reset_strategy": "month" if monthly else "none",
        "next_reset_at": now + timedelta(days=rng.randint(1, 28)) if monthly else None,
        **usage(limit + rng.randint(0, GB), rng),
    }


def expired(now: datetime, rng: random.Random) -> dict[str, Any]:
    return {
        "status": "expired",
        "expire_at": now - timedelta(days=rng.randint(1, 365)),
        **usage(rng.randint(0, 50 * GB), rng),
    }


# Kinds and their shares of the clients that do not change now.
MIX: list[tuple[Callable[[datetime, random.Random], dict[str, Any]], float]] = [
    (active_limited_expiring, 0.28),
    (active_periodic, 0.12),
    (active_expiring, 0.12),
    (on_hold, 0.04),
    (disabled, 0.08),
    (limited, 0.07),
    (expired, 0.07),
]


# The baseline


def naive_enforce(now: datetime) -> list[Client]:
    """Load every client, apply the rules in Python, save what changed."""
    changed = []
    with db.atomic():
        for client in Client.select():
            old = client.status
            event = naive_rules(client, now)
            if event is None:
                continue
            client.updated_at = now
            client.save()
            audit.record(client, event, lifecycle.ACTOR, f"{old} → {client.status}")
            changed.append(client)
    return changed


def naive_rules(client: Client, now: datetime) -> str | None:
    """The event a client goes through now, changing it in place; or None."""
    if client.status == "on_hold" and client.last_traffic_at is not None:
        first = min(client.last_traffic_at, now)
        client.expire_at = first + timedelta(days=client.on_hold_days or 0)
        client.status = "active"
        return "activated"
    due = client.next_reset_at is not None and client.next_reset_at <= now
    if client.reset_strategy != "none" and due:
        client.uplink = client.downlink = 0
        client.next_reset_at = lifecycle.next_reset(
            client.reset_strategy, client.created_at, now
        )
        if client.status == "limited":
            client.status = lifecycle.status_for(client, now)
        return "reset"
    if client.in_xray:
        status = lifecycle.status_for(client, now)
        if status in ("limited", "expired"):
            client.status = status
            return status
    return None


# Running and checking


def rolled_back(call: Callable[[], list]) -> tuple[float, list]:
    """Time a pass, then undo it, so every pass meets the same clients."""
    with db.atomic() as transaction:
        seconds, changes = common.timed(call)
        transaction.rollback()
    return seconds, changes


def status_counts() -> dict[str, int]:
    query = Client.select(Client.status, fn.COUNT(Client.id)).group_by(Client.status)
    return dict(query.tuples())


def check_outcome(now: datetime, before: dict[str, int]) -> None:
    """The committed pass moved exactly the crossing clients, and only them."""
    after = status_counts()
    expected = dict(before)
    expected["active"] -= CROSSING
    expected["limited"] += CROSSING_LIMIT
    expected["expired"] += CROSSING_EXPIRY
    common.check(after == expected, f"statuses {after}, expected {expected}")
    touched = Client.select().where(Client.updated_at == now).count()
    common.check(touched == CROSSING, f"{touched} clients were updated")
    again = lifecycle.enforce(now)
    common.check(not again, f"a second pass changed {len(again)} more")
    common.say(
        f"checked: exactly {CROSSING} changed ({CROSSING_LIMIT} limited, "
        f"{CROSSING_EXPIRY} expired); a second pass changes none"
    )


if __name__ == "__main__":
    main()

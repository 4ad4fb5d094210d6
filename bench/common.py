"""What every benchmark needs: a panel on a temp folder, many clients, a clock.

The scripts run as files (`.venv/bin/python bench/poll.py`), so this module
puts the repository on sys.path before anything of ours is imported. Each
script prints its figures one per line and, last, the same figures as one
JSON object, which bench/run_all.py collects.
"""

from __future__ import annotations

import cProfile
import io
import json
import logging
import os
import pstats
import secrets
import sys
import tempfile
import time
import uuid as uuidlib
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Before the app configures logging: keep INFO lines out of the figures.
logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

from flask import Flask
from peewee import Field

from tests.daemons import free_port
from webpanel import create_app
from webpanel.models import Client
from webpanel.models import Node
from webpanel.models import db
from webpanel.models import utcnow
from webpanel.nodes import close_gateways
from xray.client import Unavailable
from xray.client import XrayClient

T = TypeVar("T")

TIMEOUT = 5.0  # seconds: the deadline on every gRPC call a benchmark makes


class BenchError(Exception):
    """A benchmark's own check failed: its figures would mean nothing."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise BenchError(message)


def say(text: str) -> None:
    print(text, flush=True)


# Settings, folders and the app


def panel_env(api: str, **extra: str) -> dict[str, str]:
    """Settings for a benchmark panel: obvious fakes, loopback only."""
    env = {
        "SECRET_KEY": "bench-secret-key-not-for-production",
        "XRAY_API": api,
        "XRAY_TIMEOUT": str(TIMEOUT),
        "PUBLIC_HOST": "vpn.example.com",
        "PUBLIC_PORT": "8443",
        "REALITY_SNI": "www.example.com",
        "REALITY_PUBLIC_KEY": "Z84J2IelR9ch3k8VtlVhhs5ycBUlXA7wHBWcBrjqnAw",
        "REALITY_SHORT_ID": "6ba85179e30d4fc2",
    }
    env.update(extra)
    return env


@contextmanager
def workspace(name: str) -> Iterator[Path]:
    """A temp folder for one run's database, instance and daemon; removed after."""
    with tempfile.TemporaryDirectory(prefix=f"infinity-bench-{name}-") as folder:
        yield Path(folder)


@contextmanager
def panel(api: str, folder: Path, **extra: str) -> Iterator[Flask]:
    """An app on folder/instance, with its app context and connection open."""
    app = create_app(panel_env(api, **extra), instance_path=folder / "instance")
    try:
        with app.app_context(), db.connection_context():
            yield app
    finally:
        close_gateways()


def idle_api() -> str:
    """A loopback API address where nothing listens, for runs without Xray."""
    return f"127.0.0.1:{free_port()}"


def main_node() -> Node:
    return Node.get(Node.name == "main")


# Clients


def client_row(number: int, now: datetime, **fields: Any) -> dict[str, Any]:
    """One full client row: email b<number>, active, unlimited, no expiry."""
    row = {
        "name": f"Bench client {number}",
        "name_key": f"bench client {number}",
        "email": f"b{number}",
        "uuid": str(uuidlib.uuid4()),
        "sub_token": secrets.token_urlsafe(24),
        "flow": "",
        "status": "active",
        "data_limit": None,
        "expire_at": None,
        "uplink": 0,
        "downlink": 0,
        "used_total": 0,
        "last_traffic_at": None,
        "on_hold_days": None,
        "reset_strategy": "none",
        "next_reset_at": None,
        "pending": False,
        "created_at": now,
        "updated_at": now,
    }
    row.update(fields)
    return row


def insert_clients(rows: list[dict[str, Any]]) -> None:
    """Bulk insert in one transaction, fields missing from a row at their default.

    One prepared INSERT run over all rows (executemany): Client.insert_many
    builds its SQL value by value, about 1 s per 10,000 rows here, 4 times
    slower, which for 100,000 rows is ten seconds of setup.
    """
    fields = [field for field in Client._meta.sorted_fields if field.name != "id"]
    columns = ", ".join(f'"{field.column_name}"' for field in fields)
    marks = ", ".join("?" * len(fields))
    sql = f'INSERT INTO "{Client._meta.table_name}" ({columns}) VALUES ({marks})'
    values = [
        tuple(field.db_value(row.get(field.name, _default(field))) for field in fields)
        for row in rows
    ]
    with db.atomic():
        db.connection().executemany(sql, values)


def _default(field: Field) -> Any:
    default = field.default
    return default() if callable(default) else default


def make_clients(count: int, **fields: Any) -> list[dict[str, Any]]:
    """Insert `count` plain clients b0 … b<count-1>; return their rows."""
    now = utcnow()
    rows = [client_row(number, now, **fields) for number in range(count)]
    insert_clients(rows)
    check(Client.select().count() == count, f"expected {count} clients in the DB")
    return rows


# Daemons


def wait_until_answering(gateway: XrayClient, timeout: float = 15.0) -> None:
    """Block until a (re)started daemon answers on this channel.

    A channel reconnects by itself about a second after a restart; waiting
    here keeps that second out of the timed part.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            gateway.sys_stats()
            return
        except Unavailable:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


# Timing and figures


def timed(call: Callable[[], T]) -> tuple[float, T]:
    """(seconds, result) of one call, on the monotonic high-resolution clock."""
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def ratio(baseline: float, ours: float) -> float:
    return round(baseline / ours, 1) if ours > 0 else float("inf")


def seconds_text(values: list[float]) -> str:
    return ", ".join(f"{value:.3f}" for value in values)


def profile(label: str, call: Callable[[], Any], lines: int = 25) -> None:
    """With BENCH_PROFILE=1: run `call` once more under cProfile, print the top."""
    if os.environ.get("BENCH_PROFILE") != "1":
        return
    profiler = cProfile.Profile()
    profiler.runcall(call)
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("cumulative").print_stats(lines)
    say(f"--- cProfile of {label} (main thread only)\n{text.getvalue().strip()}")


def report(figures: dict[str, float]) -> None:
    """Each figure on its own line, then all of them as one JSON line."""
    for name, value in figures.items():
        say(f"{name} = {value}")
    say(json.dumps(figures))

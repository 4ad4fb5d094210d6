"""Connecting the database and bringing its schema up to date."""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from peewee import Database
from peewee import SqliteDatabase
from playhouse.db_url import connect
from playhouse.db_url import parse

from webpanel.models import MODELS
from webpanel.models import ApiKey
from webpanel.models import AuditEntry
from webpanel.models import Client
from webpanel.models import SchemaVersion
from webpanel.models import WebhookDelivery
from webpanel.models import db
from webpanel.services.inputs import NAME_MAX
from webpanel.services.inputs import name_key

log = logging.getLogger(__name__)

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "busy_timeout": 10_000,
    "foreign_keys": 1,
    "synchronous": "normal",
}


def open_database(url: str) -> Database:
    """Connect the shared proxy to the database named by url."""
    if url.startswith("sqlite:"):
        # In WAL mode a transaction that reads first and writes later fails at
        # once ("database is locked") if another connection wrote in between;
        # the busy timeout can't help. Taking the write lock at BEGIN makes
        # writers queue instead.
        database = SqliteDatabase(
            parse(url)["database"],
            pragmas=SQLITE_PRAGMAS,
            check_same_thread=False,
            lock_type="IMMEDIATE",
        )
    else:
        database = connect(url)
    db.initialize(database)
    return database


def _initial(database: Database) -> None:
    database.create_tables(MODELS)  # IF NOT EXISTS: later steps may repeat tables


def _api_keys(database: Database) -> None:
    database.create_tables([ApiKey, WebhookDelivery])


def _name_keys_nfkc(database: Database) -> None:
    """Name keys fold Unicode forms and joiners too (NFKC), not only case.

    Two old names that now fold alike can't both keep them: the later one
    gets " (2)" (or the next free number), noted in its audit log.
    """

    rows = list(
        Client.select(Client.id, Client.name, Client.name_key).order_by(Client.id)
    )
    taken = {row.name_key for row in rows}
    for row in rows:
        new = name_key(row.name)
        if new == row.name_key:
            continue
        taken.discard(row.name_key)
        name, number = row.name, 2
        while new in taken:
            name = f"{row.name[: NAME_MAX - 4]} ({number})"
            new, number = name_key(name), number + 1
        Client.update(name=name, name_key=new).where(Client.id == row.id).execute()
        taken.add(new)
        if name != row.name:
            AuditEntry.create(
                actor="upgrade",
                event="renamed",
                client_id=row.id,
                client_name=name,
                detail=f"renamed from {row.name}: another name reads the same",
            )


# Each entry brings the schema from version N-1 to N. Append, never edit.
MIGRATIONS: list[Callable[[Database], None]] = [
    _initial,
    _api_keys,
    _name_keys_nfkc,
]


def schema_version(database: Database) -> int:
    if not SchemaVersion.table_exists():
        return 0
    row = SchemaVersion.select().order_by(SchemaVersion.version.desc()).first()
    return row.version if row else 0


def migrate(database: Database) -> int:
    """Apply the migrations not yet applied; return the schema version."""
    with database.connection_context():
        current = schema_version(database)
        for version, step in enumerate(MIGRATIONS, start=1):
            if version <= current:
                continue
            with database.atomic():
                step(database)
                SchemaVersion.create(version=version)
            log.info("database schema migrated to version %d", version)
            current = version
    return current


@contextmanager
def start_lock(instance: Path) -> Iterator[None]:
    """Hold instance/start.lock: processes starting together take turns."""
    with open(instance / "start.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

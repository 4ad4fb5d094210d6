"""Database backups: a consistent copy of the SQLite file, taken while it runs."""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from datetime import datetime
from pathlib import Path

from peewee import SqliteDatabase

from webpanel.models import db
from webpanel.models import utcnow

log = logging.getLogger(__name__)

KEEP = 10


class BackupError(Exception):
    pass


def backup_database(folder: Path, now: datetime | None = None) -> Path:
    """Copy the live SQLite database into folder; keep the newest KEEP copies."""
    source = getattr(db.obj, "database", None)
    if not isinstance(db.obj, SqliteDatabase) or not Path(str(source)).is_file():
        raise BackupError("Backups are made of SQLite databases only.")
    folder.mkdir(parents=True, exist_ok=True)
    stamp = (now or utcnow()).strftime("%Y%m%d-%H%M%S")
    target = folder / f"infinity-{stamp}.db"
    with (
        closing(sqlite3.connect(source)) as live,
        closing(sqlite3.connect(target)) as copy,
    ):
        live.backup(copy)  # SQLite's online backup: consistent under writes
    target.chmod(0o600)
    for old in sorted(folder.glob("infinity-*.db"))[:-KEEP]:
        old.unlink()
    log.info("database backed up to %s", target)
    return target

"""Bulk upserts: one prepared statement run over many rows.

Building an INSERT … ON CONFLICT through the ORM for 10,000 rows costs far
more than running it: here the SQL is written once and the driver's
executemany binds the rows. Works on SQLite (3.24+) and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

from peewee import Field

from webpanel.models import BaseModel
from webpanel.models import db


def upsert(
    model: type[BaseModel],
    keys: Sequence[Field],
    values: Sequence[Field],
    rows: Sequence[Sequence[object]],
    *,
    add: bool = False,
) -> None:
    """Insert rows of keys + values; on a key clash set the values, or add them."""
    if not rows:
        return
    table = model._meta.table_name
    columns = [field.column_name for field in (*keys, *values)]
    changed = columns[len(keys) :]
    if add:
        changes = [f'"{c}" = "{table}"."{c}" + excluded."{c}"' for c in changed]
    else:
        changes = [f'"{c}" = excluded."{c}"' for c in changed]
    quoted = ", ".join(f'"{c}"' for c in columns)
    conflict = ", ".join(f'"{k.column_name}"' for k in keys)
    marks = ", ".join([db.param] * len(columns))
    sql = (
        f'INSERT INTO "{table}" ({quoted}) VALUES ({marks}) '
        f"ON CONFLICT ({conflict}) DO UPDATE SET {', '.join(changes)}"
    )
    cursor = db.cursor()
    cursor.executemany(sql, rows)

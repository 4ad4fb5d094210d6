"""Jinja filters: how bytes and times read on the pages."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import tzinfo

from flask import Flask

UNITS = ("B", "KB", "MB", "GB", "TB", "PB")
RU_UNITS = ("Б", "КБ", "МБ", "ГБ", "ТБ", "ПБ")


def human_bytes(value: int | None, units: tuple[str, ...] = UNITS) -> str:
    """1536 → '1.50 KB', with 1 KB = 1024 bytes as in the data limits."""
    if value is None:
        return "∞"
    if abs(value) < 1024:
        return f"{value} {units[0]}"
    size = float(value)
    for unit in units[1:-1]:
        size /= 1024
        if abs(size) < 1024:
            return f"{size:.2f} {unit}"
    return f"{size / 1024:.2f} {units[-1]}"


def last_day(value: datetime | None, tz: tzinfo) -> str:
    """The date a form shows for an expiry: the last day it still works."""
    if value is None:
        return ""
    local = value.replace(tzinfo=UTC).astimezone(tz)
    return (local - timedelta(microseconds=1)).date().isoformat()


def register_filters(app: Flask) -> None:
    settings = app.extensions["infinity.settings"]

    @app.template_filter("bytes")
    def _bytes(value: int | None) -> str:
        return human_bytes(value)

    @app.template_filter("gb")
    def _gb(value: int | None) -> str:
        """Bytes as the GB number the forms take back: 1.5, not 1.50 GB."""
        if value is None:
            return ""
        return f"{value / 1024**3:.3f}".rstrip("0").rstrip(".")

    @app.template_filter("last_day")
    def _last_day(value: datetime | None) -> str:
        return last_day(value, settings.tz)

    @app.template_filter("local")
    def _local(value: datetime | None) -> str:
        if value is None:
            return "never"
        local = value.replace(tzinfo=UTC).astimezone(settings.tz)
        return local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or "")

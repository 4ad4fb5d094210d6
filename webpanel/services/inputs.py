"""Reading what admins type: names, limits, days, dates. Errors name the field."""

from __future__ import annotations

import unicodedata
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from datetime import tzinfo

from webpanel.models import RESET_STRATEGIES

GB = 1024**3
MIN_LIMIT = 1024**2
MAX_LIMIT_GB = 1_000_000
MAX_DAYS = 36_500
NAME_MAX = 64


class FieldError(ValueError):
    """Bad input: field name → message; nothing was saved."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class ClientError(FieldError):
    """Bad input for a client."""


def clean_name(raw: str | None) -> str:
    name = unicodedata.normalize("NFC", (raw or "").strip())
    if not name:
        raise ClientError({"name": "Name is required."})
    if len(name) > NAME_MAX:
        raise ClientError({"name": f"Name is longer than {NAME_MAX} characters."})
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in name):
        raise ClientError({"name": "Name contains control characters."})
    return name


def name_key(name: str) -> str:
    return name.casefold()


def parse_limit_gb(raw: str | float | None) -> int | None:
    """Data limit in GB (1 GB = 1024³ bytes) → bytes; blank means unlimited."""
    text = str(raw).strip() if raw is not None else ""
    if not text:
        return None
    try:
        gb = float(text.replace(",", "."))
    except ValueError:
        raise ClientError({"limit_gb": "Data limit must be a number of GB."}) from None
    if not 0 < gb <= MAX_LIMIT_GB:  # also false for nan
        message = f"Data limit must be more than 0 and at most {MAX_LIMIT_GB} GB."
        raise ClientError({"limit_gb": message})
    if gb * GB < MIN_LIMIT:
        raise ClientError({"limit_gb": "Data limit must be at least 0.001 GB (1 MB)."})
    return int(gb * GB)


def parse_expiry_date(raw: str | None, tz: tzinfo) -> datetime | None:
    """A last day (YYYY-MM-DD) in the admin's zone → the UTC moment it ends."""
    text = (raw or "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text) + timedelta(days=1)
    except (ValueError, OverflowError):
        raise ClientError(
            {"expire_on": "Expiry must be a date like 2027-01-31."}
        ) from None
    end = datetime.combine(day, time.min, tzinfo=tz)
    return end.astimezone(UTC).replace(tzinfo=None)


def parse_days(raw: str | int | None) -> int | None:
    """Whole days until expiry; blank means never."""
    text = str(raw).strip() if raw is not None else ""
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_DAYS:
        raise ClientError(
            {"days": f"Days must be a whole number from 1 to {MAX_DAYS}."}
        )
    return int(text)


def parse_reset_strategy(raw: str | None) -> str:
    text = (raw or "none").strip().lower() or "none"
    if text not in RESET_STRATEGIES:
        choices = ", ".join(RESET_STRATEGIES)
        raise ClientError({"reset": f"Reset must be one of: {choices}."})
    return text

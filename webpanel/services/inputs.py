"""Reading what admins type: names, limits, days, dates. Errors name the field."""

from __future__ import annotations

import re
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


# Names that would read as another client's email key or UUID: the API finds
# clients by all three, and a name must never point at someone else.
KEY_LIKE = re.compile(
    r"c[0-9]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    re.IGNORECASE,
)


def clean_name(raw: str | None) -> str:
    name = unicodedata.normalize("NFC", (raw or "").strip())
    if not name:
        raise ClientError({"name": "Name is required."})
    if len(name) > NAME_MAX:
        raise ClientError({"name": f"Name is longer than {NAME_MAX} characters."})
    if any(_hidden(ch) for ch in name):
        raise ClientError({"name": "Name contains control or invisible characters."})
    if KEY_LIKE.fullmatch(name):
        raise ClientError(
            {"name": "Name must not look like an email key (c12) or a UUID."}
        )
    return name


def _hidden(ch: str) -> bool:
    """Control characters (Cc), lone surrogates (Cs) and invisible format
    characters (Cf: zero-width space, direction overrides) that make
    look-alike names; but not the joiners inside emoji and Persian words,
    nor the tags of flag emoji."""
    category = unicodedata.category(ch)
    if category == "Cf":
        return ch not in JOINERS and not "\U000e0020" <= ch <= "\U000e007f"
    return category in ("Cc", "Cs")


JOINERS = "\u200c\u200d"


def hidden_runs() -> list[tuple[str, str]]:
    """The characters `_hidden` refuses, as (first, last) runs: for patterns.

    Lone surrogates are left out: no JSON text can carry one to a name.
    """
    runs: list[list[int]] = []
    for code in range(0x110000):
        if 0xD800 <= code <= 0xDFFF or not _hidden(chr(code)):
            continue
        if runs and runs[-1][1] == code - 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    return [(chr(first), chr(last)) for first, last in runs]


def name_key(name: str) -> str:
    """What makes two names the same: any case, any Unicode form (Ａ = A),
    with or without joiners."""
    folded = unicodedata.normalize("NFKC", name.strip()).casefold()
    return folded.translate({ord(ch): None for ch in JOINERS})


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

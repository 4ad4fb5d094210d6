"""Usage charts as plain SVG geometry: no script, so the CSP stays strict."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import tzinfo

from webpanel.formatting import human_bytes

WIDTH = 600
HEIGHT = 120
GAP = 2


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str  # shown on hover: when, and how much


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    total: int
    peak: int
    first: str = ""  # the first slot's label, under the left end
    last: str = ""  # the last slot's label, under the right end
    width: int = WIDTH
    height: int = HEIGHT


def bar_chart(
    series: list[tuple[datetime, int, int]], label: str, tz: tzinfo = UTC
) -> Chart:
    """One bar per slot, scaled to the busiest; label formats the slot in tz."""
    totals = [up + down for _, up, down in series]
    peak = max(totals, default=0)
    step = WIDTH / max(len(series), 1)
    bars = []
    for index, ((moment, _, _), total) in enumerate(zip(series, totals, strict=True)):
        height = 0.0 if peak == 0 else max(1.0, HEIGHT * total / peak) if total else 0.0
        bars.append(
            Bar(
                x=round(index * step + GAP / 2, 2),
                y=round(HEIGHT - height, 2),
                width=round(max(step - GAP, 1), 2),
                height=round(height, 2),
                title=f"{_local(moment, tz).strftime(label)}: {human_bytes(total)}",
            )
        )
    ends = (
        [_local(series[i][0], tz).strftime(label) for i in (0, -1)]
        if series
        else ["", ""]
    )
    return Chart(bars=bars, total=sum(totals), peak=peak, first=ends[0], last=ends[1])


def _local(moment: datetime, tz: tzinfo) -> datetime:
    return moment.replace(tzinfo=UTC).astimezone(tz)

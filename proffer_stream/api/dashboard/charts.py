"""The overview's numbers shaped for its charts: periods, time buckets, series. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TypeVar, get_args

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = get_args(Period)
K = TypeVar("K", bound=str)


@dataclass(frozen=True)
class Window:
    """A period of the overview: its start, its end, and the width of a chart's bar."""

    since: datetime
    until: datetime
    bucket: timedelta


def window(period: str, now: datetime) -> Window:
    """The last day (hourly bars), week or month (daily bars) before ``now``; an
    unknown period reads as the day."""
    if period == "week":
        return Window(now - timedelta(days=7), now, timedelta(days=1))
    if period == "month":
        return Window(now - timedelta(days=30), now, timedelta(days=1))
    return Window(now - timedelta(days=1), now, timedelta(hours=1))


def period_or_day(given: str | None) -> Period:
    """The period asked for, or ``day`` for anything else."""
    return next((p for p in PERIODS if p == given), "day")


def bucket_starts(span: Window) -> list[datetime]:
    """The start of every bar of the window, the first holding ``since``."""
    step = span.bucket
    epoch = datetime(2000, 1, 1, tzinfo=span.since.tzinfo)
    first = epoch + ((span.since - epoch) // step) * step
    starts = []
    at = first
    while at < span.until:
        starts.append(at)
        at += step
    return starts


@dataclass(frozen=True)
class Series:
    """One line or bar set of a chart."""

    label: str
    values: list[float]


@dataclass(frozen=True)
class ChartData:
    """What Chart.js draws: labels along the axis, and one or more series."""

    labels: list[str]
    series: list[Series]

    def as_json(self) -> dict[str, object]:
        return {
            "labels": self.labels,
            "datasets": [{"label": s.label, "data": s.values} for s in self.series],
        }


def time_series(
    span: Window, rows: Iterable[tuple[datetime, str, float]], names: Sequence[str]
) -> ChartData:
    """Rows of (bucket start, series name, value) as one series per name over every bar
    of the window, 0 where a bar has no row."""
    starts = bucket_starts(span)
    index = {start: i for i, start in enumerate(starts)}
    values = {name: [0.0] * len(starts) for name in names}
    for start, name, value in rows:
        if name in values and start in index:
            values[name][index[start]] += value
    hourly = span.bucket < timedelta(days=1)
    labels = [s.strftime("%H:%M" if hourly else "%b %d") for s in starts]
    return ChartData(labels, [Series(name, values[name]) for name in names])


def counts_chart(label: str, counts: Mapping[K, int]) -> ChartData:
    """A bar per key of ``counts``, in its order."""
    return ChartData([str(k) for k in counts], [Series(label, [float(v) for v in counts.values()])])


def percent(rate: float | None) -> str:
    """A rate as a percentage to one decimal, or an em dash when there is none."""
    return "—" if rate is None else f"{rate * 100:.1f}%"

"""Read views of a customer's signals, computed at read time (pure, ``now`` passed in)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from proffer_stream.signals.fold import WINDOW_HOURS, hour_of
from proffer_stream.signals.models import (
    CustomerProfile,
    CustomerView,
    Signals,
    SignalsView,
    WindowCounts,
)


def hours_within(state: CustomerProfile, now: datetime, hours: int) -> Iterator[dict[str, int]]:
    """The events per type of each hour in the rolling window of ``hours`` hours ending
    now (hour resolution: the hour ``now`` falls in and the ``hours - 1`` before it)."""
    current = hour_of(now)
    for hour, counts in state.hourly_counts.items():
        if current - hours < hour <= current:
            yield counts


def window_counts(state: CustomerProfile, now: datetime) -> dict[str, WindowCounts]:
    """Events per type in each rolling window ending now (hour resolution)."""
    windows: dict[str, WindowCounts] = {}
    for name, hours in WINDOW_HOURS.items():
        by_type: dict[str, int] = {}
        for counts in hours_within(state, now, hours):
            for event_type, count in counts.items():
                by_type[event_type] = by_type.get(event_type, 0) + count
        windows[name] = WindowCounts(events=sum(by_type.values()), by_type=by_type)
    return windows


def signals_view(state: CustomerProfile, now: datetime) -> SignalsView:
    """The API view of a customer's signals at ``now``."""
    return SignalsView(
        **{name: getattr(state, name) for name in Signals.model_fields},
        distinct_pages=len(state.page_views),
        windows=window_counts(state, now),
    )


def customer_view(state: CustomerProfile, now: datetime) -> CustomerView:
    """The API view of a customer and their signals at ``now``."""
    return CustomerView(
        id=state.customer_id,
        external_id=state.external_id,
        email=state.email,
        name=state.name,
        metadata=state.metadata,
        first_seen_at=state.first_seen_at,
        last_seen_at=state.last_seen_at,
        signals=signals_view(state, now),
    )

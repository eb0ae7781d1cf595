"""How events fold into a customer's live profile. Pure functions, ``now`` passed in."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from pydantic_core import to_json

from proffer_stream.core.identity import customer_id
from proffer_stream.ingest.models import CustomerIn, NormalizedEvent
from proffer_stream.signals.models import CustomerSignals
from proffer_stream.signals.seen_ids import SeenIds

HOUR_SECONDS = 3600
WINDOW_HOURS = {"last_24h": 24, "last_7d": 24 * 7}
KEPT_HOURS = max(WINDOW_HOURS.values())
MAX_TRACKED_NAMES = 1000
"""Most distinct pages (or features) tracked per customer; more are not itemised."""
MAX_NAME_LENGTH = 200
"""Longest page or feature name itemised; longer ones are counted, not itemised."""
MAX_PROFILE_METADATA_BYTES = 65_536
"""Most customer metadata a profile keeps, as JSON; updates that would outgrow it are dropped.

With the bounds above, a profile stays well under Kafka's 1 MB record limit.
"""


def new_signals(tenant_id: str, external_id: str) -> CustomerSignals:
    """The empty profile of a customer seen for the first time."""
    return CustomerSignals(
        tenant_id=tenant_id,
        customer_id=customer_id(tenant_id, external_id),
        external_id=external_id,
    )


def apply_record(
    state: CustomerSignals,
    customer: CustomerIn,
    events: Iterable[NormalizedEvent],
    *,
    offset: int,
    now: datetime,
    seen: SeenIds,
) -> list[NormalizedEvent]:
    """Fold one ``proffer.events`` record into ``state``; return the events counted.

    A record at or below the last offset applied is a replay: it changes nothing but
    ``seen``, which remembers its ids again if it lost them (they are written after
    the profile). An event whose id ``seen`` remembers is a re-send and is not counted
    again.
    """
    if offset <= state.source_offset:
        seen.remember_replayed((event.id for event in events), offset)
        return []
    _merge_profile(state, customer)
    counted_here: dict[str, NormalizedEvent] = {}
    for event in events:
        if event.id in counted_here or not seen.first_sighting(
            event.id, offset, state.source_offset
        ):
            continue
        counted_here[event.id] = event
        _count_event(state, event, now)
    _forget_old_hours(state, now)
    state.source_offset = offset
    state.updated_at = now
    return list(counted_here.values())


def take_in(
    state: CustomerSignals, events: Iterable[NormalizedEvent], now: datetime
) -> list[NormalizedEvent]:
    """Count events the profile missed: stored, but lost with the broker before the worker
    counted them (a profile restored from PostgreSQL). Each once by id; the caller leaves
    out the ids the profile counted. The source offset stays: these came from no record
    of the log that follows."""
    counted: dict[str, NormalizedEvent] = {}
    for event in events:
        if event.id not in counted:
            counted[event.id] = event
            _count_event(state, event, now)
    if counted:
        _forget_old_hours(state, now)
        state.updated_at = now
    return list(counted.values())


def _merge_profile(state: CustomerSignals, customer: CustomerIn) -> None:
    if customer.email is not None:
        state.email = customer.email
    if customer.name is not None:
        state.name = customer.name
    if customer.metadata:
        merged = {**state.metadata, **customer.metadata}
        if len(to_json(merged)) <= MAX_PROFILE_METADATA_BYTES:
            state.metadata = merged


def _count_event(state: CustomerSignals, event: NormalizedEvent, now: datetime) -> None:
    state.event_count += 1
    _increment(state.counts_by_type, event.type)
    at = event.occurred_at
    if state.first_seen_at is None or at < state.first_seen_at:
        state.first_seen_at = at
    if state.last_seen_at is None or at > state.last_seen_at:
        state.last_seen_at = at
    _count_in_hour(state, event, now)
    counter = _TYPE_COUNTERS.get(event.type)
    if counter is not None:
        counter(state, event)


def _count_page_view(state: CustomerSignals, event: NormalizedEvent) -> None:
    page = event.data.get("page")
    if isinstance(page, str):
        _increment(state.page_views, page, bounded=True)


def _count_purchase(state: CustomerSignals, event: NormalizedEvent) -> None:
    state.purchase_count += 1
    state.purchase_total += _money(event.data.get("amount"))
    if state.last_purchase_at is None or event.occurred_at > state.last_purchase_at:
        state.last_purchase_at = event.occurred_at


def _count_cart_abandon(state: CustomerSignals, event: NormalizedEvent) -> None:
    state.cart_abandon_count += 1
    state.cart_abandon_total += _money(event.data.get("total"))


def _count_feature_use(state: CustomerSignals, event: NormalizedEvent) -> None:
    feature = event.data.get("feature")
    if isinstance(feature, str):
        times = event.data.get("times_used")
        _increment(state.features_used, feature, times if isinstance(times, int) else 1, True)


def _count_signup(state: CustomerSignals, event: NormalizedEvent) -> None:
    if not state.signed_up or (state.signed_up_at and event.occurred_at < state.signed_up_at):
        state.signed_up_at = event.occurred_at
        plan = event.data.get("plan")
        state.signup_plan = plan if isinstance(plan, str) else state.signup_plan
    state.signed_up = True


_TYPE_COUNTERS = {
    "page_view": _count_page_view,
    "purchase": _count_purchase,
    "cart_abandon": _count_cart_abandon,
    "feature_use": _count_feature_use,
    "signup": _count_signup,
}


def _increment(counts: dict[str, int], name: str, by: int = 1, bounded: bool = False) -> None:
    if (
        bounded
        and name not in counts
        and (len(counts) >= MAX_TRACKED_NAMES or len(name) > MAX_NAME_LENGTH)
    ):
        return
    counts[name] = counts.get(name, 0) + by


def _money(value: object) -> Decimal:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(str(value))
    return Decimal(0)


def hour_of(at: datetime) -> int:
    """The epoch hour ``at`` falls in."""
    return int(at.timestamp()) // HOUR_SECONDS


def _count_in_hour(state: CustomerSignals, event: NormalizedEvent, now: datetime) -> None:
    hour = hour_of(event.occurred_at)
    if hour <= hour_of(now) - KEPT_HOURS:
        return
    _increment(state.hourly_counts.setdefault(hour, {}), event.type)


def _forget_old_hours(state: CustomerSignals, now: datetime) -> None:
    oldest_kept = hour_of(now) - KEPT_HOURS
    for hour in [h for h in state.hourly_counts if h <= oldest_kept]:
        del state.hourly_counts[hour]

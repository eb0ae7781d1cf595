"""The owner's refusals at the exact edges of windows and periods, and calendar periods
across DST changes and a week boundary."""

from datetime import UTC, datetime, timedelta

import pytest
from catalog_factories import defined_offer

from proffer_stream.catalog.limits import MemberState, decide_member
from proffer_stream.catalog.models import (
    MemberCommand,
    PeriodicUsage,
)
from proffer_stream.catalog.periods import period

pytestmark = pytest.mark.unit

T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


def offer(**fields):
    return defined_offer(T0, **fields)


def run(state, *steps, member="m1"):
    """Decide (action, at, tz) steps for one member; the events' (kind, reason)."""
    mine = MemberState()
    out = []
    for n, (action, at, *tz) in enumerate(steps):
        command = MemberCommand(
            command_id=f"c{n}",
            tenant_id="acme",
            offer_id=1,
            external_customer_id=member,
            action=action,
            issued_at=at,
            timezone=tz[0] if tz else "UTC",
        )
        state, mine, event = decide_member(state, mine, command)
        out.append((event.kind, event.reason, event.resets_at))
    return out


def kinds(events):
    return [(kind, reason) for kind, reason, _ in events]


def test_the_usable_window_includes_its_start_and_excludes_its_end():
    state = offer(usable_since=T0 + timedelta(hours=1), usable_until=T0 + timedelta(hours=2))
    events = run(
        state,
        ("use", T0 + timedelta(hours=1) - timedelta(microseconds=1)),
        ("use", T0 + timedelta(hours=1)),
        ("use", T0 + timedelta(hours=2) - timedelta(microseconds=1)),
        ("use", T0 + timedelta(hours=2)),
    )
    assert kinds(events) == [
        ("refused", "not_usable_yet"),
        ("used", None),
        ("used", None),
        ("refused", "usable_window_closed"),
    ]


def test_a_grant_is_usable_until_exactly_its_seconds_after():
    state = offer(type="exclusive", usable_in_seconds_after_granting=60)
    events = run(
        state,
        ("use", T0),
        ("grant", T0),
        ("use", T0 + timedelta(seconds=59, microseconds=999_999)),
        ("grant", T0 + timedelta(minutes=5)),
        ("use", T0 + timedelta(minutes=6)),
    )
    assert kinds(events) == [
        ("refused", "not_granted"),
        ("granted", None),
        ("used", None),
        ("granted", None),
        ("refused", "grant_expired"),
    ]


def test_per_user_limit_and_stock_refusals():
    assert kinds(run(offer(maximum_uses_per_user=2), *[("use", T0)] * 3))[-1] == (
        "refused",
        "per_user_limit",
    )
    state = offer(stock=1)
    state, _, _ = decide_member(
        state,
        MemberState(),
        MemberCommand(
            command_id="x",
            tenant_id="acme",
            offer_id=1,
            external_customer_id="other",
            action="use",
            issued_at=T0,
        ),
    )
    assert kinds(run(state, ("use", T0))) == [("refused", "out_of_stock")]


def test_a_daily_limit_resets_at_the_members_local_midnight_across_dst():
    """Warsaw springs forward on 29 March 2026: that day has 23 hours."""
    state = offer(periodic_usage=PeriodicUsage(timespan="day", limit=1))
    zone = "Europe/Warsaw"
    before_midnight = datetime(2026, 3, 28, 22, 59, 59, tzinfo=UTC)  # 23:59:59 CET
    midnight = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)  # 00:00 on the 29th
    next_midnight = datetime(2026, 3, 29, 22, 0, tzinfo=UTC)  # 00:00 CEST on the 30th
    events = run(
        state,
        ("use", before_midnight, zone),
        ("use", midnight, zone),
        ("use", next_midnight - timedelta(microseconds=1), zone),
        ("use", next_midnight, zone),
    )
    assert kinds(events) == [
        ("used", None),
        ("used", None),
        ("refused", "periodic_limit"),
        ("used", None),
    ]
    assert events[2][2] == next_midnight  # when it resets


def test_periods_across_dst_in_two_zones_and_a_week_boundary():
    # New York falls back on 1 November 2026: that day has 25 hours.
    start, end = period("day", datetime(2026, 11, 1, 12, 0, tzinfo=UTC), "America/New_York")
    assert (start, end) == (
        datetime(2026, 11, 1, 4, 0, tzinfo=UTC),
        datetime(2026, 11, 2, 5, 0, tzinfo=UTC),
    )
    # Warsaw's day of the spring change has 23 hours.
    start, end = period("day", datetime(2026, 3, 29, 12, 0, tzinfo=UTC), "Europe/Warsaw")
    assert end - start == timedelta(hours=23)
    # A week starts on Monday at local midnight: Sunday 23:30 in New York is the week
    # before, though it is Monday in UTC.
    sunday_night = datetime(2026, 6, 8, 3, 30, tzinfo=UTC)  # Sun 7 June 23:30 EDT
    start, end = period("week", sunday_night, "America/New_York")
    assert start == datetime(2026, 6, 1, 4, 0, tzinfo=UTC)
    assert end == datetime(2026, 6, 8, 4, 0, tzinfo=UTC)
    assert period("week", sunday_night, "UTC")[0] == datetime(2026, 6, 8, tzinfo=UTC)


def test_a_weekly_limit_resets_at_the_week_boundary_in_the_members_zone():
    state = offer(periodic_usage=PeriodicUsage(timespan="week", limit=1))
    zone = "America/New_York"
    monday = datetime(2026, 6, 8, 4, 0, tzinfo=UTC)  # Monday 00:00 EDT
    events = run(
        state,
        ("use", monday - timedelta(hours=2), zone),  # Sunday 22:00
        ("use", monday - timedelta(seconds=1), zone),
        ("use", monday, zone),
    )
    assert kinds(events) == [("used", None), ("refused", "periodic_limit"), ("used", None)]
    assert events[1][2] == monday

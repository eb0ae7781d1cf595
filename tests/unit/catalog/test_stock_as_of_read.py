"""Readers see the stock that grants which ended give back as of their own now: the
owner's events carry its buckets of reservations (counts.ending), and a reader counts a
bucket released from its holds_until on (reserved_as_of), never before, so a view never
shows stock the owner would refuse."""

from datetime import UTC, datetime, timedelta

import pytest
from catalog_factories import defined_offer, definition
from test_grant_release import Owner

from proffer_stream.catalog.limits import holds_until
from proffer_stream.catalog.models import MemberCounts, OfferCounts, Reservation, reserved_as_of
from proffer_stream.catalog.views import in_stock, usable

pytestmark = pytest.mark.unit

T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def counts(uses=0, reserved=0, *buckets):
    return OfferCounts(
        uses_count=uses,
        reserved_count=reserved,
        ending=[Reservation(holds_until=at, count=n) for at, n in buckets],
    )


def test_a_bucket_counts_released_from_its_end_on_and_not_before():
    held = counts(0, 5, (T0, 2), (T0 + SECOND, 1))  # 2 units held until used
    assert reserved_as_of(held, T0 - timedelta(microseconds=1)) == 5
    assert reserved_as_of(held, T0) == 3
    assert reserved_as_of(held, T0 + SECOND) == 2
    assert reserved_as_of(held, T0 + timedelta(days=1)) == 2  # the unbucketed stay
    assert reserved_as_of(counts(0, 0), T0) == 0
    assert reserved_as_of(OfferCounts(reserved_count=1), T0) == 1  # projected before ending


def test_usable_with_an_ended_and_a_not_yet_ended_bucket():
    vip = definition(1, T0, stock=2, usable_in_seconds_after_granting=60)
    full = counts(0, 2, (T0, 1), (T0 + SECOND, 1))
    assert not usable(vip, MemberCounts(), full, T0 - SECOND)
    assert usable(vip, MemberCounts(), full, T0)  # one unit back: its bucket ended
    assert not in_stock(vip, counts(1, 1, (T0 + SECOND, 1)), T0)  # its bucket has not
    assert in_stock(vip, counts(1, 1, (T0 + SECOND, 1)), T0 + SECOND)
    assert not in_stock(vip, counts(2, 0), T0 + SECOND)  # used stays used
    assert in_stock(definition(2, T0), counts(5, 5), T0)  # no stock: never out of it


def test_the_owners_events_carry_its_buckets_and_readers_agree_with_its_next_decision():
    owner = Owner(defined_offer(T0, type="exclusive", stock=2, usable_in_seconds_after_granting=1))
    owner.do("ann", "grant", T0)
    last = owner.do("bob", "grant", T0 + timedelta(milliseconds=300))
    ends = sorted({holds_until(T0, T0 + SECOND), holds_until(T0, T0 + 1.3 * SECOND)})
    assert [r.holds_until for r in last.counts.ending] == ends
    assert sum(r.count for r in last.counts.ending) == last.counts.reserved_count == 2
    assert owner.state.counts.ending == []  # the state keeps them as its reservations
    vip = definition(1, T0, type="regular", stock=2)
    # Before the first bucket ends, the view says out of stock; so does the owner.
    before = ends[0] - timedelta(microseconds=1)
    assert not in_stock(vip, last.counts, before)
    assert owner.kind("cid", "grant", before) == ("refused", "out_of_stock")
    # From the end of the last bucket on, both units are back for readers, before any
    # command; the owner's next command agrees.
    assert reserved_as_of(last.counts, ends[-1]) == 0
    assert in_stock(vip, last.counts, ends[-1])
    granted = owner.do("cid", "grant", ends[-1])
    assert granted.kind == "granted"
    assert (granted.counts.reserved_count, granted.counts.released_count) == (1, 2)

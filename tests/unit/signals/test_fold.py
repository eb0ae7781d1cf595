"""Signals: how events fold into a profile (pure logic)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from proffer_stream.ingest.models import CustomerIn, NormalizedEvent
from proffer_stream.signals.fold import MAX_TRACKED_NAMES, apply_record, new_signals, take_in
from proffer_stream.signals.seen_ids import SeenIds, day_of
from proffer_stream.signals.views import signals_view

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 17, 12, 0, tzinfo=UTC)


def event(type_: str, data: dict | None = None, *, id_: str, at: datetime = NOW) -> NormalizedEvent:
    return NormalizedEvent(id=id_, type=type_, data=data or {}, occurred_at=at, received_at=NOW)


def no_ids():
    return SeenIds(day_of(NOW), [])


def apply(state, events, offset, customer=None, seen=None):
    """How many events counted."""
    counted = apply_record(
        state,
        customer or CustomerIn(id=state.external_id),
        events,
        offset=offset,
        now=NOW,
        seen=seen if seen is not None else no_ids(),
    )
    return len(counted)


def test_counts_every_well_known_signal():
    state = new_signals("acme", "u1")
    counted = apply(
        state,
        [
            event("page_view", {"page": "/pricing"}, id_="1", at=NOW - timedelta(days=2)),
            event("page_view", {"page": "/pricing"}, id_="2"),
            event("page_view", {"page": "/docs"}, id_="3"),
            event("purchase", {"amount": 29.99}, id_="4"),
            event("purchase", {"amount": 10}, id_="5"),
            event("cart_abandon", {"total": 12.5}, id_="6"),
            event("feature_use", {"feature": "reports", "times_used": 8}, id_="7"),
            event("feature_use", {"feature": "reports"}, id_="8"),
            event("signup", {"plan": "free"}, id_="9"),
            event("webinar_joined", {}, id_="10"),
        ],
        offset=0,
    )
    assert counted == 10
    assert state.event_count == 10
    assert state.counts_by_type["page_view"] == 3
    assert state.counts_by_type["webinar_joined"] == 1
    assert state.page_views == {"/pricing": 2, "/docs": 1}
    assert (state.purchase_count, state.purchase_total) == (2, Decimal("39.99"))
    assert (state.cart_abandon_count, state.cart_abandon_total) == (1, Decimal("12.5"))
    assert state.features_used == {"reports": 9}
    assert state.signed_up and state.signup_plan == "free"
    assert state.first_seen_at == NOW - timedelta(days=2)
    assert state.last_seen_at == NOW


def test_a_replayed_record_changes_nothing():
    state = new_signals("acme", "u1")
    assert apply(state, [event("click", id_="a")], offset=5) == 1
    assert apply(state, [event("click", id_="b")], offset=5) == 0
    assert apply(state, [event("click", id_="c")], offset=3) == 0
    assert state.event_count == 1
    assert state.source_offset == 5


def test_a_replayed_record_remembers_the_ids_a_crash_lost_and_counts_nothing():
    # The profile (offset 5) reached the changelog, the ids written after it did not.
    state, lost = new_signals("acme", "u1"), no_ids()
    apply(state, [event("click", id_="a")], offset=5, seen=lost)
    after_crash = no_ids()
    assert apply(state, [event("click", id_="a")], offset=5, seen=after_crash) == 0
    assert after_crash.changed()  # remembered again, to be written
    assert apply(state, [event("click", id_="a")], offset=9, seen=after_crash) == 0  # re-send
    assert state.event_count == 1


def test_a_resent_event_id_counts_once_but_moves_the_offset():
    state, seen = new_signals("acme", "u1"), no_ids()
    apply(state, [event("purchase", {"amount": 5}, id_="order-1")], offset=1, seen=seen)
    assert apply(state, [event("purchase", {"amount": 5}, id_="order-1")], offset=2, seen=seen) == 0
    assert state.purchase_count == 1
    assert state.source_offset == 2


def test_same_id_twice_in_one_record_counts_once():
    state = new_signals("acme", "u1")
    assert apply(state, [event("click", id_="x"), event("click", id_="x")], offset=0) == 1


def test_a_resent_request_counts_once_however_large():
    state, seen = new_signals("acme", "u1"), no_ids()
    request = [event("click", id_=str(i)) for i in range(1000)]
    assert apply(state, request, offset=0, seen=seen) == 1000
    assert apply(state, [event("click", id_="other")], offset=1, seen=seen) == 1
    assert apply(state, request, offset=2, seen=seen) == 0
    assert state.event_count == 1001


def test_rolling_windows_are_computed_at_read_time():
    state = new_signals("acme", "u1")
    apply(
        state,
        [
            event("page_view", id_="1", at=NOW - timedelta(minutes=5)),
            event("page_view", id_="2", at=NOW - timedelta(hours=30)),
            event("purchase", {"amount": 1}, id_="3", at=NOW - timedelta(days=6)),
            event("purchase", {"amount": 1}, id_="4", at=NOW - timedelta(days=9)),
        ],
        offset=0,
    )
    windows = signals_view(state, NOW).windows
    assert windows["last_24h"].events == 1
    assert windows["last_7d"].events == 3
    assert windows["last_7d"].by_type == {"page_view": 2, "purchase": 1}
    later = signals_view(state, NOW + timedelta(days=2)).windows
    assert later["last_24h"].events == 0
    assert later["last_7d"].events == 2


def test_profile_fields_merge_and_keep_what_is_not_resent():
    state = new_signals("acme", "u1")
    apply(
        state,
        [event("click", id_="1")],
        0,
        CustomerIn(id="u1", email="a@x.io", metadata={"plan": "free"}),
    )
    apply(
        state,
        [event("click", id_="2")],
        1,
        CustomerIn(id="u1", name="Ann", metadata={"src": "ads"}),
    )
    assert (state.email, state.name) == ("a@x.io", "Ann")
    assert state.metadata == {"plan": "free", "src": "ads"}


def test_page_map_is_bounded():
    state = new_signals("acme", "u1")
    pages = [
        event("page_view", {"page": f"/p{i}"}, id_=str(i)) for i in range(MAX_TRACKED_NAMES + 5)
    ]
    apply(state, pages, offset=0)
    assert len(state.page_views) == MAX_TRACKED_NAMES
    assert state.counts_by_type["page_view"] == MAX_TRACKED_NAMES + 5


def test_snapshot_round_trips_through_json():
    state = new_signals("acme", "u1")
    apply(
        state,
        [event("purchase", {"amount": 0.1}, id_="1"), event("purchase", {"amount": 0.2}, id_="2")],
        0,
    )
    again = type(state).model_validate_json(state.model_dump_json())
    assert again.purchase_total == Decimal("0.3")
    assert again == state


def test_money_stays_exact_where_a_float_would_round():
    """1e14 + 0.01 is 100000000000000.02 as a float; the total and its JSON stay exact."""
    state = new_signals("acme", "u1")
    apply(
        state,
        [
            event("purchase", {"amount": 1e14}, id_="1"),
            event("purchase", {"amount": 0.01}, id_="2"),
        ],
        0,
    )
    assert state.purchase_total == Decimal("100000000000000.01")
    assert '"purchase_total":"100000000000000.01"' in state.model_dump_json()
    again = type(state).model_validate_json(state.model_dump_json())
    assert again.purchase_total == Decimal("100000000000000.01")


def test_take_in_counts_missed_events_once_and_keeps_the_offset():
    state = new_signals("acme", "u1")
    apply(state, [event("page_view", {"page": "/a"}, id_="1")], 5)
    missed = [
        event("purchase", {"amount": 2}, id_="2"),
        event("purchase", {"amount": 2}, id_="2"),
        event("page_view", {"page": "/b"}, id_="3"),
    ]
    taken = take_in(state, missed, NOW)
    assert [e.id for e in taken] == ["2", "3"]
    assert state.event_count == 3 and state.purchase_total == Decimal(2)
    assert state.source_offset == 5

"""Remembered event ids: day buckets, the window, chunks, and entries no profile saw."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proffer_stream.signals import seen_ids
from proffer_stream.signals.seen_ids import SeenIds, day_of, days_kept, id_hash, pack, unpack

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 17, 12, 0, tzinfo=UTC)
TODAY = day_of(NOW)


@given(st.dictionaries(st.integers(-(2**63), 2**63 - 1), st.integers(-1, 2**62)))
def test_buckets_round_trip(entries):
    assert unpack(pack(entries)) == entries


def test_an_id_counted_days_ago_is_a_resend_until_the_window_ends():
    earlier = SeenIds(TODAY - 6, [])
    assert earlier.first_sighting("order-1", 10, applied_up_to=9)
    stored = [(TODAY - 6, chunk, entries) for chunk, entries in earlier.changed().items()]
    assert not SeenIds(TODAY, stored).first_sighting("order-1", 50, applied_up_to=49)
    assert list(days_kept(NOW, 7)) == list(range(TODAY - 7, TODAY + 1))
    assert TODAY - 8 not in days_kept(NOW + timedelta(days=1), 7)


def test_an_entry_above_the_profiles_offset_is_not_a_sighting():
    # A crash after the ids were written and before the profile was: the replayed
    # record (offset 10) must count its events.
    stored = [(TODAY, 0, {id_hash("a"): 10})]
    seen = SeenIds(TODAY, stored)
    assert seen.first_sighting("a", 10, applied_up_to=7)
    assert not seen.first_sighting("a", 11, applied_up_to=10)


def test_new_ids_go_to_todays_last_chunk_and_spill_into_a_new_one(monkeypatch):
    monkeypatch.setattr(seen_ids, "MAX_BUCKET_ENTRIES", 2)
    seen = SeenIds(TODAY, [(TODAY, 0, {id_hash("a"): 1}), (TODAY - 1, 0, {id_hash("b"): 0})])
    for offset, event_id in enumerate(["c", "d", "e"], start=2):
        assert seen.first_sighting(event_id, offset, applied_up_to=offset - 1)
    changed = seen.changed()
    assert sorted(changed) == [0, 1]
    assert changed[0] == {id_hash("a"): 1, id_hash("c"): 2}
    assert changed[1] == {id_hash("d"): 3, id_hash("e"): 4}
    assert not seen.first_sighting("b", 9, applied_up_to=8)
    # What the profile records, so that the next batch reads exactly these chunks.
    assert seen.chunks_by_day() == {TODAY: 2, TODAY - 1: 1}


def test_a_customer_without_ids_records_none_and_a_first_id_one_chunk():
    seen = SeenIds(TODAY, [])
    assert seen.chunks_by_day() == {}
    seen.first_sighting("a", 0, applied_up_to=-1)
    assert seen.chunks_by_day() == {TODAY: 1}

"""The ids store's memory: lent to one batch, dropped at the day's end and on a rebalance;
its writes held until the next commit."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from test_profile_store import FakeTable

from proffer_stream.signals.seen_ids import day_of, pack
from proffer_stream.worker.seen_ids import SeenIdStore, bucket_key

pytestmark = pytest.mark.unit

KEY = ("acme", "u1")
NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


SOURCE = SimpleNamespace(partition=0)  # a record of the customer's


async def saved_store() -> tuple[FakeTable, SeenIdStore]:
    table = FakeTable()
    store = SeenIdStore(table.transaction(pack), days=7)
    seen = store.load(KEY, NOW, SOURCE)
    assert seen.first_sighting("e1", offset=5, applied_up_to=5)
    store.save(KEY, seen, SOURCE)
    await table.checkpoint()
    return table, store


async def test_saved_ids_are_lent_out_again_and_only_new_chunks_are_written():
    table, store = await saved_store()
    assert table.sent == [(bucket_key(KEY, day_of(NOW), 0), table.sent[0][1])]
    seen = store.load(KEY, NOW, SOURCE)
    assert not seen.first_sighting("e1", offset=6, applied_up_to=6)
    assert seen.changed() == {}


async def test_ids_not_saved_back_are_read_from_the_table():
    _, store = await saved_store()
    lent = store.load(KEY, NOW, SOURCE)
    lent.first_sighting("e2", offset=6, applied_up_to=6)  # never saved
    again = store.load(KEY, NOW, SOURCE)
    assert again is not lent
    assert again.first_sighting("e2", offset=6, applied_up_to=6)
    assert not again.first_sighting("e1", offset=6, applied_up_to=6)


@pytest.mark.parametrize("drop", ["next day", "rebalance"])
async def test_kept_ids_are_dropped_at_the_day_s_end_and_on_a_rebalance(drop):
    _, store = await saved_store()
    now = NOW + timedelta(days=1) if drop == "next day" else NOW
    if drop == "rebalance":
        store.forget()
    seen = store.load(KEY, now, SOURCE)
    assert seen.today == day_of(now)
    assert not seen.first_sighting("e1", offset=6, applied_up_to=6)  # read from the table


async def test_saved_chunks_are_held_until_the_checkpoint_and_read_from_there_meanwhile():
    table = FakeTable()
    store = SeenIdStore(table.transaction(pack), days=7)
    seen = store.load(KEY, NOW, SOURCE)
    seen.first_sighting("e1", offset=5, applied_up_to=5)
    store.save(KEY, seen, SOURCE)
    seen = store.load(KEY, NOW, SOURCE)
    seen.first_sighting("e2", offset=6, applied_up_to=6)
    store.save(KEY, seen, SOURCE)
    assert table.data == {} and table.sent == []
    store.forget()  # not from the cache: from what is held
    assert not store.load(KEY, NOW, SOURCE).first_sighting("e2", offset=7, applied_up_to=7)
    await table.checkpoint()
    assert len(table.sent) == 1  # the chunk once, with both ids
    assert table.data == {bucket_key(KEY, day_of(NOW), 0): table.sent[0][1]}
    store.forget()
    again = store.load(KEY, NOW, SOURCE)
    assert not again.first_sighting("e1", offset=7, applied_up_to=7)
    assert not again.first_sighting("e2", offset=7, applied_up_to=7)

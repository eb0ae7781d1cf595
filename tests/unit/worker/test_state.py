"""The checkpoint's order: changelog records sent, producer flushed, and only then the
store written with the changelog offsets it holds; reads see held and sent writes."""

import pytest
from test_profile_store import FakeTable

pytestmark = pytest.mark.unit


async def test_the_store_is_written_only_after_the_producer_flushed():
    table = FakeTable()
    state = table.transaction()
    store_at_flush = []

    async def flush():
        store_at_flush.append(dict(table.data))
        assert [key for key, _ in table.sent] == [b"a", b"b"]  # sent before the flush

    table.app.producer.flush = flush
    state.set(0, b"a", b"1")
    state.set(1, b"b", b"2")
    await table.checkpoint()
    assert store_at_flush == [{}]
    assert table.data == {b"a": b"1", b"b": b"2"}
    assert table.data.persisted == {0: 0, 1: 0}


async def test_reads_see_held_then_sent_writes_and_a_key_is_sent_once_per_checkpoint():
    table = FakeTable()
    state = table.transaction()
    for value in (b"1", b"2", b"3"):
        state.set(0, b"k", value)
    assert state.held(0, b"k") == b"3" and state.stored(0, b"k") is None
    seen_while_flushing = []

    async def flush():
        state.set(0, b"k", b"4")  # an agent writes on during the flush
        seen_while_flushing.append((state.held(0, b"k"), state.stored(0, b"k")))

    table.app.producer.flush = flush
    await table.checkpoint()
    assert table.sent == [(b"k", b"3")]
    assert seen_while_flushing == [(b"4", b"3")]
    assert state.stored(0, b"k") == b"3" and state.held(0, b"k") == b"4"
    assert state.pending


async def test_a_checkpoint_with_nothing_held_sends_and_flushes_nothing():
    table = FakeTable()
    table.transaction()
    flushed = []

    async def flush():
        flushed.append(True)

    table.app.producer.flush = flush
    await table.checkpoint()
    assert flushed == [] and table.sent == []


async def test_a_checkpoint_of_some_transactions_leaves_the_others_held():
    table = FakeTable()
    profiles, ids = table.transaction(), table.transaction()
    profiles.set(0, b"p", b"1")
    ids.set(0, b"i", b"2")
    await table.checkpoint.only([profiles])
    assert table.sent == [(b"p", b"1")] and table.data == {b"p": b"1"}
    assert ids.held(0, b"i") == b"2"
    await table.checkpoint()
    assert table.data == {b"p": b"1", b"i": b"2"}

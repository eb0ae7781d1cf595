"""Held changelog records: the last value per key, table by table, one flush at a time."""

import asyncio

import pytest
from test_profile_store import FakeTable

from proffer_stream.worker.tables import HeldChangelog, write_through

pytestmark = pytest.mark.unit


class SlowTable(FakeTable):
    """A table whose producer yields on every send, as a busy one does."""

    def __init__(self, name, sent=None):
        super().__init__()
        self.name = name
        sent = self.sent = [] if sent is None else sent

        async def send(topic, key, value, partition, timestamp, headers):
            await asyncio.sleep(0)
            sent.append((key, value))

        self.app.producer.send = send


async def test_the_store_is_written_at_once_and_the_changelog_only_when_flushed():
    table, held = SlowTable("signals"), HeldChangelog()
    write_through(table, [(b"a", b"1"), (b"b", b"1")], held)
    write_through(table, [(b"a", b"2")], held)
    assert table.data == {b"a": b"2", b"b": b"1"}
    assert table.sent == []
    await held.flush()
    assert table.sent == [(b"a", b"2"), (b"b", b"1")]
    assert len(held) == 0


async def test_tables_are_flushed_in_the_order_they_were_first_written():
    sent = []
    ids, profiles, held = SlowTable("event-ids", sent), SlowTable("signals", sent), HeldChangelog()
    write_through(ids, [(b"ids-a", b"1")], held)
    write_through(profiles, [(b"a", b"1")], held)
    write_through(ids, [(b"ids-b", b"1")], held)
    await held.flush()
    assert [key for key, _ in sent] == [b"ids-a", b"ids-b", b"a"]


async def test_a_newer_value_is_never_sent_before_an_older_one():
    """A flush that starts while another sends waits for it."""
    table, held = SlowTable("signals"), HeldChangelog()
    write_through(table, [(k, b"old") for k in (b"a", b"b", b"c")], held)
    first = asyncio.create_task(held.flush())
    await asyncio.sleep(0)  # the first flush is sending
    write_through(table, [(b"c", b"new")], held)
    await asyncio.gather(first, held.flush())
    assert [value for key, value in table.sent if key == b"c"] == [b"old", b"new"]

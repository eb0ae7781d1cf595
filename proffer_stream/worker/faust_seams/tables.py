"""Seam: Faust tables written a batch at a time, straight to the store and the changelog.

Faust's per-key path (``table[key] = value``: ``Table.on_key_set`` makes a future per key,
partitions eagerly, runs callbacks and sensors) cost ~270 µs a key here, the producer's own
``send`` about a tenth of that. These functions write the table's store (``Table.data``)
and send the changelog records (``Table.changelog_topic``) with the app's producer
themselves. Faust flushes the producer before it commits offsets, so a table is never
behind the committed offset.

Faust's RocksDB store picks the database of a partition from the current event
(``faust.streams._current_event``); work done once per batch or commit has no current event
(or another record's), so :func:`in_partition` names the partition it is for.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace

from faust.streams import _current_event
from faust.types import TableT


async def write_through(
    table: TableT[bytes, bytes], items: Iterable[tuple[bytes, bytes]], partition: int | None = None
) -> None:
    """Put each (key, value) in ``table`` and queue its changelog record.

    The same effect as ``table[key] = value`` at a fraction of its cost. ``partition``
    None lets the partitioner (murmur2 on the key, as producers use) choose.
    """
    items = list(items)
    put_all(table, items)  # all in the store before the first send lets others run
    await send_changelog(table, items, partition)


def put_all(table: TableT[bytes, bytes], items: Iterable[tuple[bytes, bytes]]) -> None:
    """Put each (key, value) in the table's store, without its changelog record."""
    data = table.data
    for key, value in items:
        data[key] = value


def stored(table: TableT[bytes, bytes], key: bytes) -> bytes | None:
    """The value of ``key`` in the table's store as :func:`put_all` writes it, None if it
    has none (``Table.get`` adds Faust's per-key sensors)."""
    value: bytes | None = table.data.get(key)
    return value


async def send_changelog(
    table: TableT[bytes, bytes], items: Iterable[tuple[bytes, bytes]], partition: int | None
) -> None:
    """Queue the changelog records of values put with :func:`put_all`."""
    producer = table.app.producer
    changelog = table.changelog_topic.get_topic_name()
    for key, value in items:
        await producer.send(changelog, key, value, partition, None, None)


class _EventIn:
    """What Faust's RocksDB store reads of the current event: its record's partition."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, partition: int) -> None:
        self.message = SimpleNamespace(partition=partition)


@contextmanager
def in_partition(partition: int) -> Iterator[None]:
    """Make the current event one of ``partition``, which tells RocksDB the partition to
    read and write (``RocksDB._get``/``_set`` read ``current_event().message.partition``)."""
    event = _EventIn(partition)
    token = _current_event.set(weakref.ref(event))  # type: ignore[arg-type]
    try:
        yield
    finally:
        _current_event.reset(token)

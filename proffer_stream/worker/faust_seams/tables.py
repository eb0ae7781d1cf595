"""Seam: Faust tables written a checkpoint at a time, straight to the store and changelog.

Faust's per-key path (``table[key] = value``: ``Table.on_key_set`` makes a future per key,
partitions eagerly, runs callbacks and sensors) cost ~270 µs a key here, the producer's own
``send`` about a tenth of that. The worker's checkpoint (:mod:`proffer_stream.worker.state`)
uses these instead: it sends the changelog records (``Table.changelog_topic``) with the
app's producer, writes the table's store (``Table.data``), and records the changelog
offset the store holds, as ``Table._on_changelog_sent`` does for Faust's own writes.

Faust's RocksDB store picks the database of a partition from the current event
(``faust.streams._current_event``); work done once per batch or checkpoint has no current
event (or another record's), so :func:`in_partition` names the partition it is for.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Iterable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import cast

from aiokafka.structs import RecordMetadata
from faust.streams import _current_event
from faust.types import TP, StoreT, TableT


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
    table: TableT[bytes, bytes], key: bytes, value: bytes, partition: int
) -> Awaitable[RecordMetadata]:
    """Queue the changelog record of a value to be put with :func:`put_all`; the
    returned awaitable completes when the broker has it."""
    changelog = table.changelog_topic.get_topic_name()
    return await table.app.producer.send(changelog, key, value, partition, None, None)


def record_changelog_offset(table: TableT[bytes, bytes], partition: int, offset: int) -> None:
    """Record in the table's store that it holds the changelog up to ``offset`` of
    ``partition``, as Faust does after each of its own sends (``Table._on_changelog_sent``
    calls ``Store.set_persisted_offset``): recovery then reads only the records after it.
    A memory store keeps no offset (recovery reads the whole changelog)."""
    store = cast(StoreT[bytes, bytes], table.data)
    store.set_persisted_offset(TP(table.changelog_topic.get_topic_name(), partition), offset)


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

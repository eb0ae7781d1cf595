"""The event ids each customer's profile has counted, in the Faust table ``event-ids``.

Keyed ``<tenant>:<external id>\\0<day>.<chunk>``; a value is a packed day bucket (see
:mod:`proffer_stream.signals.seen_ids`). The table lives in RocksDB by default, so days
of ids take disk, not memory; RocksDB drops buckets older than the window on compaction
(its TTL), and the changelog deletes them after the same time.
"""

from __future__ import annotations

from datetime import datetime

from faust.types import Message

from proffer_stream.core.identity import partition_key
from proffer_stream.core.types import CustomerKey
from proffer_stream.signals.seen_ids import SeenIds, day_of, days_kept, unpack
from proffer_stream.worker.lent import Lent
from proffer_stream.worker.state import TableTransaction


def bucket_key(customer: CustomerKey, day: int, chunk: int) -> bytes:
    """The table key of one chunk of a customer's day bucket."""
    return partition_key(*customer) + f"\x00{day}.{chunk}".encode()


class SeenIdStore:
    """Reads a customer's remembered ids for a batch, and writes back what it added.

    The ids it saved are kept in memory too (at most ``kept`` customers', the most
    recently saved), until the day ends or a rebalance (:meth:`forget`): :meth:`load`
    lends them out instead of reading and unpacking every day's bucket (8% of the
    worker's time at one event per record). A lent object leaves the cache until it is
    saved, so one changed by a batch that did not save it is read afresh.

    Saved chunks are held in the table's transaction (and packed only when the
    checkpoint before every offset commit writes them): a customer's chunk is written
    once per commit instead of once per batch (a RocksDB put and a changelog record were
    an eighth of the worker's time at one event per record). What a crash loses of them
    belongs to records after the committed offset, which are read again: the profile
    skips those it had applied, and remembers their ids again
    (:meth:`SeenIds.remember_replayed`).
    """

    def __init__(
        self, state: TableTransaction[dict[int, int]], days: int, kept: int = 10_000
    ) -> None:
        self.state = state
        self.days = days
        self._kept: Lent[CustomerKey, SeenIds] = Lent(kept)

    def load(
        self,
        customer: CustomerKey,
        now: datetime,
        source: Message,
        known: dict[int, int] | None = None,
    ) -> SeenIds:
        """The ids remembered for ``customer`` in the window that ends ``now``.

        ``source`` is a record of the customer's, for the partition to read. ``known``: the
        chunks of each day the profile recorded, so that only those are read (a lookup that
        finds nothing costs as much as one that finds a bucket); None: look up every day.
        A chunk written after the profile last reached the changelog holds only ids above
        the profile's offset, which do not count as sightings, so it is not missed.
        """
        kept = self._kept.take(customer)
        if kept is not None and kept.today == day_of(now):
            return kept
        buckets = []
        for day in days_kept(now, self.days):
            chunk = 0
            while known is None or chunk < known.get(day, 0):
                entries = self._stored_chunk(source.partition, bucket_key(customer, day, chunk))
                if entries is None:
                    break
                buckets.append((day, chunk, entries))
                chunk += 1
        return SeenIds(day_of(now), buckets)

    def save(self, customer: CustomerKey, seen: SeenIds, source: Message) -> None:
        """Hold the chunks ``seen`` changed for the checkpoint, on the partition of the
        customer's events."""
        for chunk, entries in seen.changed().items():  # a copy: a later batch changes them
            key = bucket_key(customer, seen.today, chunk)
            self.state.set(source.partition, key, entries.copy())
        seen.mark_saved()
        self._kept.keep(customer, seen)

    def _stored_chunk(self, partition: int, key: bytes) -> dict[int, int] | None:
        """A chunk's entries: as held for the checkpoint, else as in the table."""
        entries = self.state.held(partition, key)
        if entries is not None:
            return entries.copy()
        value = self.state.stored(partition, key)
        return None if value is None else unpack(value)

    def forget(self) -> None:
        """Drop the ids kept in memory: the partitions they came from may move (call when
        partitions are revoked; the table is the truth again)."""
        self._kept.clear()

"""The event ids each customer's profile has counted, in the Faust table ``event-ids``.

Keyed ``<tenant>:<external id>\\0<day>.<chunk>``; a value is a packed day bucket (see
:mod:`proffer_stream.signals.seen_ids`). The table lives in RocksDB by default, so days
of ids take disk, not memory; RocksDB drops buckets older than the window on compaction
(its TTL), and the changelog deletes them after the same time.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from faust.streams import _current_event
from faust.types import EventT, TableT

from proffer_stream.core.identity import partition_key
from proffer_stream.core.types import CustomerKey
from proffer_stream.signals.seen_ids import SeenIds, day_of, days_kept, pack, unpack
from proffer_stream.worker.lent import Lent
from proffer_stream.worker.tables import write_through


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
    """

    def __init__(self, table: TableT[bytes, bytes], days: int, kept: int = 10_000) -> None:
        self.table = table
        self.days = days
        self._kept: Lent[CustomerKey, SeenIds] = Lent(kept)

    def load(
        self,
        customer: CustomerKey,
        now: datetime,
        source: EventT[bytes],
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
        with _in_partition_of(source):
            for day in days_kept(now, self.days):
                chunk = 0
                while known is None or chunk < known.get(day, 0):
                    value = self.table.data.get(bucket_key(customer, day, chunk))
                    if value is None:
                        break
                    buckets.append((day, chunk, unpack(value)))
                    chunk += 1
        return SeenIds(day_of(now), buckets)

    async def save(self, customer: CustomerKey, seen: SeenIds, source: EventT[bytes]) -> None:
        """Write the chunks ``seen`` changed, on the partition of the customer's events."""
        changed = [
            (bucket_key(customer, seen.today, chunk), pack(entries))
            for chunk, entries in seen.changed().items()
        ]
        with _in_partition_of(source):
            await write_through(self.table, changed, source.message.partition)
        seen.mark_saved()
        self._kept.keep(customer, seen)

    def forget(self) -> None:
        """Drop the ids kept in memory: the partitions they came from may move (call when
        partitions are revoked; the table is the truth again)."""
        self._kept.clear()


@contextmanager
def _in_partition_of(source: EventT[bytes]) -> Iterator[None]:
    """Make ``source`` the current event, which tells RocksDB the partition to use.

    Faust's RocksDB store reads and writes the database of the current event's
    partition; work done once per batch has no current event (or another record's), so
    it names the record it is for.
    """
    token = _current_event.set(weakref.ref(source))
    try:
        yield
    finally:
        _current_event.reset(token)

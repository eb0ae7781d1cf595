"""The agents' state: one transaction per table, and the checkpoint that completes them.

Model: quix-streams' ``PartitionTransaction`` and ``Checkpoint``. A store of the worker
(profiles, remembered event ids, offers, and the agents to come) reads and writes its
Faust table through a :class:`TableTransaction`, partition by partition: reads see the
writes it holds, and nothing reaches the table until the :class:`Checkpoint`, which runs
before every offset commit (and whenever an agent wants its state out sooner):

1. each transaction sends its held writes' changelog records (``prepare``; a key written
   many times since the last checkpoint is sent once), in the order the transactions
   were registered;
2. the producer is flushed: every output the agents queued (offer requests, offer
   events, dead letters) and every changelog record is on the broker;
3. each transaction puts its writes in the table's store and records, per partition,
   the changelog offset its store now holds (``complete``), so that a worker restarted
   on the same disk recovers only the changelog records after it;
4. Faust commits the input offsets.

Why this order: a store on disk survives a kill -9, the producer's buffer does not. Had
the store been written first, a crash could leave a state that remembers an output (a
decided request, a fired rule) that never reached the broker. Written after the flush,
the store never holds what the changelog and the outputs lack; a crash before step 3
leaves the store behind, and recovery reads the rest from the changelog.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import faust
from aiokafka.structs import RecordMetadata
from faust.types import TableT

from proffer_stream.worker.faust_seams.tables import (
    in_partition,
    put_all,
    record_changelog_offset,
    send_changelog,
    stored,
)

log = logging.getLogger(__name__)

V = TypeVar("V")


class TableTransaction(Generic[V]):
    """The writes to one table since the last checkpoint, by partition.

    Values are held as the store gives them (``V``) and turned into bytes by ``encode``
    only when the checkpoint sends them, so a value written many times between two
    checkpoints is encoded once.
    """

    def __init__(self, table: TableT[bytes, bytes], encode: Callable[[V], bytes]) -> None:
        self.table = table
        self.encode = encode
        self._held: dict[int, dict[bytes, V]] = {}
        self._sent: dict[int, dict[bytes, bytes]] = {}
        self._last_sent: dict[int, Awaitable[RecordMetadata]] = {}

    def held(self, partition: int, key: bytes) -> V | None:
        """The value written since the last checkpoint, if any."""
        held = self._held.get(partition)
        return None if held is None else held.get(key)

    def stored(self, partition: int, key: bytes) -> bytes | None:
        """The value as of the last checkpoint: sent and not yet stored, else in the store."""
        sent = self._sent.get(partition)
        if sent is not None and (value := sent.get(key)) is not None:
            return value
        with in_partition(partition):
            return stored(self.table, key)

    def set(self, partition: int, key: bytes, value: V) -> None:
        """Hold ``value`` for ``key`` until the checkpoint.

        A key written again moves to the end: the checkpoint sends a partition's records
        in the order of their last writes, so a record written after others reaches the
        changelog after them (the catalog owner writes an offer's record last, to mark
        its members' records before it as complete).
        """
        held = self._held.setdefault(partition, {})
        held.pop(key, None)
        held[key] = value

    @property
    def pending(self) -> bool:
        """Whether there is anything for the checkpoint to write."""
        return bool(self._held or self._sent)

    async def prepare(self) -> None:
        """Queue the changelog record of every held write (step 1 of the checkpoint)."""
        held, self._held = self._held, {}
        for partition, writes in held.items():
            sent = self._sent.setdefault(partition, {})
            for key, value in writes.items():
                sent[key] = encoded = self.encode(value)
                self._last_sent[partition] = await send_changelog(
                    self.table, key, encoded, partition
                )

    def complete(self) -> None:
        """Put what was sent in the store and record its changelog offsets (step 3: the
        producer has delivered everything sent)."""
        sent, self._sent = self._sent, {}
        last_sent, self._last_sent = self._last_sent, {}
        for partition, writes in sent.items():
            with in_partition(partition):
                put_all(self.table, writes.items())
        for partition, delivery in last_sent.items():
            record_changelog_offset(self.table, partition, _delivered(delivery).offset)


class Checkpoint:
    """Completes every registered transaction at once, in registration order."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.transactions: list[TableTransaction[Any]] = []
        self._lock = asyncio.Lock()

    def register(self, transaction: TableTransaction[V]) -> TableTransaction[V]:
        self.transactions.append(transaction)
        return transaction

    async def __call__(self) -> None:
        """Prepare, flush the producer, complete (see the module's docstring): every
        transaction, as before an offset commit."""
        await self.only(self.transactions)

    async def only(self, transactions: Sequence[TableTransaction[Any]]) -> None:
        """The same for some transactions: an agent that wants its own state out sooner
        leaves the others' writes held for the commit (once per commit, not per batch)."""
        async with self._lock:  # a commit and an agent's own checkpoint never interleave
            if not any(t.pending for t in transactions):
                return
            for transaction in transactions:
                await transaction.prepare()
            await self.app.producer.flush()
            for transaction in transactions:
                transaction.complete()


def _delivered(delivery: Awaitable[RecordMetadata]) -> RecordMetadata:
    """The metadata of a send the producer's flush has completed."""
    future = asyncio.ensure_future(delivery)
    if not future.done():
        raise RuntimeError("the producer was flushed, yet a changelog record is not delivered")
    return future.result()

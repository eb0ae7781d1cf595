"""Records on a partition their key does not hash to, moved to the customer's partition.

Producers built on librdkafka (confluent-kafka, kcat, most non-Java clients) partition
by CRC32 unless told ``partitioner=murmur2_random``; Kafka's Java client and ours use
murmur2. A customer's records must share one partition for the offset watermark to
mean anything, so a misplaced record is put on the right one, its events' ids and times
settled from its original position: if it is moved twice (a crash before the commit),
the second copy's events are known by id and counted once.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import faust
from aiokafka.partitioner import murmur2

from proffer_stream.core import metrics
from proffer_stream.ingest.models import EventBatch, EventIn
from proffer_stream.ingest.records import EventRecord
from proffer_stream.kafka.deadletter import SourceRecord

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=65_536)
def key_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` (murmur2).

    Cached: aiokafka's murmur2 is pure Python, and it runs for every record.
    """
    return int((murmur2(key) & 0x7FFFFFFF) % partitions)


class Rerouter:
    """Moves misplaced records of one topic to their key's partition."""

    def __init__(self, app: faust.App, topic: str, partitions: Callable[[], int | None]) -> None:
        self.app = app
        self.topic = topic
        self.partitions = partitions
        self._warned = False

    def misplaced(self, source: SourceRecord) -> bool:
        count = self.partitions()
        if not count or source.key is None:
            return False
        return key_partition(source.key, count) != source.partition

    async def move(self, source: SourceRecord, record: EventRecord) -> None:
        """Queue the record, settled, on its key's partition (flushed before the commit)."""
        count = self.partitions()
        assert count and source.key is not None
        settled = EventBatch(
            tenant_id=record.batch.tenant_id,
            customer=record.batch.customer,
            events=[
                EventIn(id=e.id, type=e.type, data=e.data, occurred_at=e.occurred_at)
                for e in record.events
            ],
            received_at=record.events[0].received_at,
        )
        partition = key_partition(source.key, count)
        value = settled.model_dump_json(exclude_none=True).encode()
        await self.app.producer.send(self.topic, source.key, value, partition, None, None)
        metrics.RECORDS_REROUTED.inc()
        if not self._warned:
            log.warning(
                "a record for %r was on partition %d, not %d where its key belongs: moved."
                " Producers should partition with murmur2 (librdkafka:"
                " partitioner=murmur2_random); see proffer_signals_records_rerouted_total",
                source.key,
                source.partition,
                partition,
            )
            self._warned = True

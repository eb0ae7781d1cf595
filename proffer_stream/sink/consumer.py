"""The sink's loop: fetch a batch, write it in one transaction, then commit the offsets.

A batch is read (parsed, rows built) while the batch before it is written: the sink's
CPU and PostgreSQL's work on the previous batch overlap, and batches are still written
and committed one at a time, in order. A crash replays what was not committed (the
batch being written, the one being read), which the idempotent writes absorb. An
outage of PostgreSQL is waited out; a record that cannot be read or written (bad data,
not an outage) is found by writing the batch record by record, and goes to the
dead-letter topic with its reason while the rest is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError

from proffer_stream.core import metrics
from proffer_stream.core.errors import BadRecord
from proffer_stream.core.event_loop import use_uvloop
from proffer_stream.core.heap import collect_less_often, freeze_startup_heap
from proffer_stream.core.retry import retry_transient
from proffer_stream.core.settings import Settings
from proffer_stream.db.migrations import require_current
from proffer_stream.db.pool import TRANSIENT_ERRORS, connect_pool
from proffer_stream.db.replies import Notice, notify
from proffer_stream.ingest.records import RecordLimits
from proffer_stream.kafka.deadletter import SourceRecord, dead_letter
from proffer_stream.kafka.topics import topics_for
from proffer_stream.sink.projections import (
    DATA_ERRORS,
    CatalogDefinitionsProjection,
    CatalogEventsProjection,
    CommandOutcomesProjection,
    ConfigOutcomesProjection,
    CustomersProjection,
    DecisionsProjection,
    EventsProjection,
    Item,
    OffersProjection,
    Projection,
    Record,
    TenantConfigProjection,
    latest_of_each_key,
)

log = logging.getLogger(__name__)

STAGE = "sink"
READ_SLICE_SECONDS = 0.001
"""Longest the sink reads a batch without letting the previous batch's write go on."""
READ_STEP = 10
"""Records read at a time between looks at the clock."""


@dataclass(frozen=True)
class Batch:
    """Fetched records, the offsets to commit once they are written, and what each
    topic's projection read of them (``None``: a record could not be read)."""

    records: list[Record]
    offsets: dict[TopicPartition, int]
    items: dict[str, list[Any]] | None


def projections_for(settings: Settings) -> dict[str, Projection[Any]]:
    """Each topic the sink projects, with its projection, in the order a transaction
    writes them (the order ``sink --replay`` locks their tables in)."""
    topics = topics_for(settings)
    return {
        topics.events.name: EventsProjection(topics.events.name, RecordLimits.of(settings)),
        topics.signals_changelog.name: CustomersProjection(topics.signals_changelog.name),
        topics.offers.name: OffersProjection(topics.offers.name),
        topics.offer_outcomes.name: CommandOutcomesProjection(topics.offer_outcomes.name),
        topics.tenant_config.name: TenantConfigProjection(topics.tenant_config.name),
        topics.tenant_config_outcomes.name: ConfigOutcomesProjection(
            topics.tenant_config_outcomes.name
        ),
        topics.catalog.name: CatalogDefinitionsProjection(topics.catalog.name),
        topics.catalog_events.name: CatalogEventsProjection(topics.catalog_events.name),
        topics.decisions.name: DecisionsProjection(topics.decisions.name),
    }


class Sink:
    """Consumes the topics it projects and keeps PostgreSQL up to date."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.deadletter_topic = topics_for(settings).deadletter.name
        self.projections = projections_for(settings)
        self.stopping = asyncio.Event()
        self.rows_written: dict[str, int] = defaultdict(int)

    async def run(self) -> None:
        """Consume until :meth:`stop` is called."""
        pool = await connect_pool(self.settings.database_url, max_size=2)
        await require_current(pool)
        consumer = self._consumer()
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.bootstrap_servers)
        await consumer.start()
        await producer.start()
        log.info("sink consuming %s", ", ".join(self.projections))
        # Full collections walked the startup heap every few batches: 46 ms of the sink's
        # CPU in a phase b1 of bench/ingest.py (30,000 records), 15 ms frozen.
        freeze_startup_heap()
        reporter = asyncio.create_task(self._report_progress())
        storing: asyncio.Task[None] | None = None
        try:
            while not self.stopping.is_set():
                fetched = await consumer.getmany(
                    timeout_ms=100, max_records=self.settings.sink_batch_size
                )
                if fetched:
                    batch = await self._read(fetched)
                    if storing is not None:
                        await storing
                    storing = asyncio.create_task(self._store(pool, producer, consumer, batch))
            if storing is not None:
                await storing
        finally:
            if storing is not None and not storing.done():
                storing.cancel()  # rolled back and not committed: replayed, absorbed
                await asyncio.wait([storing])
            reporter.cancel()
            await _stop_consumer(consumer)
            await producer.stop()
            await pool.close()
            log.info("sink stopped: %s", dict(self.rows_written))

    def stop(self) -> None:
        self.stopping.set()

    def _consumer(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            *self.projections,
            bootstrap_servers=self.settings.bootstrap_servers,
            group_id=self.settings.sink_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(self.settings.broker_session_timeout * 1000),
            heartbeat_interval_ms=int(self.settings.broker_heartbeat_interval * 1000),
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
        )

    async def _read(self, fetched: dict[TopicPartition, list[Record]]) -> Batch:
        """Read a fetched batch, each topic's records with its projection."""
        records = [record for partition in fetched.values() for record in partition]
        offsets = {tp: partition[-1].offset + 1 for tp, partition in fetched.items()}
        items: dict[str, list[Any]] = {}
        by_topic = _by_topic(records)
        try:
            for topic, projection in self.projections.items():
                topic_records = by_topic.get(topic)
                if topic_records is None:
                    continue
                if projection.latest_per_key:
                    topic_records = latest_of_each_key(topic_records)
                items[topic] = await read_in_slices(projection, topic_records)
        except DATA_ERRORS as exc:
            log.warning("a batch of %d records failed (%r); writing one by one", len(records), exc)
            return Batch(records, offsets, None)
        return Batch(records, offsets, items)

    async def _store(
        self,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        consumer: AIOKafkaConsumer,
        batch: Batch,
    ) -> None:
        """Write a batch, then commit its offsets."""
        await self._write(pool, producer, batch)
        await _commit(consumer, batch.offsets)

    async def _write(self, pool: asyncpg.Pool, producer: AIOKafkaProducer, batch: Batch) -> None:
        """Write a batch in one transaction; on a data error, record by record."""
        if batch.items is not None:
            try:
                await self._write_transaction(pool, batch.items)
                return
            except DATA_ERRORS as exc:
                log.warning(
                    "a batch of %d records failed (%r); writing one by one", len(batch.records), exc
                )
        for record in batch.records:
            try:
                projection = self.projections[record.topic]
                await self._write_transaction(pool, {record.topic: projection.read([record])})
            except DATA_ERRORS as error:
                await self._dead_letter(producer, record, error)

    async def _write_transaction(self, pool: asyncpg.Pool, items: dict[str, list[Any]]) -> None:
        async def transaction() -> dict[str, int]:
            written: dict[str, int] = {}
            async with pool.acquire() as conn, conn.transaction():
                replies: list[Notice] = []
                for topic, topic_items in items.items():
                    projection = self.projections[topic]
                    written[projection.table] = await projection.write(conn, topic_items)
                    replies.extend(projection.replies(topic_items))
                await notify(conn, replies)  # delivered when the transaction commits
            return written

        started = time.perf_counter()
        written = await retry_transient(transaction, transient=TRANSIENT_ERRORS, what="PostgreSQL")
        metrics.SINK_BATCH_SECONDS.observe(time.perf_counter() - started)
        for table, rows in written.items():
            self.rows_written[table] += rows
            metrics.SINK_ROWS.labels(table).inc(rows)

    async def _dead_letter(
        self, producer: AIOKafkaProducer, record: Record, error: Exception
    ) -> None:
        reason = error if isinstance(error, BadRecord) else None
        bad = reason or BadRecord("processing_error", f"{type(error).__name__}: {error}"[:1000])
        source = SourceRecord(
            record.topic,
            record.partition,
            record.offset,
            record.timestamp,
            record.key,
            record.value,
        )
        letter = dead_letter(bad, stage=STAGE, record=source)
        log.warning(
            "dead-lettered %s[%d]@%d: %s", record.topic, record.partition, record.offset, bad
        )
        await producer.send_and_wait(
            self.deadletter_topic, letter.model_dump_json().encode(), key=record.key
        )
        metrics.DEAD_LETTERS.labels(STAGE, bad.reason).inc()

    async def _report_progress(self) -> None:
        reported = dict(self.rows_written)
        while True:
            await asyncio.sleep(10)
            if self.rows_written != reported:
                log.info(
                    "sink: %s rows written so far",
                    ", ".join(f"{n} {table}" for table, n in self.rows_written.items()),
                )
                reported = dict(self.rows_written)


async def read_in_slices(projection: Projection[Item], records: Sequence[Record]) -> list[Item]:
    """``projection.read(records)``, a few records at a time, letting the event loop run
    (the previous batch's write to its next statement) every :data:`READ_SLICE_SECONDS`."""
    items: list[Item] = []
    pause_at = time.perf_counter() + READ_SLICE_SECONDS
    for start in range(0, len(records), READ_STEP):
        items.extend(projection.read(records[start : start + READ_STEP]))
        if time.perf_counter() >= pause_at:
            await asyncio.sleep(0)
            pause_at = time.perf_counter() + READ_SLICE_SECONDS
    return items


async def _stop_consumer(consumer: AIOKafkaConsumer) -> None:
    """Stop the consumer; aiokafka's stop re-raises the cancellation of a fetch it was
    retrying when the broker is gone, which is no reason to end the shutdown there."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        log.warning("the consumer stopped while the broker was unreachable")


def _by_topic(records: Sequence[Record]) -> dict[str, list[Record]]:
    by_topic: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        by_topic[record.topic].append(record)
    return by_topic


async def _commit(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
    """Commit a written batch's offsets, of the partitions the sink still holds.

    Its own offsets, not the consumer's positions: those are past the next batch,
    fetched and read already but not written.
    """
    assigned = consumer.assignment()
    held = {tp: offset for tp, offset in offsets.items() if tp in assigned}
    if held:
        with contextlib.suppress(CommitFailedError):  # rebalanced: replayed, absorbed
            await consumer.commit(held)


def run_sink(settings: Settings) -> None:
    """Run the sink until SIGINT/SIGTERM."""
    use_uvloop()
    collect_less_often()
    metrics.serve_metrics(settings.metrics_port)

    async def main() -> None:
        sink = Sink(settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, sink.stop)
        await sink.run()

    asyncio.run(main())

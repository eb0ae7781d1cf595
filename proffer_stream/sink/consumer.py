"""The sink's loop: fetch a batch, write it in one transaction, then commit the offsets.

A crash replays at most the last batch, which the idempotent writes absorb. An outage
of PostgreSQL is waited out; a record that cannot be written (bad data, not an outage)
is found by writing the batch record by record, and goes to the dead-letter topic with
its reason while the rest is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import defaultdict
from collections.abc import Sequence

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import CommitFailedError

from proffer_stream.core import metrics
from proffer_stream.core.errors import BadRecord
from proffer_stream.core.retry import retry_transient
from proffer_stream.core.settings import Settings
from proffer_stream.db.migrations import require_current
from proffer_stream.db.pool import TRANSIENT_ERRORS, connect_pool
from proffer_stream.kafka.deadletter import SourceRecord, dead_letter
from proffer_stream.kafka.topics import topics_for
from proffer_stream.sink.projections import (
    CommandOutcomesProjection,
    CustomersProjection,
    EventsProjection,
    OffersProjection,
    Projection,
    Record,
    TenantConfigProjection,
)

log = logging.getLogger(__name__)

STAGE = "sink"


def projections_for(settings: Settings) -> dict[str, Projection]:
    """Each topic the sink projects, with its projection."""
    topics = topics_for(settings)
    return {
        topics.events.name: EventsProjection(topics.events.name),
        topics.signals_changelog.name: CustomersProjection(topics.signals_changelog.name),
        topics.offers.name: OffersProjection(topics.offers.name),
        topics.offer_outcomes.name: CommandOutcomesProjection(topics.offer_outcomes.name),
        topics.tenant_config.name: TenantConfigProjection(topics.tenant_config.name),
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
        reporter = asyncio.create_task(self._report_progress())
        try:
            while not self.stopping.is_set():
                fetched = await consumer.getmany(
                    timeout_ms=100, max_records=self.settings.sink_batch_size
                )
                if fetched:
                    records = [r for batch in fetched.values() for r in batch]
                    await self._write(pool, producer, records)
                    with contextlib.suppress(CommitFailedError):  # rebalanced: replayed, absorbed
                        await consumer.commit()
        finally:
            reporter.cancel()
            await consumer.stop()
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

    async def _write(
        self, pool: asyncpg.Pool, producer: AIOKafkaProducer, records: Sequence[Record]
    ) -> None:
        """Write a batch in one transaction; on a data error, record by record."""
        try:
            await self._write_transaction(pool, records)
        except (BadRecord, asyncpg.PostgresError, ValueError) as exc:
            log.warning("a batch of %d records failed (%r); writing one by one", len(records), exc)
            for record in records:
                try:
                    await self._write_transaction(pool, [record])
                except (BadRecord, asyncpg.PostgresError, ValueError) as error:
                    await self._dead_letter(producer, record, error)

    async def _write_transaction(self, pool: asyncpg.Pool, records: Sequence[Record]) -> None:
        by_topic: dict[str, list[Record]] = defaultdict(list)
        for record in records:
            by_topic[record.topic].append(record)

        async def transaction() -> dict[str, int]:
            written: dict[str, int] = {}
            async with pool.acquire() as conn, conn.transaction():
                for topic, topic_records in by_topic.items():
                    projection = self.projections[topic]
                    written[projection.table] = await projection.write(conn, topic_records)
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


def run_sink(settings: Settings) -> None:
    """Run the sink until SIGINT/SIGTERM."""
    metrics.serve_metrics(settings.metrics_port)

    async def main() -> None:
        sink = Sink(settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, sink.stop)
        await sink.run()

    asyncio.run(main())

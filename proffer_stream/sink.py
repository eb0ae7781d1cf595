"""The PostgreSQL sink: projects ``proffer.events`` and the signals changelog into tables.

An aiokafka consumer group of its own reads batches, writes each batch in one
transaction with idempotent upserts, then commits the offsets. A crash replays at most
the last batch, which the upserts absorb. Records that do not validate are skipped
here; the signals agent dead-letters them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Iterable

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import CommitFailedError
from pydantic import ValidationError

from proffer_stream import metrics, storage
from proffer_stream.identity import customer_id
from proffer_stream.models import CustomerSignals
from proffer_stream.settings import Settings
from proffer_stream.storage import EventRow
from proffer_stream.topics import BadRecord, TopicNames, read_event_record, topic_names

log = logging.getLogger(__name__)


class Sink:
    """Consumes the topics it projects and keeps PostgreSQL up to date."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.names: TopicNames = topic_names(settings)
        self.stopping = asyncio.Event()
        self.rows_written = {"events": 0, "customers": 0}

    async def run(self) -> None:
        """Consume until :meth:`stop` is called."""
        pool = await storage.connect_pool(self.settings.database_url, max_size=2)
        consumer = AIOKafkaConsumer(
            self.names.events,
            self.names.signals_changelog,
            bootstrap_servers=self.settings.bootstrap_servers,
            group_id=self.settings.sink_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=int(self.settings.broker_session_timeout * 1000),
            heartbeat_interval_ms=int(self.settings.broker_heartbeat_interval * 1000),
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
        )
        await consumer.start()
        log.info("sink consuming %s and %s", self.names.events, self.names.signals_changelog)
        reporter = asyncio.create_task(self._report_progress())
        try:
            while not self.stopping.is_set():
                fetched = await consumer.getmany(
                    timeout_ms=100, max_records=self.settings.sink_batch_size
                )
                if fetched:
                    await self._write(pool, [r for records in fetched.values() for r in records])
                    with contextlib.suppress(CommitFailedError):  # rebalanced: replayed, absorbed
                        await consumer.commit()
        finally:
            reporter.cancel()
            await consumer.stop()
            await pool.close()
            log.info("sink stopped: %s", self.rows_written)

    def stop(self) -> None:
        self.stopping.set()

    async def _write(self, pool: asyncpg.Pool, records: list[ConsumerRecord]) -> None:
        events = list(self._event_rows(r for r in records if r.topic == self.names.events))
        customers = self._latest_snapshots(
            r for r in records if r.topic == self.names.signals_changelog
        )
        delay = 0.5
        while True:
            try:
                started = time.perf_counter()
                async with pool.acquire() as conn, conn.transaction():
                    stored = await storage.insert_events(conn, events)
                    upserted = await storage.upsert_customers(conn, customers)
                metrics.SINK_BATCH_SECONDS.observe(time.perf_counter() - started)
                break
            except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
                log.warning("PostgreSQL unavailable (%s); retrying the batch in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        if upserted < len(customers):
            log.error(
                "%d customer profile(s) not projected: their internal id is held by another"
                " external id of the tenant (a hash collision)",
                len(customers) - upserted,
            )
        self.rows_written["events"] += stored
        self.rows_written["customers"] += upserted
        metrics.SINK_ROWS.labels("events").inc(stored)
        metrics.SINK_ROWS.labels("customers").inc(upserted)

    @staticmethod
    def _event_rows(records: Iterable[ConsumerRecord]) -> Iterable[EventRow]:
        for record in records:
            try:
                read = read_event_record(
                    record.key,
                    record.value,
                    partition=record.partition,
                    offset=record.offset,
                    timestamp_ms=record.timestamp,
                )
            except BadRecord:
                continue
            tenant, external = read.customer_key
            internal = customer_id(tenant, external)
            yield from (EventRow(tenant, internal, event) for event in read.events)

    @staticmethod
    def _latest_snapshots(records: Iterable[ConsumerRecord]) -> list[CustomerSignals]:
        latest: dict[tuple[str, int], CustomerSignals] = {}
        for record in records:
            if record.value is None:
                continue
            try:
                snapshot = CustomerSignals.model_validate_json(record.value)
            except ValidationError as exc:
                log.error("unreadable signals snapshot at offset %d: %s", record.offset, exc)
                continue
            latest[(snapshot.tenant_id, snapshot.customer_id)] = snapshot
        return list(latest.values())

    async def _report_progress(self) -> None:
        reported = dict(self.rows_written)
        while True:
            await asyncio.sleep(10)
            if self.rows_written != reported:
                log.info(
                    "sink: %d event rows, %d customer upserts so far",
                    self.rows_written["events"],
                    self.rows_written["customers"],
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

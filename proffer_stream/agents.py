"""The Faust worker: the signals agent, which owns each customer's live profile.

The agent reads ``proffer.events`` in batches (``take_events``), folds each record into
its customer's :class:`CustomerSignals`, and writes every changed customer once per
batch to the ``signals`` table, whose changelog the sink projects into PostgreSQL.

Exactness under at-least-once delivery: a customer's records all live in one
partition, so each profile remembers the offset of the last record it applied and
skips anything at or below it on a replay; recent event ids catch client re-sends.
Faust flushes the changelog before it commits offsets, so a profile is never behind
the committed offset; at worst it is ahead, and the replay is skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import faust
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import EventT

from proffer_stream import metrics, storage
from proffer_stream.identity import partition_key
from proffer_stream.models import CustomerSignals
from proffer_stream.settings import Settings
from proffer_stream.signals import apply_record, new_signals
from proffer_stream.topics import (
    BadRecord,
    EventRecord,
    dead_letter,
    read_event_record,
    topic_names,
    worker_app_id,
)

log = logging.getLogger(__name__)

CustomerKey = tuple[str, str]
T = TypeVar("T")
STAGE = "signals-agent"


def create_app(settings: Settings) -> faust.App:
    """The worker's Faust app with its topics, table and signals agent."""
    names = topic_names(settings)
    app = faust.App(
        worker_app_id(settings),
        broker=[f"kafka://{server}" for server in settings.bootstrap_servers.split(",")],
        store="memory://",
        datadir=str(settings.data_dir / "faust"),
        processing_guarantee="at_least_once",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        broker_session_timeout=settings.broker_session_timeout,
        broker_heartbeat_interval=settings.broker_heartbeat_interval,
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        web_host="127.0.0.1",
        web_port=settings.worker_web_port,
    )
    # Before any topic is declared: the transport is created on first use.
    app.transport = _transport_with_fetch_wait(app, settings.fetch_max_wait_ms)
    events_topic = app.topic(names.events, key_type=bytes, value_type=bytes)
    deadletter_topic = app.topic(names.deadletter, key_type=bytes, value_type=bytes)
    table = app.Table(
        "signals",
        default=None,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.partitions,
        # Writes happen per batch, outside one event's context: let the partitioner
        # (murmur2 on the same key, as producers use) pick the changelog partition.
        use_partitioner=True,
    )
    processor = SignalsProcessor(settings, table, deadletter_topic, names.events)

    @app.agent(events_topic, name="signals", concurrency=1)
    async def signals(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(
            settings.worker_batch_size, within=settings.worker_batch_seconds
        ):
            await processor.process(batch)

    @app.timer(10.0)
    async def report_progress() -> None:
        processor.report()

    return app


def _transport_with_fetch_wait(app: faust.App, fetch_max_wait_ms: int) -> aiokafka_driver.Transport:
    """Faust's Kafka transport with our fetch wait instead of its fixed 1,500 ms.

    On a broker that holds an empty fetch for the whole wait (the local one does),
    Faust's value delays every event by up to 1.5 s at low rates (measured: 450 ms
    event -> profile; 50 ms with 20 ms waits).
    """

    class Thread(aiokafka_driver.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            consumer._fetch_max_wait_ms = fetch_max_wait_ms  # read when the consumer starts
            return consumer

    class FastFetchConsumer(aiokafka_driver.Consumer):
        def _new_consumer_thread(self) -> Thread:
            return Thread(self, loop=self.loop, beacon=self.beacon)

    class Transport(aiokafka_driver.Transport):
        Consumer = FastFetchConsumer

    return Transport(app.conf.broker_consumer, app)


class SignalsProcessor:
    """Folds batches of ``proffer.events`` records into the signals table."""

    def __init__(
        self, settings: Settings, table: faust.Table, deadletter: faust.TopicT, source_topic: str
    ) -> None:
        self.settings = settings
        self.table = table
        self.deadletter = deadletter
        self.source_topic = source_topic
        self._pool: asyncpg.Pool | None = None
        self._totals = {"records": 0, "counted": 0, "not_counted": 0, "dead_letters": 0}
        self._reported = dict(self._totals)
        self._reported_at = time.monotonic()

    async def process(self, batch: Sequence[EventT]) -> None:
        """Apply a batch; bad records go to the dead-letter topic, never stop the stream."""
        records = [record for event in batch if (record := await self._read(event)) is not None]
        states = await self._states_for({record.customer_key for record in records})
        now = datetime.now(UTC)
        changed: set[CustomerKey] = set()
        for record in records:
            state = states[record.customer_key]
            counted = apply_record(
                state,
                record.batch.customer,
                record.events,
                offset=record.offset,
                now=now,
                remembered_ids=self.settings.recent_event_ids,
            )
            self._count(record, counted)
            if state.source_offset == record.offset:  # applied, even if every event was a re-send
                changed.add(record.customer_key)
        await self._store(states, changed)

    async def _store(
        self, states: dict[CustomerKey, CustomerSignals], changed: set[CustomerKey]
    ) -> None:
        """Put changed profiles in the table and queue their changelog records.

        The same effect as ``table[key] = value`` at a fraction of its cost: Faust's
        per-key path (future, eager partitioning, callback, sensors) cost ~270 µs a key
        here, the producer's own ``send`` about a tenth of that. Faust flushes the
        producer before it commits offsets, so the guarantee above still holds.
        """
        producer = self.table.app.producer
        changelog = self.table.changelog_topic.get_topic_name()
        for key in changed:
            table_key = partition_key(*key)
            value = states[key].model_dump_json().encode()
            self.table.data[table_key] = value
            await producer.send(changelog, table_key, value, None, None, None)

    async def _read(self, event: EventT) -> EventRecord | None:
        message = event.message
        timestamp_ms = round((message.timestamp or 0) * 1000)
        try:
            return read_event_record(
                message.key,
                message.value,
                partition=message.partition,
                offset=message.offset,
                timestamp_ms=timestamp_ms,
            )
        except BadRecord as error:
            await self._dead_letter(event, error, timestamp_ms)
            return None

    async def _dead_letter(self, event: EventT, error: BadRecord, timestamp_ms: int) -> None:
        message = event.message
        letter = dead_letter(
            error,
            stage=STAGE,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            timestamp_ms=timestamp_ms,
            key=message.key,
            value=message.value,
        )
        log.warning(
            "dead-lettered %s[%d]@%d: %s", message.topic, message.partition, message.offset, error
        )
        await self.deadletter.send(key=message.key, value=letter.model_dump_json().encode())
        metrics.DEAD_LETTERS.labels(STAGE, error.reason).inc()
        self._totals["dead_letters"] += 1

    async def _states_for(self, keys: set[CustomerKey]) -> dict[CustomerKey, CustomerSignals]:
        states: dict[CustomerKey, CustomerSignals] = {}
        for key in keys:
            stored = self.table.get(partition_key(*key))
            if stored is not None:
                states[key] = CustomerSignals.model_validate_json(stored)
        missing = [key for key in keys if key not in states]
        restored = await self._restore(missing)
        for key in missing:
            states[key] = restored.get(key) or new_signals(*key)
        return states

    async def _restore(self, keys: list[CustomerKey]) -> dict[CustomerKey, CustomerSignals]:
        """Profiles missing from the table but stored in PostgreSQL.

        PostgreSQL only knows a profile through the changelog, so one missing from the
        table means the changelog was lost (the local broker keeps nothing across
        restarts): the stored profile is the truth, and its source offset, which
        counted records of the old log, no longer applies.
        """
        if not keys or not self.settings.database_url:
            return {}
        restored = await self._with_database(lambda pool: storage.load_signals(pool, keys))
        for state in restored.values():
            state.source_offset = -1
        if restored:
            log.info("restored %d customer profiles from PostgreSQL", len(restored))
        return restored

    async def _with_database(self, query: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
        """Run ``query(pool)``, waiting out a PostgreSQL outage rather than losing the batch."""
        delay = 0.5
        while True:
            try:
                if self._pool is None:
                    self._pool = await storage.connect_pool(self.settings.database_url, max_size=2)
                return await query(self._pool)
            except (ConnectionError, OSError, asyncpg.PostgresError) as exc:
                log.warning("PostgreSQL unavailable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _count(self, record: EventRecord, counted: int) -> None:
        not_counted = len(record.events) - counted
        self._totals["records"] += 1
        self._totals["counted"] += counted
        self._totals["not_counted"] += not_counted
        metrics.RECORDS_PROCESSED.inc()
        metrics.EVENTS_COUNTED.inc(counted)
        metrics.EVENTS_NOT_COUNTED.inc(not_counted)

    def report(self) -> None:
        """Log what was done since the last report, if anything."""
        if self._totals == self._reported:
            return
        elapsed = time.monotonic() - self._reported_at
        counted = self._totals["counted"] - self._reported["counted"]
        log.info(
            "signals: %d records, %d events counted (%.0f/s), %d seen again, %d dead-lettered",
            self._totals["records"],
            self._totals["counted"],
            counted / elapsed,
            self._totals["not_counted"],
            self._totals["dead_letters"],
        )
        self._reported = dict(self._totals)
        self._reported_at = time.monotonic()


def run_worker(settings: Settings) -> None:
    """Run the worker until SIGINT/SIGTERM."""
    metrics.serve_metrics(settings.metrics_port)
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    # At WARNING and above Faust's progress spinner sets the root logger to DEBUG, so
    # every library debug call builds a record (3% of a profile of the worker at one
    # event per record). A service's logs need no spinner.
    worker.spinner = None
    worker.execute_from_commandline()

"""Rebuild the offer tables from ``proffer.offers``: ``proffer-stream sink --replay``.

The invariant: ``offers``, ``offer_events`` and ``decisions`` are a pure, idempotent and
version-ordered projection of ``proffer.offers`` (kept for ever for this reason), so
dropping them and replaying the topic from its first offset rebuilds the same rows.

The replay truncates the three tables, then reads the topic's end offsets (trustworthy
ones, see :func:`~proffer_stream.kafka.lag.fetched_log_ends`) and writes every record
before them with the sink's own :class:`~proffer_stream.sink.projections.OffersProjection`,
a batch per transaction. It is safe beside a running sink: both write each event and
decision once and never move an offer back to an older version, so whichever writes a
record first, the rows end the same. Records after the end offsets are the running
sink's. The replay reads without a consumer group and commits no offsets. A record that
does not parse (or that the database refuses) is skipped and counted: the running sink
has dead-lettered it already.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from proffer_stream.core.errors import BadRecord, ProfferError
from proffer_stream.core.retry import retry_transient
from proffer_stream.core.settings import Settings
from proffer_stream.db.migrations import require_current
from proffer_stream.db.pool import TRANSIENT_ERRORS, connect_pool
from proffer_stream.ingest.records import read_message
from proffer_stream.kafka.lag import fetched_log_ends, topic_partitions
from proffer_stream.kafka.topics import topics_for
from proffer_stream.offers.models import OfferEvent
from proffer_stream.sink.projections import DATA_ERRORS, OffersProjection, Record

log = logging.getLogger(__name__)

#: The tables the replay drops and rebuilds: the projection of ``proffer.offers``.
TABLES = ("offers", "offer_events", "decisions")


class ReplayError(ProfferError):
    """The replay cannot start (no such topic), or stalled short of its end offsets."""


@dataclass(frozen=True)
class ReplaySummary:
    """What a replay did."""

    topic: str
    records_read: int
    rows_written: int
    skipped: int
    seconds: float

    def line(self) -> str:
        """The one-line summary the command prints."""
        return (
            f"replayed {self.topic}: {self.records_read} records read,"
            f" {self.rows_written} rows written, {self.skipped} skipped,"
            f" {self.seconds:.1f}s"
        )


async def replay_offers(
    settings: Settings,
    *,
    report: Callable[[str], None] | None = None,
    report_every: float = 5.0,
    stall_timeout: float = 60.0,
) -> ReplaySummary:
    """Truncate the offer tables and rebuild them from ``proffer.offers``.

    Reads from the topic's first offset up to the end offsets taken right after the
    truncate committed. ``report`` gets a progress line every ``report_every`` seconds
    (default: the log). Raises :class:`ReplayError` when the topic does not exist
    (before truncating anything), or when no partition moves for ``stall_timeout``
    seconds short of its end.
    """
    say = report or log.info
    topic = topics_for(settings).offers.name
    projection = OffersProjection(topic)
    started = time.perf_counter()
    pool = await connect_pool(settings.database_url, max_size=2)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
    )
    try:
        await require_current(pool)
        await consumer.start()
        partitions = await topic_partitions(consumer, [topic])
        if not partitions:
            raise ReplayError(f"topic {topic} does not exist: nothing truncated")

        await pool.execute(f"TRUNCATE {', '.join(TABLES)}")  # commits on its own
        say(f"replay: truncated {', '.join(TABLES)}; reading {topic} from its first offset")
        ends = await fetched_log_ends(
            settings.bootstrap_servers, await consumer.end_offsets(partitions)
        )
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        firsts = await consumer.beginning_offsets(partitions)
        total = sum(max(ends[tp] - firsts[tp], 0) for tp in partitions)

        read = rows = skipped = 0
        remaining = set(partitions)
        remaining -= await _finished(consumer, remaining, ends)
        last_report = moved_at = time.monotonic()
        while remaining:
            fetched = await consumer.getmany(
                *remaining, timeout_ms=500, max_records=settings.sink_batch_size
            )
            records = [r for tp, batch in fetched.items() for r in batch if r.offset < ends[tp]]
            if records:
                read += len(records)
                written, failed = await _write(pool, projection, records)
                rows += written
                skipped += failed
            done = await _finished(consumer, remaining, ends)
            remaining -= done
            now = time.monotonic()
            if records or done:
                moved_at = now
            elif now - moved_at > stall_timeout:
                behind = sorted(remaining, key=lambda tp: tp.partition)
                positions = [await consumer.position(tp) for tp in behind]
                raise ReplayError(
                    f"no records from {topic} for {stall_timeout:.0f}s short of its end ("
                    + ", ".join(
                        f"partition {tp.partition} at {at} of {ends[tp]}"
                        for tp, at in zip(behind, positions, strict=True)
                    )
                    + "); the tables are partly rebuilt: run the replay again"
                )
            if remaining and now - last_report >= report_every:
                last_report = now
                say(
                    f"replay: {read}/{total} records read, {rows} rows written,"
                    f" {skipped} skipped, {time.perf_counter() - started:.1f}s"
                )
    finally:
        await consumer.stop()
        await pool.close()
    return ReplaySummary(topic, read, rows, skipped, time.perf_counter() - started)


async def _finished(
    consumer: AIOKafkaConsumer, partitions: set[TopicPartition], ends: dict[TopicPartition, int]
) -> set[TopicPartition]:
    """The partitions whose position reached their end offset; paused, so none is fetched."""
    done = {tp for tp in partitions if await consumer.position(tp) >= ends[tp]}
    if done:
        consumer.pause(*done)
    return done


async def _write(
    pool: asyncpg.Pool, projection: OffersProjection, records: Sequence[Record]
) -> tuple[int, int]:
    """Write a batch in one transaction: (rows written, records skipped).

    When the batch fails on bad data, the records that do not parse are skipped and the
    rest written again; should that fail too, record by record, as the sink does.
    """
    try:
        return await _write_transaction(pool, projection, records), 0
    except DATA_ERRORS as exc:
        log.warning("a batch of %d records failed (%r); skipping the bad ones", len(records), exc)
    good = [r for r in records if _parses(r)]
    skipped = len(records) - len(good)
    if not good:
        return 0, skipped
    try:
        return await _write_transaction(pool, projection, good), skipped
    except DATA_ERRORS:
        pass
    rows = 0
    for record in good:
        try:
            rows += await _write_transaction(pool, projection, [record])
        except DATA_ERRORS as exc:
            log.warning("skipped %s[%d]@%d: %r", record.topic, record.partition, record.offset, exc)
            skipped += 1
    return rows, skipped


def _parses(record: Record) -> bool:
    try:
        read_message(OfferEvent, record.value)
    except BadRecord as exc:
        log.warning("skipped %s[%d]@%d: %s", record.topic, record.partition, record.offset, exc)
        return False
    return True


async def _write_transaction(
    pool: asyncpg.Pool, projection: OffersProjection, records: Sequence[Record]
) -> int:
    events = projection.read(records)

    async def transaction() -> int:
        async with pool.acquire() as conn, conn.transaction():
            return await projection.write(conn, events)

    return await retry_transient(transaction, transient=TRANSIENT_ERRORS, what="PostgreSQL")


def run_replay(settings: Settings) -> int:
    """Run :func:`replay_offers`, printing its progress and summary; the exit status."""

    def say(line: str) -> None:
        print(line, flush=True)

    try:
        summary = asyncio.run(replay_offers(settings, report=say))
    except ReplayError as exc:
        print(f"proffer-stream: replay failed: {exc}", file=sys.stderr)
        return 1
    say(summary.line())
    return 0

"""Rebuild the tables projected from topics kept for ever: ``proffer-stream sink --replay``.

The invariant: ``offers``, ``offer_events`` and ``decisions`` are a pure, idempotent and
version-ordered projection of ``proffer.offers`` (kept for ever for this reason), so
replaying the topic from its first offset rebuilds the same rows; so are the catalog's
tables, of ``proffer.catalog`` (compacted: each definition's latest version) and
``proffer.catalog-events`` (kept for ever; counts ordered by each offer's ``seq``). Each
:class:`Rebuild` (the offer tables, then the catalog's) is replayed as follows, told here
of the offer tables. A topic can hold less than the tables: the embedded broker keeps
topics in memory, so after it restarts ``proffer.offers`` holds only what came since (a
replay that truncated first once took ``offers`` from 1,523 rows to 2). So the replay
never drops a row it has not rebuilt:

1. **Rebuild beside the live tables.** Staging tables, created ``LIKE`` the live ones in
   the schema :data:`STAGING_SCHEMA` (unlogged: scratch), are filled by the sink's own
   projections (:class:`~proffer_stream.sink.projections.OffersProjection`, ...) through
   connections whose ``search_path`` is that schema only, so the very SQL of
   :func:`~proffer_stream.db.offers.apply_offer_events` writes there and cannot reach a
   live table. It reads the topic from its first offset up to its end offsets (trustworthy
   ones, see :func:`~proffer_stream.kafka.lag.fetched_log_ends`), then once more up to the
   ends of then, a batch per transaction. The live tables stay as they are and the API
   reads them meanwhile.
2. **Swap, in one transaction with the live tables locked** ``EXCLUSIVE`` (the running
   sink's writes wait, reads go on). A running sink wrote the live tables meanwhile, from
   records the rebuild may not have read yet; a record the sink has written is on the log,
   so it is below the end offsets read *after* the lock is taken. The replay reads the
   topic up to those ends into the staging tables (the tail: what came during the
   rebuild), so that they hold everything the sink could have written. Then the coverage
   check: every offer the live tables hold is in the rebuilt ones at a version as high or
   higher (a catalog offer's counts, a member's standing: at a ``seq`` as high or
   higher), and every offer event and decision is there by id. Only then are the live
   rows replaced by the rebuilt ones (``DELETE`` and ``INSERT ... SELECT``: readers see
   the old rows until the commit, then the new), and the lock goes with the commit; the
   sink's waiting writes then land on the rebuilt rows, idempotently and version-ordered,
   as they would have on the old ones. Records after the ends are the sink's.
3. **Or refuse**, when the rebuilt tables lack live rows: the topic lost records (or was
   recreated). Nothing changes; :class:`ReplayRefused` says how many rows of each table
   the topic lacks and what to do. ``force=True`` (``--force``) swaps anyway: the tables
   then hold exactly what the topic does, and the summary says what was dropped.

The locks are taken in the order the sink writes (``offer_events``, ``decisions``,
``offers``; the catalog's definitions, then the tables of its events: the sink writes its
topics in the order of :func:`~proffer_stream.sink.consumer.projections_for`) so that a
sink transaction never waits for the replay while holding what the replay waits for; a
deadlock (another writer) retries the swap, whose tail read and writes are idempotent.
One replay runs at a time (an advisory lock). The replay reads without a consumer group
and commits no offsets. A record that does not parse (or that the database refuses) is
skipped and counted: the running sink has dead-lettered it already. The staging schema
is dropped when the replay ends, however it ends.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from proffer_stream.core.errors import BadRecord, ProfferError
from proffer_stream.core.retry import retry_transient
from proffer_stream.core.settings import Settings
from proffer_stream.db.migrations import require_current
from proffer_stream.db.pool import TRANSIENT_ERRORS, connect_pool
from proffer_stream.kafka.lag import fetched_log_ends, topic_partitions
from proffer_stream.kafka.topics import topics_for
from proffer_stream.sink.projections import (
    DATA_ERRORS,
    CatalogDefinitionsProjection,
    CatalogEventsProjection,
    DecisionsProjection,
    OffersProjection,
    Projection,
    Record,
)

log = logging.getLogger(__name__)

#: The tables of ``proffer.offers`` with their keys, in the order the projection writes
#: them, which is the order the swap locks them.
OFFER_TABLES: dict[str, tuple[str, ...]] = {
    "offer_events": ("tenant_id", "event_id"),
    "decisions": ("tenant_id", "request_id"),
    "offers": ("tenant_id", "id"),
}
#: The tables of ``proffer.catalog`` and ``proffer.catalog-events``, likewise.
CATALOG_TABLES: dict[str, tuple[str, ...]] = {
    "catalog_offers": ("tenant_id", "id"),
    "catalog_collections": ("tenant_id", "id"),
    "catalog_integrations": ("tenant_id", "id"),
    "catalog_activity": ("tenant_id", "event_id"),
    "catalog_counts": ("tenant_id", "offer_id"),
    "catalog_members": ("tenant_id", "offer_id", "external_customer_id"),
}
#: The tables of ``proffer.decisions``, likewise.
DECISION_TABLES: dict[str, tuple[str, ...]] = {
    "decisions_made": ("tenant_id", "decision_id"),
    "decision_reactions": ("tenant_id", "reaction_id"),
    "decision_fulfillments": ("tenant_id", "fulfillment_id"),
}
#: Where the rebuilt tables are made, under the live tables' names.
STAGING_SCHEMA = "proffer_replay"
#: The advisory lock that lets one replay run at a time.
REPLAY_LOCK = 0x70726F66_66657201  # "proffer" + 1
#: The longest the swap waits for the running sink's transaction to let go of a table.
LOCK_TIMEOUT = "30s"


class ReplayError(ProfferError):
    """The replay cannot start (no such topic), stalled short of its end offsets, or
    refused to swap; the live tables are as they were."""


@dataclass(frozen=True)
class Rebuild:
    """What one replay rebuilds: its topics, each with the sink's projection, in the order
    the sink writes them; their tables with their keys, in the order they are written
    (the swap locks them in this order); and of the tables that keep the newest of each
    key, the column a rebuilt row must hold as high as the live one (``newer``)."""

    projections: dict[str, Projection[Any]]
    tables: dict[str, tuple[str, ...]]
    newer: dict[str, str]

    @property
    def topic(self) -> str:
        """The topics' names, for messages."""
        return " and ".join(self.projections)


def offer_tables(settings: Settings) -> Rebuild:
    """``offers``, ``offer_events`` and ``decisions`` from ``proffer.offers``."""
    topic = topics_for(settings).offers.name
    return Rebuild({topic: OffersProjection(topic)}, OFFER_TABLES, {"offers": "version"})


def catalog_tables(settings: Settings) -> Rebuild:
    """The catalog's tables from ``proffer.catalog`` and ``proffer.catalog-events``."""
    topics = topics_for(settings)
    definitions, events = topics.catalog.name, topics.catalog_events.name
    return Rebuild(
        {
            definitions: CatalogDefinitionsProjection(definitions),
            events: CatalogEventsProjection(events),
        },
        CATALOG_TABLES,
        {
            "catalog_offers": "version",
            "catalog_collections": "version",
            "catalog_integrations": "version",
            "catalog_counts": "seq",
            "catalog_members": "seq",
        },
    )


def decision_tables(settings: Settings) -> Rebuild:
    """The decisions, their reactions and fulfilments from ``proffer.decisions``."""
    topic = topics_for(settings).decisions.name
    return Rebuild({topic: DecisionsProjection(topic)}, DECISION_TABLES, {})


class ReplayRefused(ReplayError):
    """The topic holds less than the tables: swapping would lose rows."""

    def __init__(self, topic: str, missing: Mapping[str, int], before: Mapping[str, int]):
        self.missing = dict(missing)
        self.before = dict(before)
        lacks = ", ".join(
            f"{n} of the {before[table]} {_noun(table)}" for table, n in missing.items() if n
        )
        verb = "lack" if " and " in topic else "lacks"
        super().__init__(
            f"{topic} {verb} rows the tables hold ({lacks}): the topic lost records (an"
            " embedded broker keeps topics in memory, so a restart of `proffer-stream up`"
            " or a crash of its broker leaves only what came since), or it is another"
            " topic than the tables were built from. Nothing was changed: keep the"
            " tables, which are the only copy of those rows. To replace them with what"
            " the topic holds and lose those rows, run `proffer-stream sink --replay"
            " --force`."
        )


def _noun(table: str) -> str:
    return {
        "offers": "offers (or their latest versions)",
        "offer_events": "offer events",
        "decisions": "decisions",
        "catalog_offers": "catalog offers (or their latest versions)",
        "catalog_collections": "collections (or their latest versions)",
        "catalog_integrations": "integrations (or their latest versions)",
        "catalog_activity": "catalog events",
        "catalog_counts": "catalog offers' counts (or their latest)",
        "catalog_members": "members' standings (or their latest)",
    }[table]


@dataclass(frozen=True)
class ReplaySummary:
    """What a replay did: records read, rows written to the rebuilt tables, and each
    live table's rows before and after the swap (``lost``: rows the topic lacked, which
    a forced replay dropped)."""

    topic: str
    records_read: int
    rows_written: int
    skipped: int
    seconds: float
    before: dict[str, int] = field(default_factory=dict)
    after: dict[str, int] = field(default_factory=dict)
    lost: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        """The one-line summary the command prints."""
        tables = ", ".join(
            f"{table} {n} -> {self.after.get(table, 0)}" for table, n in self.before.items()
        )
        dropped = ""
        if any(self.lost.values()):
            dropped = "; forced, dropped what the topic lacked: " + ", ".join(
                f"{n} {table}" for table, n in self.lost.items() if n
            )
        return (
            f"replayed {self.topic}: {self.records_read} records read,"
            f" {self.rows_written} rows written, {self.skipped} skipped,"
            f" {self.seconds:.1f}s; rows {tables}{dropped}"
        )


@dataclass
class _Reading:
    """The replay's consumer and what it has read so far."""

    consumer: AIOKafkaConsumer
    staging: asyncpg.Pool
    rebuild: Rebuild
    batch_size: int
    say: Callable[[str], None]
    report_every: float
    started: float
    read: int = 0
    rows: int = 0
    skipped: int = 0

    def progress(self) -> str:
        return (
            f"replay: {self.read} records read, {self.rows} rows written,"
            f" {self.skipped} skipped, {time.perf_counter() - self.started:.1f}s"
        )


async def replay_offers(
    settings: Settings,
    *,
    force: bool = False,
    report: Callable[[str], None] | None = None,
    report_every: float = 5.0,
    stall_timeout: float = 60.0,
) -> ReplaySummary:
    """Rebuild the offer tables from ``proffer.offers`` (see :func:`replay`)."""
    return await replay(
        settings,
        offer_tables(settings),
        force=force,
        report=report,
        report_every=report_every,
        stall_timeout=stall_timeout,
    )


async def replay_catalog(
    settings: Settings,
    *,
    force: bool = False,
    report: Callable[[str], None] | None = None,
    report_every: float = 5.0,
    stall_timeout: float = 60.0,
) -> ReplaySummary:
    """Rebuild the catalog's tables from its two topics (see :func:`replay`)."""
    return await replay(
        settings,
        catalog_tables(settings),
        force=force,
        report=report,
        report_every=report_every,
        stall_timeout=stall_timeout,
    )


async def replay(
    settings: Settings,
    rebuild: Rebuild,
    *,
    force: bool = False,
    report: Callable[[str], None] | None = None,
    report_every: float = 5.0,
    stall_timeout: float = 60.0,
) -> ReplaySummary:
    """Rebuild ``rebuild``'s tables from its topics beside them, and swap them in when
    the rebuilt ones cover them (see the module's docstring).

    ``report`` gets a progress line every ``report_every`` seconds and a line per step
    (default: the log). Raises :class:`ReplayRefused` when the topic lacks rows the
    tables hold (unless ``force``), and :class:`ReplayError` when the topic does not
    exist, another replay runs, or no partition moves for ``stall_timeout`` seconds
    short of its end; the live tables are then as they were.
    """
    say = report or log.info
    topic = rebuild.topic
    started = time.perf_counter()
    pool = await connect_pool(settings.database_url, max_size=2)
    staging: asyncpg.Pool | None = None
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
        partitions = await topic_partitions(consumer, list(rebuild.projections))
        found = {tp.topic for tp in partitions}
        absent = [name for name in rebuild.projections if name not in found]
        if absent:
            raise ReplayError(f"topic {' and '.join(absent)} does not exist: nothing changed")
        async with pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", REPLAY_LOCK):
                raise ReplayError("another replay is running: nothing changed")
            try:
                await _create_staging(conn, rebuild)
                staging = await connect_pool(
                    settings.database_url,
                    max_size=2,
                    server_settings={"search_path": STAGING_SCHEMA},
                )
                reading = _Reading(
                    consumer,
                    staging,
                    rebuild,
                    settings.sink_batch_size,
                    say,
                    report_every,
                    started,
                )
                before = await _counts(conn, rebuild)
                say(
                    f"replay: rebuilding {', '.join(rebuild.tables)} from {topic} beside the live"
                    f" tables ({_rows(before)})"
                )
                consumer.assign(partitions)
                await consumer.seek_to_beginning(*partitions)
                ends = await _ends(settings, consumer, partitions)
                await _read_up_to(reading, ends, stall_timeout)
                ends = await _ends(settings, consumer, partitions, after=ends)
                await _read_up_to(reading, ends, stall_timeout)  # what came meanwhile
                after, lost = await retry_transient(
                    lambda: _swap(conn, settings, reading, ends, before, force, stall_timeout),
                    transient=(asyncpg.DeadlockDetectedError,),
                    what="the swap of the rebuilt tables",
                    attempts=5,
                )
            finally:
                await _drop_staging(conn)
                await conn.execute("SELECT pg_advisory_unlock($1)", REPLAY_LOCK)
    finally:
        await consumer.stop()
        if staging is not None:
            await staging.close()
        await pool.close()
    return ReplaySummary(
        topic,
        reading.read,
        reading.rows,
        reading.skipped,
        time.perf_counter() - started,
        before,
        after,
        lost,
    )


async def _swap(
    conn: asyncpg.Connection,
    settings: Settings,
    reading: _Reading,
    ends: dict[TopicPartition, int],
    before: dict[str, int],
    force: bool,
    stall_timeout: float,
) -> tuple[dict[str, int], dict[str, int]]:
    """Lock the live tables, read the topic's tail, check coverage, replace the rows.

    Returns the rows after and the rows dropped (forced); raises :class:`ReplayRefused`.
    """
    consumer = reading.consumer
    rebuild = reading.rebuild
    async with conn.transaction():
        await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        try:
            await conn.execute(f"LOCK TABLE {', '.join(rebuild.tables)} IN EXCLUSIVE MODE")
        except asyncpg.LockNotAvailableError as exc:
            raise ReplayError(
                f"the tables of {rebuild.topic} stayed locked for {LOCK_TIMEOUT}: nothing changed"
            ) from exc
        tail = await _ends(settings, consumer, list(ends), after=ends)
        await _read_up_to(reading, tail, stall_timeout)
        ends.update(tail)
        missing = await _missing(conn, rebuild)
        if any(missing.values()) and not force:
            raise ReplayRefused(rebuild.topic, missing, before)
        for table in rebuild.tables:
            await conn.execute(f"DELETE FROM {table}")
            await conn.execute(f"INSERT INTO {table} SELECT * FROM {STAGING_SCHEMA}.{table}")
        after = await _counts(conn, rebuild)
    reading.say(f"replay: swapped in the rebuilt tables ({_rows(before)} -> {_rows(after)})")
    return after, missing


async def _create_staging(conn: asyncpg.Connection, rebuild: Rebuild) -> None:
    """Empty tables like the live ones, keyed like them, in :data:`STAGING_SCHEMA`
    (dropped first: a replay that was killed leaves it behind)."""
    await _drop_staging(conn)
    await conn.execute(f"CREATE SCHEMA {STAGING_SCHEMA}")
    for table, key in rebuild.tables.items():
        await conn.execute(
            f"CREATE UNLOGGED TABLE {STAGING_SCHEMA}.{table}"
            f" (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS,"
            f" PRIMARY KEY ({', '.join(key)}))"
        )


async def _drop_staging(conn: asyncpg.Connection) -> None:
    await conn.execute(f"DROP SCHEMA IF EXISTS {STAGING_SCHEMA} CASCADE")


async def _counts(conn: asyncpg.Connection, rebuild: Rebuild) -> dict[str, int]:
    return {table: await conn.fetchval(f"SELECT count(*) FROM {table}") for table in rebuild.tables}


async def _missing(conn: asyncpg.Connection, rebuild: Rebuild) -> dict[str, int]:
    """Per live table, its rows the rebuilt one lacks (an offer: or has at a lower version)."""
    missing = {}
    for table, key in rebuild.tables.items():
        match = " AND ".join(f"r.{column} = l.{column}" for column in key)
        if table in rebuild.newer:
            match += f" AND r.{rebuild.newer[table]} >= l.{rebuild.newer[table]}"
        missing[table] = await conn.fetchval(
            f"SELECT count(*) FROM {table} l WHERE NOT EXISTS"
            f" (SELECT 1 FROM {STAGING_SCHEMA}.{table} r WHERE {match})"
        )
    return missing


def _rows(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{table} {n}" for table, n in counts.items())


async def _ends(
    settings: Settings,
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    *,
    after: Mapping[TopicPartition, int] | None = None,
) -> dict[TopicPartition, int]:
    """The partitions' end offsets now; a partition whose end went back (``after``: the
    ends read before) means the topic was recreated under the replay."""
    ends = await fetched_log_ends(
        settings.bootstrap_servers, await consumer.end_offsets(partitions)
    )
    for tp in partitions:
        if after is not None and ends[tp] < after[tp]:
            raise ReplayError(
                f"{tp.topic} went back during the replay (partition {tp.partition} ended at"
                f" {after[tp]}, now at {ends[tp]}): the topic was recreated; nothing changed"
            )
    return ends


async def _read_up_to(
    reading: _Reading, ends: Mapping[TopicPartition, int], stall_timeout: float
) -> None:
    """Write every record before ``ends`` from the consumer's positions on."""
    consumer = reading.consumer
    remaining = set(ends)
    consumer.resume(*remaining)
    remaining -= await _finished(consumer, remaining, ends)
    last_report = moved_at = time.monotonic()
    while remaining:
        fetched = await consumer.getmany(*remaining, timeout_ms=500, max_records=reading.batch_size)
        records = [r for tp, batch in fetched.items() for r in batch if r.offset < ends[tp]]
        if records:
            reading.read += len(records)
            written, failed = await _write(reading.staging, reading.rebuild, records)
            reading.rows += written
            reading.skipped += failed
        done = await _finished(consumer, remaining, ends)
        remaining -= done
        now = time.monotonic()
        if records or done:
            moved_at = now
        elif now - moved_at > stall_timeout:
            behind = sorted(remaining, key=lambda tp: tp.partition)
            positions = [await consumer.position(tp) for tp in behind]
            raise ReplayError(
                f"no records from {reading.rebuild.topic} for {stall_timeout:.0f}s"
                " short of its end ("
                + ", ".join(
                    f"partition {tp.partition} at {at} of {ends[tp]}"
                    for tp, at in zip(behind, positions, strict=True)
                )
                + "); nothing changed: run the replay again"
            )
        if remaining and now - last_report >= reading.report_every:
            last_report = now
            reading.say(reading.progress())


async def _finished(
    consumer: AIOKafkaConsumer, partitions: set[TopicPartition], ends: Mapping[TopicPartition, int]
) -> set[TopicPartition]:
    """The partitions whose position reached their end offset; paused, so none is fetched
    (a record fetched past the end is dropped, and read again from the position)."""
    done = {tp for tp in partitions if await consumer.position(tp) >= ends[tp]}
    for tp in done:
        consumer.seek(tp, ends[tp])
    if done:
        consumer.pause(*done)
    return done


async def _write(
    pool: asyncpg.Pool, rebuild: Rebuild, records: Sequence[Record]
) -> tuple[int, int]:
    """Write a batch in one transaction: (rows written, records skipped).

    When the batch fails on bad data, the records that do not parse are skipped and the
    rest written again; should that fail too, record by record, as the sink does.
    """
    try:
        return await _write_transaction(pool, rebuild, records), 0
    except DATA_ERRORS as exc:
        log.warning("a batch of %d records failed (%r); skipping the bad ones", len(records), exc)
    good = [r for r in records if _parses(rebuild, r)]
    skipped = len(records) - len(good)
    if not good:
        return 0, skipped
    try:
        return await _write_transaction(pool, rebuild, good), skipped
    except DATA_ERRORS:
        pass
    rows = 0
    for record in good:
        try:
            rows += await _write_transaction(pool, rebuild, [record])
        except DATA_ERRORS as exc:
            log.warning("skipped %s[%d]@%d: %r", record.topic, record.partition, record.offset, exc)
            skipped += 1
    return rows, skipped


def _parses(rebuild: Rebuild, record: Record) -> bool:
    try:
        rebuild.projections[record.topic].read([record])
    except BadRecord as exc:
        log.warning("skipped %s[%d]@%d: %s", record.topic, record.partition, record.offset, exc)
        return False
    return True


async def _write_transaction(
    pool: asyncpg.Pool, rebuild: Rebuild, records: Sequence[Record]
) -> int:
    """Write the records in one transaction, each topic's with its projection, in the
    order the sink writes them."""
    by_topic: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        by_topic[record.topic].append(record)
    items = [
        (projection, projection.read(by_topic[topic]))
        for topic, projection in rebuild.projections.items()
        if topic in by_topic
    ]

    async def transaction() -> int:
        async with pool.acquire() as conn, conn.transaction():
            return sum([await projection.write(conn, read) for projection, read in items])

    return await retry_transient(transaction, transient=TRANSIENT_ERRORS, what="PostgreSQL")


def run_replay(settings: Settings, *, force: bool = False) -> int:
    """Replay the offer tables, then the catalog's, then the decisions', printing the
    progress and a summary of each; the exit status (1 when any failed or refused,
    having changed nothing of its tables)."""

    def say(line: str) -> None:
        print(line, flush=True)

    async def replay_each() -> int:
        status = 0
        for rebuild in (
            offer_tables(settings),
            catalog_tables(settings),
            decision_tables(settings),
        ):
            try:
                summary = await replay(settings, rebuild, force=force, report=say)
            except ReplayError as exc:
                print(f"proffer-stream: replay refused: {exc}", file=sys.stderr)
                status = 1
                continue
            say(summary.line())
        return status

    return asyncio.run(replay_each())

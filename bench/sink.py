"""Sink benchmark: rows/s of the events and customers projections, old vs new, interleaved.

Times what the sink does with fetched batches, without Kafka. "new" runs the package's
projections as ``Sink`` does: each batch read (parsed, rows built) in slices while the
batch before is written in its transaction. "old" is the sink before, kept in this
file: each batch parsed and written inside its transaction, one after another, an
``EventRow`` per event. The records are built in memory as the producers write them:

  events-1    proffer.events records of 1 event each, without ids or times, as a
              direct producer writes them (bench/ingest.py phase b1)
  events-100  proffer.events records of 100 events each, ids and times set by the
              gateway (phases a and b2)
  customers   signals changelog records (CustomerSignals JSON), a profile per record,
              some customers repeated within a batch (the last one wins)
  replay      the events-100 batches written a second time: every row a conflict

Each phase runs ``--rounds`` times, alternating "old" and "new" so the shared
machine's noise falls on both alike. Every round writes fresh event ids and customers,
so rows are real inserts (except in replay). For each it prints rows/s over the whole
write, the bench process's CPU per row (the sink's side: parsing, rows, encoding), and
the rest of the wall time per row (PostgreSQL and the round trips, less what overlaps).

PostgreSQL: PROFFER_DATABASE_URL if set (a database ``bench_sink_<pid>`` is created on
that server and dropped at the end), else an embedded one in a temporary directory.

  .venv/bin/python bench/sink.py                      # 100,000 rows per phase and round
  .venv/bin/python bench/sink.py --rows 30000 --rounds 2 --phases events-1
  PROFFER_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/sink.py

Figures, not pass/fail: the exit code is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from aiokafka import ConsumerRecord
from ingest import random_event  # events as bench/ingest.py sends them

from proffer_stream.core.errors import BadRecord
from proffer_stream.core.identity import customer_id, partition_key
from proffer_stream.core.settings import Settings
from proffer_stream.db import keys
from proffer_stream.db.events import insert_events, staged_event
from proffer_stream.db.migrations import migrate
from proffer_stream.db.pool import connect_pool
from proffer_stream.ingest.models import NormalizedEvent
from proffer_stream.ingest.records import RecordLimits, read_event_record
from proffer_stream.local.embedded import EmbeddedPostgres
from proffer_stream.signals.models import CustomerSignals
from proffer_stream.sink.consumer import read_in_slices
from proffer_stream.sink.projections import (
    CustomersProjection,
    EventsProjection,
    Projection,
    Record,
)

TENANT = "local"
LIMITS = RecordLimits(max_bytes=1_048_576, max_events=1000)
PHASES = ("events-1", "events-100", "customers", "replay")


class OldProjection(Protocol):
    """A projection of the sink before: reads and writes in ``write``."""

    table: str

    async def write(self, conn: asyncpg.Connection, records: Sequence[Record]) -> int: ...


def event_records(
    prefix: str, rows: int, per_record: int, customers: int, topic: str
) -> list[Record]:
    """``proffer.events`` records as the gateway writes them (ids, occurred_at, received_at)."""
    received = datetime.now(UTC)
    records = []
    for index in range(rows // per_record):
        external = f"{prefix}c{index % customers}"
        events = []
        for n in range(per_record):
            event = random_event(n)
            event["id"] = f"{prefix}{index}-{n}"
            event["occurred_at"] = (received - timedelta(seconds=n)).isoformat()
            events.append(event)
        value = {
            "schema_version": 1,
            "tenant_id": TENANT,
            "customer": {"id": external, "email": None, "name": None, "metadata": None},
            "events": events,
            "received_at": received.isoformat(),
        }
        records.append(_record(topic, index, partition_key(TENANT, external), value))
    return records


def direct_records(prefix: str, rows: int, customers: int, topic: str) -> list[Record]:
    """``proffer.events`` records of one event as bench/ingest.py's phase b1 produces
    them: no event ids or times, so the sink derives them from the record."""
    received = datetime.now(UTC).isoformat()
    records = []
    for index in range(rows):
        external = f"{prefix}c{index % customers}"
        value = {
            "tenant_id": TENANT,
            "customer": {"id": external},
            "events": [random_event(0)],
            "received_at": received,
        }
        records.append(_record(topic, index, partition_key(TENANT, external), value))
    return records


def changelog_records(prefix: str, rows: int, topic: str) -> list[Record]:
    """Signals changelog records: profiles a few days old with a week of hourly counts.

    One customer in ten appears twice, the later one with more events.
    """
    now = datetime.now(UTC)
    hour = int(now.timestamp()) // 3600
    records = []
    for index in range(rows):
        external = f"{prefix}c{index - 1 if index % 10 == 9 else index}"
        snapshot = CustomerSignals(
            tenant_id=TENANT,
            customer_id=customer_id(TENANT, external),
            external_id=external,
            email=f"{external}@example.com",
            name=f"Customer {index}",
            metadata={"plan": "pro", "region": "eu"},
            event_count=120 + index % 7,
            counts_by_type={"page_view": 60, "click": 30, "purchase": 10, "feature_use": 20},
            first_seen_at=now - timedelta(days=3),
            last_seen_at=now,
            purchase_count=10,
            purchase_total=Decimal("812.40"),
            last_purchase_at=now - timedelta(hours=2),
            page_views={"/pricing": 30, "/docs": 20, "/": 10},
            features_used={"reports": 20},
            hourly_counts={h: {"page_view": 2, "click": 1} for h in range(hour - 40, hour)},
            source_offset=index,
            updated_at=now,
        )
        records.append(
            _record(topic, index, partition_key(TENANT, external), snapshot.model_dump(mode="json"))
        )
    return records


def _record(topic: str, offset: int, key: bytes, value: dict) -> Record:
    body = json.dumps(value).encode()
    return ConsumerRecord(
        topic=topic,
        partition=offset % 4,
        offset=offset,
        timestamp=int(time.time() * 1000),
        timestamp_type=0,
        key=key,
        value=body,
        checksum=None,
        serialized_key_size=len(key),
        serialized_value_size=len(body),
        headers=(),
    )


# --- The previous implementation, kept here only to compare against.


@dataclass(frozen=True)
class EventRow:
    """An event and whose it is, as the previous sink built it."""

    tenant_id: str
    customer_id: int
    event: NormalizedEvent


def _old_rows(record: Record) -> list[EventRow]:
    try:
        read = read_event_record(
            record.key,
            record.value,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp,
            limits=LIMITS,
        )
    except BadRecord:
        return []
    tenant, external = read.customer_key
    internal = customer_id(tenant, external)
    return [EventRow(tenant, internal, event) for event in read.events]


class OldEventsProjection:
    """The events projection before plain tuples: an ``EventRow`` per event, the
    customer's id hashed per record."""

    table = "events"

    def __init__(self, topic: str) -> None:
        self.topic = topic

    async def write(self, conn: asyncpg.Connection, records: Sequence[Record]) -> int:
        rows = [row for r in records for row in _old_rows(r)]
        return await insert_events(
            conn, [staged_event(row.tenant_id, row.customer_id, row.event) for row in rows]
        )


class OldCustomersProjection:
    """The customers projection before reading apart from writing (the same work)."""

    table = "customers"

    def __init__(self, topic: str) -> None:
        self.projection = CustomersProjection(topic)

    async def write(self, conn: asyncpg.Connection, records: Sequence[Record]) -> int:
        return await self.projection.write(conn, self.projection.read(records))


async def old_write_batches(
    pool: asyncpg.Pool, projection: OldProjection, records: Sequence[Record], batch: int
) -> int:
    """The sink before: each batch read and written in its transaction, one after another."""
    rows = 0
    for start in range(0, len(records), batch):
        async with pool.acquire() as conn, conn.transaction():
            rows += await projection.write(conn, records[start : start + batch])
    return rows


# --- Measuring.


async def write_batches(
    pool: asyncpg.Pool, projection: Projection[Any], records: Sequence[Record], batch: int
) -> int:
    """As the sink does: each batch read (in slices) while the one before is written."""
    rows = 0
    writing: asyncio.Task[int] | None = None

    async def write(items: list[Any]) -> int:
        async with pool.acquire() as conn, conn.transaction():
            return await projection.write(conn, items)

    for start in range(0, len(records), batch):
        items = await read_in_slices(projection, records[start : start + batch])
        if writing is not None:
            rows += await writing
        writing = asyncio.create_task(write(items))
    return rows + (await writing if writing is not None else 0)


async def timed(write: Awaitable[int]) -> tuple[int, float, float]:
    """Rows written, wall seconds and this process's CPU seconds of ``write``."""
    wall = time.perf_counter()
    cpu = time.process_time()
    rows = await write
    return rows, time.perf_counter() - wall, time.process_time() - cpu


def phase_records(
    phase: str, tag: str, args: argparse.Namespace, topic: str
) -> tuple[list[Record], int]:
    """The records of one phase and round, and the rows they hold."""
    if phase == "customers":
        records = changelog_records(tag, args.rows, topic)
        return records, len({r.key for r in records})
    if phase == "events-1":
        return direct_records(tag, args.rows, args.customers, topic), args.rows
    records = event_records(tag, args.rows, 100, args.customers, topic)
    return records, len(records) * 100


async def run(dsn: str, args: argparse.Namespace) -> None:
    pool = await connect_pool(dsn, max_size=2)
    try:
        await migrate(pool)
        await keys.create_key(pool, TENANT, "bench")  # events of unknown tenants are not stored
        old_projections: dict[str, Callable[[str], OldProjection]] = {
            "events": OldEventsProjection,
            "customers": OldCustomersProjection,
        }
        new_projections: dict[str, Callable[[str], Projection[Any]]] = {
            "events": lambda topic: EventsProjection(topic, LIMITS),
            "customers": CustomersProjection,
        }

        async def write(code: str, table: str, records: list[Record]) -> tuple[int, float, float]:
            if code == "old":
                before = old_projections[table](table)
                return await timed(old_write_batches(pool, before, records, args.batch))
            projection = new_projections[table](table)
            return await timed(write_batches(pool, projection, records, args.batch))

        results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
        print(
            f"{args.rows:,} rows per phase and round, batches of {args.batch:,} records,"
            f" {args.rounds} round(s), old and new interleaved"
        )
        print(
            f"{'phase':<11} {'round':>5} {'code':<4} {'rows':>8} {'rows/s':>9}"
            f" {'CPU µs/row':>10} {'rest µs/row':>11}"
        )
        for phase in args.phases:
            table = "customers" if phase == "customers" else "events"
            for round_ in range(args.rounds):
                order = ("old", "new") if round_ % 2 == 0 else ("new", "old")
                for code in order:
                    tag = f"{code}{round_}{phase}-"
                    source = "events-100" if phase == "replay" else phase
                    records, expected = phase_records(source, tag, args, table)
                    if phase == "replay":  # the same batches once more: all conflicts
                        await write(code, table, records)
                    rows, wall, cpu = await write(code, table, records)
                    if phase != "replay" and rows != expected:
                        raise RuntimeError(f"{code} {phase}: wrote {rows} rows, not {expected}")
                    rate = expected / wall
                    cpu_us = cpu / expected * 1e6
                    rest_us = max(wall - cpu, 0.0) / expected * 1e6
                    results.setdefault((phase, code), []).append((rate, cpu_us, rest_us))
                    print(
                        f"{phase:<11} {round_ + 1:>5} {code:<4} {rows:>8,} {rate:>9,.0f}"
                        f" {cpu_us:>10.1f} {rest_us:>11.1f}",
                        flush=True,
                    )
        print("\nmedians (rows/s; bench-process CPU µs/row; other wall µs/row):")
        for phase in args.phases:
            line = [f"  {phase:<11}"]
            for code in ("old", "new"):
                runs = results[(phase, code)]
                rate = statistics.median(r[0] for r in runs)
                cpu_us = statistics.median(r[1] for r in runs)
                rest_us = statistics.median(r[2] for r in runs)
                line.append(f"{code} {rate:>8,.0f} rows/s ({cpu_us:.1f} + {rest_us:.1f} µs)")
            old = statistics.median(r[0] for r in results[(phase, "old")])
            new = statistics.median(r[0] for r in results[(phase, "new")])
            line.append(f"x{new / old:.2f}")
            print("   ".join(line))
    finally:
        await pool.close()


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def create_database(server_dsn: str, name: str) -> None:
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def drop_database(server_dsn: str, name: str) -> None:
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, default=100_000, help="rows per phase and round (default 100,000)"
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=Settings().sink_batch_size,
        help="records per transaction, as the sink fetches them"
        " (default: the sink_batch_size setting, %(default)s)",
    )
    parser.add_argument(
        "--customers", type=int, default=1000, help="distinct customers of the event records"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds per phase, each old then new or new then old"
    )
    parser.add_argument(
        "--phases",
        nargs="+",
        choices=PHASES,
        default=list(PHASES),
        help="which phases to run (default: all)",
    )
    args = parser.parse_args()
    random.seed(7)
    server = os.environ.get("PROFFER_DATABASE_URL")
    if server:
        name = f"bench_sink_{os.getpid()}"
        asyncio.run(create_database(server, name))
        try:
            asyncio.run(run(with_database(server, name), args))
        finally:
            asyncio.run(drop_database(server, name))
        return
    with tempfile.TemporaryDirectory(prefix="bench-sink-") as workdir:
        postgres = EmbeddedPostgres(Path(workdir) / "postgres")
        dsn = postgres.start()
        try:
            asyncio.run(run(dsn, args))
        finally:
            postgres.stop()


if __name__ == "__main__":
    main()

"""Sink benchmark: rows/s of the events and customers projections, old vs new, interleaved.

Times what the sink does with one fetched batch, without Kafka: the projection's
``write`` (parse the records, build the rows, write them) in one transaction, exactly
as ``Sink._write_transaction`` calls it. The records are built in memory as the
gateway and the signals agent write them:

  events-1    proffer.events records of 1 event each (bench/ingest.py phase b1)
  events-100  proffer.events records of 100 events each, ids and times set by the
              gateway (phases a and b2)
  customers   signals changelog records (CustomerSignals JSON), a profile per record,
              some customers repeated within a batch (the last one wins)
  replay      the events-100 batches written a second time: every row a conflict

Each phase runs ``--rounds`` times, alternating the package's projections ("new") with
the previous per-column ``unnest`` statements kept in this file ("old"), so the shared
machine's noise falls on both alike. Every round writes fresh event ids and customers,
so rows are real inserts (except in replay). For each it prints rows/s over the whole
write, the bench process's CPU per row (the sink's side: parsing, rows, encoding), and
the rest of the wall time per row (mostly PostgreSQL and the round trips).

PostgreSQL: PROFFER_DATABASE_URL if set (a database ``bench_sink_<pid>`` is created on
that server and dropped at the end), else an embedded one in a temporary directory.

  .venv/bin/python bench/sink.py                      # 100,000 rows per phase and round
  .venv/bin/python bench/sink.py --rows 30000 --rounds 2 --phases events-100
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
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from aiokafka import ConsumerRecord
from ingest import random_event  # events as bench/ingest.py sends them
from pydantic_core import to_json

from proffer_stream.core.errors import BadRecord
from proffer_stream.core.identity import customer_id, partition_key
from proffer_stream.core.settings import Settings
from proffer_stream.db.events import EventRow
from proffer_stream.db.migrations import migrate
from proffer_stream.db.pool import connect_pool
from proffer_stream.ingest.records import read_event_record
from proffer_stream.local.embedded import EmbeddedPostgres
from proffer_stream.signals.models import CustomerSignals
from proffer_stream.sink.projections import (
    CustomersProjection,
    EventsProjection,
    Projection,
    Record,
)

TENANT = "local"
PHASES = ("events-1", "events-100", "customers", "replay")


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


async def old_insert_events(conn: asyncpg.Connection, rows: Sequence[EventRow]) -> int:
    """``insert_events`` before the staging table: one ``unnest`` of seven arrays."""
    if not rows:
        return 0
    status = await conn.execute(
        """
        INSERT INTO events (tenant_id, customer_id, id, type, data, occurred_at, received_at)
        SELECT t, c, i, ty, d::jsonb, o, r
        FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                    $6::timestamptz[], $7::timestamptz[]) AS u(t, c, i, ty, d, o, r)
        ON CONFLICT DO NOTHING
        """,
        [r.tenant_id for r in rows],
        [r.customer_id for r in rows],
        [r.event.id for r in rows],
        [r.event.type for r in rows],
        [to_json(r.event.data).decode() for r in rows],
        [r.event.occurred_at for r in rows],
        [r.event.received_at for r in rows],
    )
    return int(status.rsplit(" ", 1)[1])


def _old_rows(record: Record) -> list[EventRow]:
    try:
        read = read_event_record(
            record.key,
            record.value,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp,
        )
    except BadRecord:
        return []
    tenant, external = read.customer_key
    internal = customer_id(tenant, external)
    return [EventRow(tenant, internal, event) for event in read.events]


class OldEventsProjection:
    """The events projection before the staging table."""

    table = "events"

    def __init__(self, topic: str) -> None:
        self.topic = topic

    async def write(self, conn: asyncpg.Connection, records: Sequence[Record]) -> int:
        return await old_insert_events(conn, [row for r in records for row in _old_rows(r)])


# --- Measuring.


async def write_batches(
    pool: asyncpg.Pool, projection: Projection, records: Sequence[Record], batch: int
) -> tuple[int, float, float]:
    """Write ``records`` in batches of ``batch``, a transaction each: rows, wall s, CPU s."""
    rows = 0
    wall = time.perf_counter()
    cpu = time.process_time()
    for start in range(0, len(records), batch):
        async with pool.acquire() as conn, conn.transaction():
            rows += await projection.write(conn, records[start : start + batch])
    return rows, time.perf_counter() - wall, time.process_time() - cpu


def phase_records(
    phase: str, tag: str, args: argparse.Namespace, topic: str
) -> tuple[list[Record], int]:
    """The records of one phase and round, and the rows they hold."""
    if phase == "customers":
        records = changelog_records(tag, args.rows, topic)
        return records, len({r.key for r in records})
    per_record = 1 if phase == "events-1" else 100
    records = event_records(tag, args.rows, per_record, args.customers, topic)
    return records, len(records) * per_record


async def run(dsn: str, args: argparse.Namespace) -> None:
    pool = await connect_pool(dsn, max_size=2)
    try:
        await migrate(pool)
        variants: dict[str, dict[str, Callable[[str], Projection]]] = {
            # The customers write did not change: both sides run the package's.
            "old": {"events": OldEventsProjection, "customers": CustomersProjection},
            "new": {"events": EventsProjection, "customers": CustomersProjection},
        }
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
                        await write_batches(pool, variants[code][table](table), records, args.batch)
                    projection = variants[code][table](table)
                    rows, wall, cpu = await write_batches(pool, projection, records, args.batch)
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

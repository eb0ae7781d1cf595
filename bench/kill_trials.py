"""Repeated kill -9 / restart trials of the worker and the sink, on the embedded broker.

Each trial starts a fresh broker and database, produces one-event records without event
ids (only the offset watermark keeps their counts exact) at a steady rate, kills the
worker and the sink with SIGKILL mid-stream, restarts them, and compares events
produced, rows stored and events counted. Figures, not pass/fail: it prints each trial
and a summary; the exit code is the number of inexact trials.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer

from proffer_stream.core.identity import partition_key
from proffer_stream.core.settings import Settings
from proffer_stream.db import keys
from proffer_stream.kafka.topics import topics_for
from proffer_stream.local.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from proffer_stream.local.stack import prepare_database_and_topics
from proffer_stream.local.supervisor import Supervisor


async def produce(settings: Settings, total: int, per_second: int, customers: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=5)
    await producer.start()
    try:
        chunk = max(per_second // 10, 1)
        for start in range(0, total, chunk):
            for n in range(start, min(start + chunk, total)):
                customer = f"c{n % customers}"
                value = {
                    "tenant_id": "acme",
                    "customer": {"id": customer},
                    "events": [{"type": "purchase", "data": {"amount": 1}}],
                }
                await producer.send(
                    topics_for(settings).events.name,
                    key=partition_key("acme", customer),
                    value=json.dumps(value).encode(),
                )
            await asyncio.sleep(0.1)
        await producer.flush()
    finally:
        await producer.stop()


async def totals(pool: asyncpg.Pool) -> tuple[int, int]:
    row = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM events) AS stored,"
        " (SELECT coalesce(sum(event_count), 0) FROM customers) AS counted"
    )
    return int(row["stored"]), int(row["counted"])


async def trial(workdir: Path, args: argparse.Namespace) -> tuple[int, int, int]:
    broker = EmbeddedBroker(free_port(), workdir / "broker.log")
    postgres = EmbeddedPostgres(workdir / "postgres")
    settings = Settings(
        kafka_bootstrap_servers=broker.start(),
        database_url=postgres.start(),
        data_dir=workdir / "data",
        log_level="WARNING",
    )
    supervisor = Supervisor(workdir / "logs")
    env = {
        "PROFFER_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "PROFFER_DATABASE_URL": settings.database_url,
        "PROFFER_DATA_DIR": str(settings.data_dir),
        "PROFFER_LOG_LEVEL": "WARNING",
    }
    try:
        await prepare_database_and_topics(settings)
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
        await keys.create_key(pool, "acme", "bench")  # records of a keyless tenant are refused
        for name in ("worker", "sink"):
            supervisor.start(name, env)
        producing = asyncio.create_task(produce(settings, args.events, args.rate, args.customers))
        counted = 0
        while counted < args.events * args.kill_at:
            await asyncio.sleep(0.1)
            counted = (await totals(pool))[1]
        supervisor.kill("worker")
        supervisor.kill("sink")
        await asyncio.sleep(1)
        for name in ("worker", "sink"):
            supervisor.start(name, env)
        await producing
        deadline = time.monotonic() + 180
        found = await totals(pool)
        while found != (args.events, args.events) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            found = await totals(pool)
        await asyncio.sleep(3)  # nothing more trickles in
        stored, counted = await totals(pool)
        await pool.close()
        return args.events, stored, counted
    finally:
        supervisor.stop_all()
        broker.stop()
        postgres.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--events", type=int, default=5_000, help="events per trial")
    parser.add_argument("--rate", type=int, default=1_000, help="events/s produced")
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--kill-at", type=float, default=0.4, help="share counted at the kill")
    args = parser.parse_args()
    inexact = 0
    for number in range(1, args.trials + 1):
        with tempfile.TemporaryDirectory(prefix="proffer-kill-") as workdir:
            produced, stored, counted = asyncio.run(trial(Path(workdir), args))
        exact = produced == stored == counted
        inexact += not exact
        print(
            f"trial {number}/{args.trials}: produced {produced:,}, stored {stored:,},"
            f" counted {counted:,} -> {'exact' if exact else 'INEXACT'}",
            flush=True,
        )
    print(f"{args.trials - inexact} of {args.trials} trials exact")
    return inexact


if __name__ == "__main__":
    raise SystemExit(main())

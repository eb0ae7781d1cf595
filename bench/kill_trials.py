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
from killable import TENANT, killable_stack

from proffer_stream.core.identity import partition_key
from proffer_stream.core.settings import Settings
from proffer_stream.kafka.topics import topics_for


async def produce(settings: Settings, total: int, per_second: int, customers: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=5)
    await producer.start()
    try:
        chunk = max(per_second // 10, 1)
        for start in range(0, total, chunk):
            for n in range(start, min(start + chunk, total)):
                customer = f"c{n % customers}"
                value = {
                    "tenant_id": TENANT,
                    "customer": {"id": customer},
                    "events": [{"type": "purchase", "data": {"amount": 1}}],
                }
                await producer.send(
                    topics_for(settings).events.name,
                    key=partition_key(TENANT, customer),
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
    async with killable_stack(workdir) as stack:
        producing = asyncio.create_task(
            produce(stack.settings, args.events, args.rate, args.customers)
        )
        counted = 0
        while counted < args.events * args.kill_at:
            await asyncio.sleep(0.1)
            counted = (await totals(stack.pool))[1]
        stack.supervisor.kill("worker")
        stack.supervisor.kill("sink")
        await asyncio.sleep(1)
        for name in ("worker", "sink"):
            stack.supervisor.start(name, stack.env)
        await producing
        deadline = time.monotonic() + 180
        found = await totals(stack.pool)
        while found != (args.events, args.events) and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            found = await totals(stack.pool)
        await asyncio.sleep(3)  # nothing more trickles in
        stored, counted = await totals(stack.pool)
        return args.events, stored, counted


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

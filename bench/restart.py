"""Restart time of a worker killed with kill -9, after a history of events.

Starts its own broker and PostgreSQL (embedded), a worker and the sink; produces
--events events with ids over --customers customers (records of --per-record events,
straight onto proffer.events) and waits until all are counted; kills the worker with
SIGKILL, starts it again (--gap seconds later) and measures the time from its start
until it counts again (a probe customer's event, produced every 100 ms from the restart
on, shows in PostgreSQL: that includes the sink's few milliseconds). The restarted
worker recovers its tables (profiles, remembered ids, offers) from what its on-disk
stores lack of the changelogs.

Figures, not pass/fail. Run it for several histories to see whether restart time grows
with history: python bench/restart.py --events 400000 and --events 800000.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer
from killable import TENANT, killable_stack

from proffer_stream.core.identity import partition_key
from proffer_stream.core.settings import Settings
from proffer_stream.kafka.topics import topics_for


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def record(customer: str, first_id: int, events: int) -> bytes:
    return json.dumps(
        {
            "tenant_id": TENANT,
            "customer": {"id": customer},
            "events": [
                {"id": f"e{n}", "type": "page_view", "data": {"page": f"/p{n % 7}"}}
                for n in range(first_id, first_id + events)
            ],
        }
    ).encode()


async def produce_history(settings: Settings, args: argparse.Namespace) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers, linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    topic = topics_for(settings).events.name
    try:
        records = args.events // args.per_record
        for n in range(records):
            customer = f"c{n % args.customers}"
            value = record(customer, n * args.per_record, args.per_record)
            await producer.send(topic, value, key=partition_key(TENANT, customer))
            if n % 5_000 == 4_999:
                await producer.flush()
        await producer.flush()
    finally:
        await producer.stop()


async def counted(pool: asyncpg.Pool, customer: str | None = None) -> int:
    if customer is None:
        return int(await pool.fetchval("SELECT coalesce(sum(event_count), 0) FROM customers"))
    value = await pool.fetchval(
        "SELECT event_count FROM customers WHERE tenant_id = $1 AND external_id = $2",
        TENANT,
        customer,
    )
    return int(value or 0)


async def probe_until_counted(settings: Settings, pool: asyncpg.Pool, started: float) -> float:
    """Produce a probe event every 100 ms until one is counted; seconds since ``started``."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    topic = topics_for(settings).events.name
    try:
        n = 0
        while True:
            await producer.send_and_wait(
                topic, record("probe", 10**9 + n, 1), key=partition_key(TENANT, "probe")
            )
            n += 1
            if await counted(pool, "probe"):
                return time.monotonic() - started
            if time.monotonic() - started > 300:
                raise RuntimeError("the restarted worker did not count within 300 s")
            await asyncio.sleep(0.1)
    finally:
        await producer.stop()


async def trial(workdir: Path, args: argparse.Namespace) -> float:
    try:
        async with killable_stack(
            workdir, broker_session_timeout=6.0, broker_heartbeat_interval=1.0
        ) as stack:
            log(f"producing {args.events:,} events over {args.customers:,} customers")
            started = time.monotonic()
            await produce_history(stack.settings, args)
            total = 0
            while total < args.events:
                await asyncio.sleep(1)
                total = await counted(stack.pool)
                if time.monotonic() - started > 900:
                    raise RuntimeError(f"only {total:,} of {args.events:,} counted in 900 s")
            log(f"all {total:,} counted in {time.monotonic() - started:.1f} s; kill -9 the worker")
            await asyncio.sleep(args.settle)  # a commit or two after the last batch
            stack.supervisor.kill("worker")
            await asyncio.sleep(args.gap)
            restarted = time.monotonic()
            stack.supervisor.start("worker", {**stack.env, "PROFFER_LOG_LEVEL": "INFO"})
            seconds = await probe_until_counted(stack.settings, stack.pool, restarted)
            log(f"restarted worker counting again after {seconds:.1f} s")
            return seconds
    finally:
        if args.logs:
            shutil.copytree(workdir / "logs", args.logs, dirs_exist_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=400_000, help="events before the kill")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--per-record", type=int, default=10, help="events per Kafka record")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before the kill")
    parser.add_argument(
        "--gap",
        type=float,
        default=7.0,
        help="seconds from the kill to the restart. A worker restarted sooner than the"
        " session timeout (6 s) joins a group that still holds the dead member, and waits"
        " for it to time out",
    )
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--logs", type=Path, help="copy the processes' logs here")
    args = parser.parse_args()
    times = []
    for number in range(1, args.trials + 1):
        with tempfile.TemporaryDirectory(prefix="proffer-restart-") as workdir:
            times.append(asyncio.run(trial(Path(workdir), args)))
        log(f"trial {number}/{args.trials}: {times[-1]:.1f} s")
    print(
        f"\nrestart -> counting again after {args.events:,} events:"
        f" {', '.join(f'{t:.1f} s' for t in times)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

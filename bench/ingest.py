"""Ingest benchmark: events/s through the gateway, the signals agent and the sink.

Starts its own broker and PostgreSQL (embedded, on free ports, in a temporary directory;
or the servers in PROFFER_KAFKA_BOOTSTRAP_SERVERS / PROFFER_DATABASE_URL), the sink, one
worker and one gateway as processes, then measures:

  a)  HTTP: POST /api/webhook/events with 100 events per body, bounded concurrency
  b1) Kafka: records of one event each, produced straight onto proffer.events
  b2) Kafka: records of 100 events each
  c)  latency: HTTP paced at 10,000 events/s; p50/p99 of acceptance -> row
  d)  raw aiokafka consumer on the same broker, as the yardstick for the agent

For a, b1 and b2 it prints the producer's rate, the signals agent's rate (events folded
into profiles, from the worker's Prometheus counter) and the sink's rate (rows in the
events table), each from the start of the phase until the phase's last event is in, and
the worker's CPU time per event (from /proc), which is steadier than the rates when the
machine is shared.
The summary prints each figure issue 10 sets a target for, with the target; --json FILE
also writes them as one JSON object (gateway_events_per_s,
agent_single_event_records_per_s, worker_cpu_us_per_single_event_record,
sink_rows_per_s_min, p99_acceptance_to_row_ms, raw_consumer_records_per_s, ...).
Figures, not pass/fail: the exit code is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from proffer_stream.core.identity import partition_key
from proffer_stream.core.settings import Settings
from proffer_stream.kafka.topics import topics_for
from proffer_stream.local.embedded import EmbeddedBroker, EmbeddedPostgres, free_port, port_is_open
from proffer_stream.local.stack import prepare_database_and_topics
from proffer_stream.local.supervisor import Supervisor
from proffer_stream.worker.reroute import key_partition

T = TypeVar("T")
TENANT = "local"
TARGETS = {
    "gateway": 50_000,  # events/s accepted, posts of 100 events, no errors
    "agent": 10_000,  # events/s per worker, in every phase (records of 1 event included)
    "worker_us_per_record": 100,  # worker CPU per single-event record
    "sink": 30_000,  # rows/s in every phase (the slowest counts)
    "p99_ms": 100,  # acceptance -> row at 10,000 events/s over HTTP
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Stack:
    settings: Settings
    api_key: str
    worker_metrics: str
    workdir: Path
    supervisor: Supervisor
    broker_pid: int | None = None

    def pids(self) -> dict[str, list[int]]:
        """The stack's processes by role, for CPU accounting (embedded servers included)."""
        groups = {name: [child.process.pid] for name, child in self.supervisor.children.items()}
        if self.broker_pid:
            groups["broker"] = [self.broker_pid]
        postmasters = [
            int(path.read_text().split()[0]) for path in self.workdir.rglob("postmaster.pid")
        ]
        if postmasters:
            groups["postgres"] = postmasters + children_of(postmasters[0])
        groups["bench"] = [os.getpid()]
        return groups

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.settings.gateway_port}"


@dataclass
class PhaseResult:
    name: str
    events: int
    produce_rate: float
    agent_rate: float
    sink_rate: float
    agent_cpu_us: float  # worker CPU time per event
    ingest_cpu_us: float | None = None  # gateway CPU time per event (HTTP phase)
    errors: int = 0


def random_event(index: int) -> dict:
    kind = index % 5
    if kind == 0:
        return {"type": "purchase", "data": {"amount": round(random.uniform(5, 200), 2)}}
    if kind == 1:
        return {"type": "cart_abandon", "data": {"items": 2, "total": 80.5}}
    if kind == 2:
        return {"type": "feature_use", "data": {"feature": "reports", "times_used": 3}}
    if kind == 3:
        return {"type": "click", "data": {"element": "upgrade_button", "page": "/pricing"}}
    return {"type": "page_view", "data": {"page": random.choice(["/pricing", "/docs", "/"])}}


def http_bodies(prefix: str, events: int, per_body: int, customers: int) -> list[bytes]:
    bodies = []
    for body_index in range(events // per_body):
        customer = f"{prefix}{body_index % customers}"
        batch = []
        for n in range(per_body):
            event = random_event(n)
            event["id"] = f"{prefix}-{body_index}-{n}"
            batch.append(event)
        bodies.append(json.dumps({"customer": {"id": customer}, "events": batch}).encode())
    return bodies


async def counted_events(session: aiohttp.ClientSession, stack: Stack) -> float:
    # Uncompressed: gzipping each scrape cost the worker 1% of its CPU in phase b1.
    async with session.get(
        stack.worker_metrics, headers={"Accept-Encoding": "identity"}
    ) as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith("proffer_signals_events_counted_total "):
            return float(line.split()[1])
    return 0.0


@dataclass
class Baseline:
    """Where the counters stood when a phase began."""

    counted: float
    rows: int
    cpu: dict[str, float]  # cpu_by_role


async def baseline(session: aiohttp.ClientSession, db: asyncpg.Pool, stack: Stack) -> Baseline:
    return Baseline(
        counted=await counted_events(session, stack),
        rows=await db.fetchval("SELECT count(*) FROM events"),
        cpu=cpu_by_role(stack),
    )


async def follow(
    session: aiohttp.ClientSession,
    db: asyncpg.Pool,
    stack: Stack,
    start: float,
    total: int,
    base: Baseline,
    timeout: float = 600,
) -> tuple[float, float, float]:
    """Wait until the agent counted and the sink stored ``total`` more events.

    Returns the agent's and the sink's rates, and the worker's CPU µs per event.
    """
    agent_done = sink_done = None
    agent_cpu = 0.0
    last_report = time.monotonic()
    while agent_done is None or sink_done is None:
        now = time.monotonic()
        counted = await counted_events(session, stack) - base.counted
        rows = await db.fetchval("SELECT count(*) FROM events") - base.rows
        if agent_done is None and counted >= total:
            agent_done = now
            agent_cpu = cpu_by_role(stack)["worker"] - base.cpu["worker"]
        if sink_done is None and rows >= total:
            sink_done = now
        if now - last_report > 5:
            log(f"  ... agent {counted:,.0f}/{total:,}  sink {rows:,}/{total:,}")
            last_report = now
        if now - start > timeout:
            raise RuntimeError(f"gave up after {timeout}s: agent {counted}, sink {rows}")
        # Each poll costs the worker a metrics scrape and PostgreSQL a count: every 50 ms
        # they took 6% of the worker's CPU in a profile. Every 100 ms: +-0.1 s per phase.
        await asyncio.sleep(0.1)
    return total / (agent_done - start), total / (sink_done - start), agent_cpu / total * 1e6


async def phase_http(
    stack: Stack, db: asyncpg.Pool, args: argparse.Namespace, session: aiohttp.ClientSession
) -> PhaseResult:
    bodies = http_bodies("http", args.events, args.batch, args.customers)
    total = len(bodies) * args.batch
    log(f"a) HTTP: {total:,} events in {len(bodies):,} posts, concurrency {args.concurrency}")
    base = await baseline(session, db, stack)
    headers = {"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"}
    queue = list(reversed(bodies))
    errors = 0

    async def client() -> None:
        nonlocal errors
        while queue:
            body = queue.pop()
            async with session.post(
                f"{stack.api}/api/webhook/events", data=body, headers=headers
            ) as response:
                await response.read()
                if response.status != 200:
                    errors += 1

    start = time.monotonic()
    await asyncio.gather(*(client() for _ in range(args.concurrency)))
    produce_rate = total / (time.monotonic() - start)
    gateway_cpu = (cpu_by_role(stack)["gateway"] - base.cpu["gateway"]) / total * 1e6
    log(
        f"   gateway accepted {produce_rate:,.0f} events/s ({errors} errors),"
        f" {gateway_cpu:.0f} µs of its CPU per event"
    )
    agent, sink, cpu = await follow(session, db, stack, start, total, base)
    name = f"a) HTTP, {args.batch} events/post"
    return PhaseResult(name, total, produce_rate, agent, sink, cpu, gateway_cpu, errors)


async def phase_kafka(
    stack: Stack,
    db: asyncpg.Pool,
    args: argparse.Namespace,
    session: aiohttp.ClientSession,
    per_record: int,
) -> PhaseResult:
    prefix = f"kafka{per_record}-"
    records = args.events // per_record
    total = records * per_record
    log(f"b) Kafka: {total:,} events in records of {per_record}")
    base = await baseline(session, db, stack)
    received_at = datetime.now(UTC).isoformat()
    values = []
    for index in range(records):
        customer = f"{prefix}{index % args.customers}"
        events = [random_event(n) for n in range(per_record)]
        value = {
            "tenant_id": TENANT,
            "customer": {"id": customer},
            "events": events,
            "received_at": received_at,
        }
        values.append((partition_key(TENANT, customer), json.dumps(value).encode()))
    producer = AIOKafkaProducer(
        bootstrap_servers=stack.settings.bootstrap_servers, max_batch_size=512 * 1024
    )
    await producer.start()
    topic = topics_for(stack.settings).events.name
    start = time.monotonic()
    try:
        await send_in_batches(producer, topic, values)
    finally:
        await producer.stop()
    produce_rate = total / (time.monotonic() - start)
    log(f"   producer wrote {produce_rate:,.0f} events/s")
    agent, sink, cpu = await follow(session, db, stack, start, total, base)
    name = f"b) Kafka, {per_record} event(s)/record"
    return PhaseResult(name, total, produce_rate, agent, sink, cpu)


async def send_in_batches(
    producer: AIOKafkaProducer, topic: str, records: list[tuple[bytes, bytes]]
) -> None:
    """Write ``records`` (key, value) to their keys' partitions (murmur2, as the worker
    expects) in batches built here: a send per record cost the load generator 20 µs of
    CPU per record, taken from the 2 cores the pipeline shares with it; a batch costs a
    fraction of that."""
    partitions = len(await producer.partitions_for(topic))
    by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
    for key, value in records:
        by_partition.setdefault(key_partition(key, partitions), []).append((key, value))
    deliveries = []
    for partition, partition_records in by_partition.items():
        batch = producer.create_batch()
        for key, value in partition_records:
            if batch.append(key=key, value=value, timestamp=None) is None:
                deliveries.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        deliveries.append(await producer.send_batch(batch, topic, partition=partition))
    await asyncio.gather(*deliveries)


async def phase_latency(
    stack: Stack, db: asyncpg.Pool, args: argparse.Namespace, session: aiohttp.ClientSession
) -> tuple[float, float, int, dict[str, float]]:
    """p50 and p99 of acceptance -> row, rows measured, and the cores each role used."""
    posts_per_second = args.latency_rate // args.batch
    total_posts = posts_per_second * args.latency_seconds
    log(f"c) latency: {args.latency_rate:,} events/s over HTTP for {args.latency_seconds}s")
    bodies = http_bodies("lat", total_posts * args.batch, args.batch, args.customers)
    headers = {"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"}
    since = datetime.now(UTC)
    start = time.monotonic()
    cpu_start = cpu_by_role(stack)
    in_flight = []

    async def post(body: bytes) -> None:
        async with session.post(
            f"{stack.api}/api/webhook/events", data=body, headers=headers
        ) as response:
            await response.read()

    for index, body in enumerate(bodies):
        due = start + index / posts_per_second
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        in_flight.append(asyncio.create_task(post(body)))
    await asyncio.gather(*in_flight)
    expected = len(bodies) * args.batch
    deadline = time.monotonic() + 120
    while (
        await db.fetchval("SELECT count(*) FROM events WHERE received_at >= $1", since) < expected
    ):
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    elapsed = time.monotonic() - start
    cores = {
        role: (seconds - cpu_start.get(role, 0.0)) / elapsed
        for role, seconds in cpu_by_role(stack).items()
    }
    row = await db.fetchrow(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d) AS p50,"
        " percentile_cont(0.99) WITHIN GROUP (ORDER BY d) AS p99, count(*) AS n"
        " FROM (SELECT extract(epoch FROM stored_at - received_at) * 1000 AS d"
        "       FROM events WHERE received_at >= $1) AS delays",
        since,
    )
    return float(row["p50"]), float(row["p99"]), int(row["n"]), cores


async def phase_raw_consumer(stack: Stack) -> tuple[float, float, int]:
    topic = topics_for(stack.settings).events.name
    consumer = AIOKafkaConsumer(
        bootstrap_servers=stack.settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        if not partitions:
            await consumer.stop()
            consumer = AIOKafkaConsumer(
                topic, bootstrap_servers=stack.settings.bootstrap_servers, group_id=None
            )
            await consumer.start()
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        total = sum(ends.values())
        log(f"d) raw aiokafka consumer over {total:,} records of {topic}")
        count = size = 0
        start = time.monotonic()
        while count < total:
            fetched = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in fetched.values():
                count += len(records)
                size += sum(len(r.value or b"") for r in records)
        elapsed = time.monotonic() - start
        return count / elapsed, size / elapsed / 1e6, count
    finally:
        await consumer.stop()


def start_stack(
    settings: Settings, workdir: Path, extra_env: dict[str, str] | None = None
) -> tuple[Stack, list]:
    """Servers (embedded unless configured), migrations, topics, then the three processes
    (with ``extra_env`` on top of the stack's own settings)."""
    servers: list = []
    broker_pid = None
    if not settings.database_url:
        postgres = EmbeddedPostgres(workdir / "postgres")
        settings = settings.model_copy(update={"database_url": postgres.start()})
        servers.append(postgres)
    if not settings.kafka_bootstrap_servers:
        broker = EmbeddedBroker(free_port(), workdir / "broker.log")
        settings = settings.model_copy(update={"kafka_bootstrap_servers": broker.start()})
        servers.append(broker)
        broker_pid = broker.process.pid if broker.process else None
    api_key = asyncio.run(prepare_database_and_topics(settings))
    worker_metrics, sink_metrics = free_port(), free_port()
    env = {
        "PROFFER_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "PROFFER_DATABASE_URL": settings.database_url,
        "PROFFER_DATA_DIR": str(settings.data_dir),
        "PROFFER_GATEWAY_PORT": str(settings.gateway_port),
        "PROFFER_WORKER_WEB_PORT": str(free_port()),
        "PROFFER_LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    supervisor = Supervisor(workdir / "logs")
    stack = Stack(
        settings,
        api_key,
        f"http://127.0.0.1:{worker_metrics}/metrics",
        workdir,
        supervisor,
        broker_pid,
    )
    for name, metrics_port in (("sink", sink_metrics), ("worker", worker_metrics), ("gateway", 0)):
        supervisor.start(name, {**env, "PROFFER_METRICS_PORT": str(metrics_port)})
    deadline = time.monotonic() + 60
    while not (port_is_open(settings.gateway_port) and port_is_open(worker_metrics)):
        if time.monotonic() > deadline or supervisor.dead():
            raise RuntimeError(f"the stack did not start; see the logs in {workdir}/logs")
        time.sleep(0.1)
    return stack, servers


async def warm_up(stack: Stack, db: asyncpg.Pool, session: aiohttp.ClientSession) -> None:
    """One event end to end, so that the worker has joined its group before we measure."""
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    body = {"customer": {"id": "warm-up"}, "events": [{"type": "page_view"}]}
    async with session.post(f"{stack.api}/api/webhook/events", json=body, headers=headers) as r:
        r.raise_for_status()
    deadline = time.monotonic() + 90
    while not await db.fetchval("SELECT count(*) FROM customers WHERE external_id = 'warm-up'"):
        if time.monotonic() > deadline:
            raise RuntimeError("the warm-up event never reached PostgreSQL")
        await asyncio.sleep(0.2)


def _proc_stat(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (state first)."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def children_of(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_proc_stat(int(entry.name))[1]) == pid:
                    children.append(int(entry.name))
            except (OSError, IndexError):
                continue
    return children


def cpu_by_role(stack: Stack) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each role's live processes."""
    ticks = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for role, pids in stack.pids().items():
        total = 0
        for pid in pids:
            try:
                fields = _proc_stat(pid)
                total += int(fields[11]) + int(fields[12])
            except (OSError, IndexError):
                continue  # a PostgreSQL backend that ended
        used[role] = total / ticks
    return used


def cpu_times() -> list[int] | None:
    """The machine's aggregate CPU times from /proc/stat (None off Linux)."""
    try:
        with open("/proc/stat") as stat:
            return [int(field) for field in stat.readline().split()[1:]]
    except OSError:
        return None


def steal_share(before: list[int] | None, after: list[int] | None) -> float | None:
    """Share of CPU time the hypervisor took between two ``cpu_times`` readings."""
    if not before or not after or len(after) < 8:
        return None
    deltas = [end - start for start, end in zip(before, after, strict=True)]
    return deltas[7] / max(sum(deltas), 1)


def verdict(value: float, target: float, lower_is_better: bool = False) -> str:
    ok = value <= target if lower_is_better else value >= target
    return "PASS" if ok else "MISS"


async def measure(stack: Stack, args: argparse.Namespace) -> None:
    db = await asyncpg.create_pool(stack.settings.database_url, min_size=1, max_size=2)
    connector = aiohttp.TCPConnector(limit=args.concurrency * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        await warm_up(stack, db, session)
        log("stack is up; measuring")
        cpu_before = cpu_times()
        phases = [await phase_http(stack, db, args, session)]
        if not args.skip_single:
            phases.append(await phase_kafka(stack, db, args, session, per_record=1))
        phases.append(await phase_kafka(stack, db, args, session, per_record=args.batch))
        p50, p99, samples, cores = await phase_latency(stack, db, args, session)
    raw_rate, raw_mb, raw_records = await phase_raw_consumer(stack)
    steal = steal_share(cpu_before, cpu_times())
    await db.close()

    print("\nResults (2-core machine: broker, PostgreSQL, worker, sink, gateway and load generator")
    print("share it). Agent and sink rates run from the start of each phase to its last event.\n")
    print(
        f"{'phase':<30} {'events':>9} {'in (ev/s)':>11} {'agent (ev/s)':>13} {'sink (rows/s)':>14}"
        f" {'worker CPU µs/ev':>17}"
    )
    for p in phases:
        print(
            f"{p.name:<30} {p.events:>9,} {p.produce_rate:>11,.0f} {p.agent_rate:>13,.0f}"
            f" {p.sink_rate:>14,.0f} {p.agent_cpu_us:>17,.0f}"
            + (f"  ({p.errors} HTTP errors)" if p.errors else "")
        )
    http = phases[0]
    print(f"gateway CPU per event accepted: {http.ingest_cpu_us:.0f} µs")
    print(
        f"\nlatency at {args.latency_rate:,} events/s over HTTP: p50 {p50:.0f} ms, p99 {p99:.0f} ms"
        f" acceptance -> row ({samples:,} rows)"
    )
    print(
        f"  cores in use meanwhile (of {os.cpu_count()}): "
        + ", ".join(f"{role} {used:.2f}" for role, used in cores.items())
        + f"; total {sum(cores.values()):.2f}"
    )
    print(
        f"raw aiokafka consumer: {raw_rate:,.0f} records/s, {raw_mb:.1f} MB/s"
        f" ({raw_records:,} records)"
    )
    for p in phases:
        records_per_s = p.agent_rate / (1 if "1 event" in p.name else args.batch)
        print(
            f"  agent in '{p.name}': {records_per_s:,.0f} records/s ="
            f" {records_per_s / raw_rate:.1%} of the raw consumer"
        )
    if steal is not None:
        print(f"CPU stolen by the hypervisor during the run: {steal:.1%} (figures drop with it)")
    single = next((p for p in phases if "1 event" in p.name), None)
    figures = {
        "gateway_events_per_s": round(http.produce_rate),
        "gateway_http_errors": http.errors,
        "gateway_cpu_us_per_event": round(http.ingest_cpu_us, 1),
        "agent_single_event_records_per_s": round(single.agent_rate) if single else None,
        "worker_cpu_us_per_single_event_record": round(single.agent_cpu_us, 1) if single else None,
        "agent_events_per_s_min": round(min(p.agent_rate for p in phases)),
        "sink_rows_per_s_min": round(min(p.sink_rate for p in phases)),
        "p50_acceptance_to_row_ms": round(p50, 1),
        "p99_acceptance_to_row_ms": round(p99, 1),
        "raw_consumer_records_per_s": round(raw_rate),
        "cpu_steal_share": round(steal, 4) if steal is not None else None,
        "phases": {
            p.name: {
                "agent_events_per_s": round(p.agent_rate),
                "sink_rows_per_s": round(p.sink_rate),
                "worker_cpu_us_per_event": round(p.agent_cpu_us, 1),
            }
            for p in phases
        },
    }
    print_targets(figures, phases, http)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")  # noqa: ASYNC240
        print(f"\nfigures written to {args.json}")


def print_targets(figures: dict[str, Any], phases: list[PhaseResult], http: PhaseResult) -> None:
    """Each figure the issue sets a target for, with its target and PASS or MISS."""
    print("\nTargets:")
    rows = [
        (
            f"gateway, posts of 100 events >= {TARGETS['gateway']:,} ev/s, no errors",
            figures["gateway_events_per_s"],
            "PASS"
            if http.errors == 0 and figures["gateway_events_per_s"] >= TARGETS["gateway"]
            else "MISS",
        ),
    ]
    for p in phases:
        rows.append(
            (
                f"agent, {p.name} >= {TARGETS['agent']:,} ev/s",
                round(p.agent_rate),
                verdict(p.agent_rate, TARGETS["agent"]),
            )
        )
    us = figures["worker_cpu_us_per_single_event_record"]
    if us is not None:
        rows.append(
            (
                f"worker CPU per single-event record <= {TARGETS['worker_us_per_record']} µs",
                us,
                verdict(us, TARGETS["worker_us_per_record"], lower_is_better=True),
            )
        )
    rows.append(
        (
            f"sink, slowest phase >= {TARGETS['sink']:,} rows/s",
            figures["sink_rows_per_s_min"],
            verdict(figures["sink_rows_per_s_min"], TARGETS["sink"]),
        )
    )
    rows.append(
        (
            f"acceptance -> row p99 <= {TARGETS['p99_ms']} ms",
            figures["p99_acceptance_to_row_ms"],
            verdict(figures["p99_acceptance_to_row_ms"], TARGETS["p99_ms"], lower_is_better=True),
        )
    )
    for label, value, outcome in rows:
        print(f"  {label:<58} {value:>10,}  {outcome}")
    print(
        "  (scale-out and failover: tests/chaos/test_scale_out.py; raw consumer"
        f" {figures['raw_consumer_records_per_s']:,} records/s for scale)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000, help="events per phase")
    parser.add_argument("--customers", type=int, default=1_000, help="distinct customers")
    parser.add_argument("--batch", type=int, default=100, help="events per post / record")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent HTTP posts")
    parser.add_argument("--latency-rate", type=int, default=10_000, help="events/s in phase c")
    parser.add_argument("--latency-seconds", type=int, default=10, help="length of phase c")
    parser.add_argument("--skip-single", action="store_true", help="skip phase b1 (slowest)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as one JSON object")
    args = parser.parse_args()

    on_stack(args, measure)
    return 0


def on_stack(
    args: argparse.Namespace,
    measure: Callable[[Stack, argparse.Namespace], Coroutine[Any, Any, T]],
    extra_env: dict[str, str] | None = None,
) -> T:
    """Run ``measure`` on a stack of its own in a temporary directory, then stop it all."""
    with tempfile.TemporaryDirectory(prefix="proffer-bench-") as workdir:
        settings = Settings(
            data_dir=Path(workdir) / "data", gateway_port=free_port(), log_level="WARNING"
        )
        log(f"starting the stack in {workdir}")
        stack, servers = start_stack(settings, Path(workdir), extra_env)
        try:
            return asyncio.run(measure(stack, args))
        finally:
            stack.supervisor.stop_all()
            for server in servers:
                server.stop()


if __name__ == "__main__":
    raise SystemExit(main())

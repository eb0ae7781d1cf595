"""Offers benchmark: how fast offers are decided, and how soon after the event that asks.

Starts its own broker and PostgreSQL (as bench/ingest.py does), the sink, one worker and
one gateway, and measures:

  a) built-in writer: offer requests produced straight onto proffer.offer-requests;
     offers decided per second by the worker (its Prometheus counter) and rows per second
  b) built-in writer: p50/p99 from a triggering event's acceptance (the webhook's 200) to
     its offer's row, while 10,000 events/s flow over HTTP (posts of 100)
  c) a model that answers after 1 s (a loopback OpenAI-compatible fake, through the real
     openai SDK): offers per second, and the signals agent's rate on records of 100
     events with those requests in flight beside its rate without them

Figures, not pass/fail: the exit code is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from ingest import (
    Stack,
    cpu_by_role,
    http_bodies,
    log,
    on_stack,
    phase_kafka,
    verdict,
    warm_up,
)

from proffer_stream.core.identity import partition_key
from proffer_stream.kafka.topics import topics_for
from proffer_stream.offers.models import OfferRequest
from proffer_stream.signals.fold import new_signals

FAKE_MODEL = Path(__file__).resolve().parent.parent / "tests" / "fake_openai.py"

TENANT = "local"
TARGETS = {
    "builtin_offers_per_s": 2_000,
    "p99_event_to_offer_ms": 250,
    "model_offers_per_s": 50,
    "signals_rate_kept": 0.90,
}


async def decisions_made(session: aiohttp.ClientSession, stack: Stack) -> float:
    """Offer requests the worker has decided, from its Prometheus counter."""
    async with session.get(stack.worker_metrics) as response:
        text = await response.text()
    return sum(
        float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("proffer_offer_decisions_total{")
    )


def offer_requests(prefix: str, count: int, customers: int) -> list[OfferRequest]:
    """API requests with the profile attached, for ``customers`` customers in turn."""
    requests = []
    for n in range(count):
        customer = f"{prefix}{n % customers}"
        signals = new_signals(TENANT, customer).model_copy(
            update={"email": f"{customer}@example.com", "page_views": {"/pricing": 3}}
        )
        requests.append(
            OfferRequest(
                request_id=f"{prefix}-{n}",
                tenant_id=TENANT,
                external_customer_id=customer,
                source="api",
                requested_at=datetime.now(UTC),
                requested_by="bench",
                signals=signals,
            )
        )
    return requests


async def produce_requests(stack: Stack, requests: list[OfferRequest]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.bootstrap_servers, linger_ms=5)
    await producer.start()
    topic = topics_for(stack.settings).offer_requests.name
    try:
        deliveries = [
            await producer.send(
                topic,
                request.model_dump_json().encode(),
                key=partition_key(request.tenant_id, request.external_customer_id),
            )
            for request in requests
        ]
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()


async def phase_offers_per_second(
    stack: Stack, db: asyncpg.Pool, session: aiohttp.ClientSession, count: int, prefix: str
) -> tuple[float, float, float]:
    """Offers decided per second and rows per second; worker CPU µs per offer."""
    requests = offer_requests(prefix, count, customers=max(count // 4, 1))
    decided_before = await decisions_made(session, stack)
    rows_before = await db.fetchval("SELECT count(*) FROM decisions")
    cpu_before = cpu_by_role(stack)["worker"]
    start = time.monotonic()
    await produce_requests(stack, requests)
    decided_at = stored_at = None
    cpu = 0.0
    last_report = start
    while decided_at is None or stored_at is None:
        now = time.monotonic()
        decided = await decisions_made(session, stack) - decided_before
        rows = await db.fetchval("SELECT count(*) FROM decisions") - rows_before
        if decided_at is None and decided >= count:
            decided_at = now
            cpu = cpu_by_role(stack)["worker"] - cpu_before
        if stored_at is None and rows >= count:
            stored_at = now
        if now - last_report > 5:
            log(f"  ... decided {decided:,.0f}/{count:,}  rows {rows:,}/{count:,}")
            last_report = now
        if now - start > 600:
            raise RuntimeError(f"gave up: decided {decided}, rows {rows}")
        # Every 100 ms, as bench/ingest.py: each look scrapes the worker's metrics.
        await asyncio.sleep(0.1)
    return count / (decided_at - start), count / (stored_at - start), cpu / count * 1e6


async def phase_event_to_offer(
    stack: Stack, db: asyncpg.Pool, session: aiohttp.ClientSession, args: argparse.Namespace
) -> tuple[float, float, int]:
    """p50/p99 ms from a probe's acceptance to its offer's row, under background load."""
    headers = {"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"}
    posts_per_second = args.load_rate // 100
    load = http_bodies("load", posts_per_second * 100 * args.seconds, 100, args.customers)
    accepted: dict[str, float] = {}
    offered: dict[str, float] = {}

    async def post(body: bytes, probe: str | None = None) -> None:
        async with session.post(
            f"{stack.api}/api/webhook/events", data=body, headers=headers
        ) as response:
            await response.read()
            if probe is not None and response.status == 200:
                accepted[probe] = time.time()  # wall clock, as Kafka's record timestamps

    async def watch() -> None:
        while True:
            rows = await db.fetch(
                "SELECT external_customer_id FROM offers"
                " WHERE tenant_id = $1 AND external_customer_id LIKE 'probe-%'",
                TENANT,
            )
            now = time.time()
            for row in rows:
                offered.setdefault(row["external_customer_id"], now)
            await asyncio.sleep(0.005)

    log(f"b) event -> offer: probes among {args.load_rate:,} events/s for {args.seconds}s")
    watcher = asyncio.create_task(watch())
    start = time.monotonic()
    tasks = []
    for index, body in enumerate(load):
        await asyncio.sleep(max(0.0, start + index / posts_per_second - time.monotonic()))
        tasks.append(asyncio.create_task(post(body)))
        if index % max(posts_per_second // args.probes_per_second, 1) == 0:
            probe = f"probe-{index}"
            views = [{"type": "page_view", "data": {"page": "/pricing"}}] * 2
            probe_body = json.dumps({"customer": {"id": probe}, "events": views}).encode()
            tasks.append(asyncio.create_task(post(probe_body, probe)))
    await asyncio.gather(*tasks)
    for _ in range(1200):  # at most 60 s for the last offers
        if not set(accepted) - set(offered):
            break
        await asyncio.sleep(0.05)
    watcher.cancel()
    delays = sorted((offered[p] - t) * 1000 for p, t in accepted.items() if p in offered)
    if len(delays) < len(accepted):
        log(f"  {len(accepted) - len(delays)} probe(s) got no offer within 60 s")
    for hop, (p50, p99) in (await hop_delays(stack, accepted, offered)).items():
        log(f"  {hop:<34} p50 {p50:6.0f} ms  p99 {p99:6.0f} ms")
    return statistics.median(delays), percentile(delays, 0.99), len(delays)


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def hop_delays(
    stack: Stack, accepted: dict[str, float], offered: dict[str, float]
) -> dict[str, tuple[float, float]]:
    """p50/p99 ms of each hop from a probe's acceptance to its offer's row, from the
    timestamps of the first record keyed by the probe on each topic on the way."""
    topics = topics_for(stack.settings)
    by_key = {partition_key(TENANT, probe): probe for probe in accepted}
    path = [topics.events.name, topics.offer_requests.name, topics.offers.name]
    seen: dict[str, dict[str, float]] = {topic: {} for topic in path}
    consumer = AIOKafkaConsumer(
        *path, bootstrap_servers=stack.settings.bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        while fetched := await consumer.getmany(timeout_ms=1000):
            for records in fetched.values():
                for record in records:
                    probe = by_key.get(record.key or b"")
                    if probe is not None:
                        seen[record.topic].setdefault(probe, record.timestamp / 1000)
    finally:
        await consumer.stop()
    stamps = [accepted, *seen.values(), offered]
    names = ["accepted", "on events", "on offer-requests", "on offers", "row"]
    hops = {}
    for n in range(1, len(stamps)):
        delays = sorted(
            (stamps[n][probe] - stamps[n - 1][probe]) * 1000
            for probe in accepted
            if probe in stamps[n] and probe in stamps[n - 1]
        )
        if delays:
            hops[f"{names[n - 1]} -> {names[n]}"] = (
                statistics.median(delays),
                percentile(delays, 0.99),
            )
    return hops


async def measure_builtin(stack: Stack, args: argparse.Namespace) -> dict[str, float]:
    db = await asyncpg.create_pool(stack.settings.database_url, min_size=1, max_size=2)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        await warm_up(stack, db, session)
        log(f"a) built-in writer: {args.offers:,} offer requests straight onto the topic")
        rate, rows, cpu = await phase_offers_per_second(stack, db, session, args.offers, "b")
        p50, p99, probes = await phase_event_to_offer(stack, db, session, args)
    await db.close()
    return {
        "builtin_offers_per_s": rate,
        "builtin_offer_rows_per_s": rows,
        "worker_cpu_us_per_builtin_offer": cpu,
        "p50_event_to_offer_ms": p50,
        "p99_event_to_offer_ms": p99,
        "probes": probes,
    }


async def measure_model(stack: Stack, args: argparse.Namespace) -> dict[str, float]:
    db = await asyncpg.create_pool(stack.settings.database_url, min_size=1, max_size=2)
    kafka_args = argparse.Namespace(events=args.signals_events, customers=args.customers)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        await warm_up(stack, db, session)
        log("c) signals agent alone, records of 100 events")
        alone = await phase_kafka(stack, db, kafka_args, session, per_record=100)
        log(f"c) a 1 s model: {args.model_offers:,} offer requests, signals beside them")
        offers = asyncio.create_task(
            phase_offers_per_second(stack, db, session, args.model_offers, "m")
        )
        await asyncio.sleep(2)  # the model's writes are in flight
        beside = await phase_kafka(stack, db, kafka_args, session, per_record=100)
        rate, _rows, _cpu = await offers
    await db.close()
    return {
        "model_offers_per_s": rate,
        "signals_events_per_s_alone": alone.agent_rate,
        "signals_events_per_s_beside_model_offers": beside.agent_rate,
    }


@contextlib.contextmanager
def fake_model(delay: float) -> Iterator[str]:
    """The tests' loopback OpenAI-compatible fake, answering after ``delay`` s; its URL."""
    command = [sys.executable, str(FAKE_MODEL), "--port", "0", "--delay", str(delay)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(10)


def report(figures: dict[str, float]) -> None:
    kept = (
        figures["signals_events_per_s_beside_model_offers"] / figures["signals_events_per_s_alone"]
    )
    print("\nResults (2-core machine: broker, PostgreSQL, worker, sink, gateway, the fake model")
    print("and the load generator share it).\n")
    print(
        f"built-in writer: {figures['builtin_offers_per_s']:,.0f} offers/s decided,"
        f" {figures['builtin_offer_rows_per_s']:,.0f} decisions/s stored,"
        f" {figures['worker_cpu_us_per_builtin_offer']:,.0f} µs worker CPU per offer"
    )
    print(
        f"event -> offer row: p50 {figures['p50_event_to_offer_ms']:.0f} ms,"
        f" p99 {figures['p99_event_to_offer_ms']:.0f} ms ({figures['probes']:.0f} probes)"
    )
    print(f"1 s model: {figures['model_offers_per_s']:,.1f} offers/s")
    print(
        f"signals agent, records of 100: {figures['signals_events_per_s_alone']:,.0f} ev/s alone,"
        f" {figures['signals_events_per_s_beside_model_offers']:,.0f} ev/s beside model offers"
        f" ({kept:.0%})"
    )
    print("\nTargets:")
    rows = [
        ("built-in offers/s", "builtin_offers_per_s", False),
        ("p99 event -> offer (ms)", "p99_event_to_offer_ms", True),
        ("offers/s with a 1 s model", "model_offers_per_s", False),
    ]
    for label, key, lower in rows:
        value, target = figures[key], TARGETS[key]
        print(f"  {label:<28} {value:>10,.1f}  target {target:,}  {verdict(value, target, lower)}")
    print(
        f"  {'signals rate kept':<28} {kept:>10.0%}  target {TARGETS['signals_rate_kept']:.0%}"
        f"  {verdict(kept, TARGETS['signals_rate_kept'])}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--offers", type=int, default=20_000, help="requests in phase a")
    parser.add_argument("--load-rate", type=int, default=10_000, help="events/s in phase b")
    parser.add_argument("--seconds", type=int, default=10, help="length of phase b")
    parser.add_argument("--probes-per-second", type=int, default=20, help="probes in phase b")
    parser.add_argument("--customers", type=int, default=1_000, help="customers of the load")
    parser.add_argument("--model-offers", type=int, default=1_000, help="requests in phase c")
    parser.add_argument(
        "--signals-events", type=int, default=200_000, help="events beside them in phase c"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()

    figures = on_stack(args, measure_builtin)
    with fake_model(delay=1.0) as base_url:
        llm = {
            "PROFFER_LLM_BASE_URL": base_url,
            "PROFFER_LLM_MODEL": "fake-1s",
            "PROFFER_LLM_API_KEY": "bench",
        }
        figures |= on_stack(args, measure_model, llm)
    report(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Offer lifecycle benchmark: status changes through the API, and redemptions by purchases.

Starts its own broker and PostgreSQL (as bench/ingest.py does), the sink, one worker and
one gateway, and measures:

  a) transitions: --offers offers are made (offer requests produced straight onto
     proffer.offer-requests, as bench/offers.py does), then --concurrency clients send
     PATCH /api/offers/{id} with approved, sent, redeemed: each offer's three in turn,
     different offers at once. The gateway answers 200 once the offers agent applied the
     change and the offer's new version is in PostgreSQL, 409 if the agent refused it,
     202 if it gave up waiting (PROFFER_OFFER_WAIT_SECONDS, 10 s). Figures: transitions
     per second (200s over the phase's wall time), p50/p99/max of a PATCH's latency.
  b) redemptions: --redemptions more offers moved to sent (commands straight onto the
     topic, not timed), then one purchase per customer carrying the offer's code over
     POST /api/webhook/events (one customer per post, --concurrency posts at once).
     Figures: redemptions per second, from the first post until the offers table shows
     them all redeemed, and p50/p99 of (redeemed row seen by a 20 ms poll - the post sent).

  c) generate: --generates customers send one event each over the webhook; once their
     rows are in PostgreSQL, one client asks POST /api/offers/generate for each in turn
     (built-in writer). Figures: p50/p99 of a generate's latency (request -> the offer).

Figures, not pass/fail: the exit code is 0 whatever the figures. Noisy on a shared
2-core machine: the broker, PostgreSQL, the three processes and this client share it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import asyncpg
from aiokafka import AIOKafkaProducer
from ingest import Stack, log, on_stack, warm_up
from offers import offer_requests, produce_requests

from proffer_stream.core.identity import partition_key
from proffer_stream.kafka.topics import topics_for
from proffer_stream.offers.models import OfferCommand

TENANT = "local"
STEPS = ("approved", "sent", "redeemed")


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


async def make_offers(stack: Stack, db: asyncpg.Pool, prefix: str, count: int) -> list[dict]:
    """``count`` offers, one per customer; their id, customer and code once all are in."""
    requests = offer_requests(prefix, count, customers=count)
    request_ids = [r.request_id for r in requests]
    start = time.monotonic()
    await produce_requests(stack, requests)
    last_report = start
    while True:
        decisions = await db.fetchrow(
            "SELECT count(*) AS decided, count(offer_id) AS offered FROM decisions"
            " WHERE tenant_id = $1 AND request_id = ANY($2)",
            TENANT,
            request_ids,
        )
        decided = decisions["decided"]
        rows = await db.fetch(
            "SELECT id, external_customer_id, offer->'offer_terms'->>'code' AS code FROM offers"
            " WHERE tenant_id = $1 AND request_id = ANY($2)",
            TENANT,
            request_ids,
        )
        if decided >= count and len(rows) >= decisions["offered"]:
            break
        now = time.monotonic()
        if now - last_report > 5:
            log(f"  ... decided {decided:,}/{count:,}  offer rows {len(rows):,}")
            last_report = now
        if now - start > 300:
            raise RuntimeError(f"gave up making offers: decided {decided}, rows {len(rows)}")
        await asyncio.sleep(0.2)
    if len(rows) < count:
        log(f"  {count - len(rows)} request(s) made no offer (policy); going on without them")
    log(f"  {len(rows):,} offers in {time.monotonic() - start:.1f} s")
    return [dict(r) for r in rows]


async def phase_transitions(
    stack: Stack,
    db: asyncpg.Pool,
    session: aiohttp.ClientSession,
    args: argparse.Namespace,
) -> dict[str, float | int | None]:
    log(f"a) transitions: making {args.offers:,} offers")
    made = await make_offers(stack, db, "life-t", args.offers)
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    latencies: list[float] = []
    statuses: Counter[int | str] = Counter()
    queue = [offer["id"] for offer in reversed(made)]
    total = len(queue) * len(STEPS)

    async def client() -> None:
        while queue:
            offer_id = queue.pop()
            for status in STEPS:
                sent = time.monotonic()
                try:
                    async with session.patch(
                        f"{stack.api}/api/offers/{offer_id}",
                        json={"status": status},
                        headers=headers,
                    ) as response:
                        await response.read()
                        code: int | str = response.status
                except aiohttp.ClientError as error:
                    code = type(error).__name__
                latencies.append((time.monotonic() - sent) * 1000)
                statuses[code] += 1
                if code != 200:
                    break  # the offer cannot go on from where it stands

    async def progress() -> None:
        while True:
            await asyncio.sleep(5)
            log(f"  ... {sum(statuses.values()):,}/{total:,} PATCHes answered")

    log(f"a) transitions: {total:,} PATCHes from {args.concurrency} clients")
    reporter = asyncio.create_task(progress())
    start = time.monotonic()
    await asyncio.gather(*(client() for _ in range(args.concurrency)))
    elapsed = time.monotonic() - start
    reporter.cancel()
    redeemed = await db.fetchval(
        "SELECT count(*) FROM offers WHERE tenant_id = $1 AND id = ANY($2) AND status = 'redeemed'",
        TENANT,
        [offer["id"] for offer in made],
    )
    ok = statuses[200]
    other = sum(n for code, n in statuses.items() if code not in (200, 202, 409))
    return {
        "offers": len(made),
        "transitions_per_s": ok / elapsed,
        "transition_p50_ms": statistics.median(latencies) if latencies else None,
        "transition_p99_ms": percentile(latencies, 0.99),
        "transition_max_ms": max(latencies, default=None),
        "transition_seconds": elapsed,
        "patches": sum(statuses.values()),
        "patches_200": ok,
        "patches_202": statuses[202],
        "patches_409": statuses[409],
        "patches_other": other,
        "offers_redeemed_by_api": redeemed,
    }


async def move_to_sent(stack: Stack, db: asyncpg.Pool, made: list[dict]) -> None:
    """approved then sent for each offer, straight onto the topic (each customer's in order)."""
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.bootstrap_servers, linger_ms=5)
    await producer.start()
    topic = topics_for(stack.settings).offer_requests.name
    try:
        for status in STEPS[:2]:
            for offer in made:
                command = OfferCommand(
                    command_id=f"life-r-{offer['id']}-{status}",
                    tenant_id=TENANT,
                    external_customer_id=offer["external_customer_id"],
                    action="transition",
                    offer_id=offer["id"],
                    status=status,
                    cause="bench",
                    issued_at=datetime.now(UTC),
                )
                await producer.send(
                    topic,
                    command.model_dump_json().encode(),
                    key=partition_key(TENANT, offer["external_customer_id"]),
                )
        await producer.flush()
    finally:
        await producer.stop()
    ids = [offer["id"] for offer in made]
    deadline = time.monotonic() + 300
    while True:
        sent = await db.fetchval(
            "SELECT count(*) FROM offers WHERE tenant_id = $1 AND id = ANY($2) AND status = 'sent'",
            TENANT,
            ids,
        )
        if sent >= len(ids):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {sent} of {len(ids)} offers reached sent")
        await asyncio.sleep(0.2)


async def phase_redemptions(
    stack: Stack,
    db: asyncpg.Pool,
    session: aiohttp.ClientSession,
    args: argparse.Namespace,
) -> dict[str, float | int | None]:
    log(f"b) redemptions: making {args.redemptions:,} offers and moving them to sent")
    made = await make_offers(stack, db, "life-r", args.redemptions)
    await move_to_sent(stack, db, made)
    headers = {"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"}
    posted_at: dict[int, float] = {}  # offer id -> wall clock when its purchase was posted
    seen_at: dict[int, float] = {}  # offer id -> wall clock when its row read redeemed
    statuses: Counter[int | str] = Counter()
    queue = list(reversed(made))

    async def client() -> None:
        while queue:
            offer = queue.pop()
            event = {
                "id": f"buy-{offer['id']}",
                "type": "purchase",
                "data": {"offer_code": offer["code"], "amount": 25},
            }
            body = {"customer": {"id": offer["external_customer_id"]}, "events": [event]}
            posted_at[offer["id"]] = time.time()
            try:
                async with session.post(
                    f"{stack.api}/api/webhook/events", data=json.dumps(body), headers=headers
                ) as response:
                    await response.read()
                    statuses[response.status] += 1
            except aiohttp.ClientError as error:
                statuses[type(error).__name__] += 1

    log(f"b) redemptions: {len(made):,} purchase posts from {args.concurrency} clients")
    ids = [offer["id"] for offer in made]
    start = time.monotonic()
    posting = asyncio.gather(*(client() for _ in range(args.concurrency)))
    last_report = start
    while len(seen_at) < len(ids):
        pending = [i for i in ids if i not in seen_at]
        rows = await db.fetch(
            "SELECT id FROM offers WHERE tenant_id = $1 AND id = ANY($2) AND status = 'redeemed'",
            TENANT,
            pending,
        )
        now = time.time()
        for row in rows:
            seen_at[row["id"]] = now
        if posting.done() and sum(statuses.values()) - statuses[200] >= len(ids) - len(seen_at):
            break  # the rest were never accepted
        if time.monotonic() - last_report > 5:
            log(f"  ... posted {sum(statuses.values()):,}  redeemed {len(seen_at):,}/{len(ids):,}")
            last_report = time.monotonic()
        if time.monotonic() - start > 300:
            log(f"  gave up waiting: {len(seen_at)} of {len(ids)} redeemed")
            break
        await asyncio.sleep(0.02)
    elapsed = time.monotonic() - start
    await posting
    delays = [(seen_at[i] - posted_at[i]) * 1000 for i in seen_at if i in posted_at]
    return {
        "redemption_offers": len(made),
        "redemptions_per_s": len(seen_at) / elapsed if seen_at else None,
        "redemption_p50_ms": statistics.median(delays) if delays else None,
        "redemption_p99_ms": percentile(delays, 0.99),
        "redemption_seconds": elapsed,
        "redeemed": len(seen_at),
        "purchase_posts_200": statuses[200],
        "purchase_posts_other": sum(statuses.values()) - statuses[200],
    }


async def phase_generate(
    stack: Stack,
    db: asyncpg.Pool,
    session: aiohttp.ClientSession,
    args: argparse.Namespace,
) -> dict[str, float | int | None]:
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    names = [f"life-g-{n}" for n in range(args.generates)]
    log(f"c) generate: {len(names):,} customers send an event each")
    for name in names:
        body = {"customer": {"id": name}, "events": [{"type": "page_view"}]}
        async with session.post(
            f"{stack.api}/api/webhook/events", json=body, headers=headers
        ) as response:
            response.raise_for_status()
    for _ in range(600):  # their rows, within a minute
        known = "SELECT count(*) FROM customers WHERE external_id = ANY($1)"
        if await db.fetchval(known, names) == len(names):
            break
        await asyncio.sleep(0.1)
    log(f"c) generate: {len(names):,} POST /api/offers/generate, one at a time")
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    for name in names:
        sent = time.monotonic()
        async with session.post(
            f"{stack.api}/api/offers/generate",
            json={"external_customer_id": name},
            headers=headers,
        ) as response:
            await response.read()
            statuses[response.status] += 1
        latencies.append((time.monotonic() - sent) * 1000)
    return {
        "generate_p50_ms": statistics.median(latencies) if latencies else None,
        "generate_p99_ms": percentile(latencies, 0.99),
        "generates_200": statuses[200],
        "generates_other": sum(statuses.values()) - statuses[200],
    }


async def measure(stack: Stack, args: argparse.Namespace) -> dict[str, float | int | None]:
    db = await asyncpg.create_pool(stack.settings.database_url, min_size=1, max_size=2)
    connector = aiohttp.TCPConnector(limit=args.concurrency * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        await warm_up(stack, db, session)
        log("stack is up; measuring")
        figures = await phase_transitions(stack, db, session, args)
        if args.redemptions:
            figures |= await phase_redemptions(stack, db, session, args)
        else:
            figures |= {"redemptions_per_s": None, "redemption_p99_ms": None}
        if args.generates:
            figures |= await phase_generate(stack, db, session, args)
    await db.close()
    return figures


def ms(value: float | int | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def report(figures: dict[str, float | int | None], args: argparse.Namespace) -> None:
    print("\nResults (2-core machine: broker, PostgreSQL, worker, sink, gateway and this client")
    print("share it; figures are noisy).\n")
    print(
        f"a) transitions through PATCH /api/offers/{{id}}, {figures['offers']:,} offers x 3,"
        f" {args.concurrency} clients, {figures['transition_seconds']:.1f} s:"
    )
    print(f"   {figures['transitions_per_s']:,.1f} transitions/s (200s over wall time)")
    print(
        f"   latency per PATCH: p50 {ms(figures['transition_p50_ms'])},"
        f" p99 {ms(figures['transition_p99_ms'])}, max {ms(figures['transition_max_ms'])}"
    )
    print(
        f"   answers: {figures['patches_200']:,} x 200, {figures['patches_202']:,} x 202"
        f" (timed out), {figures['patches_409']:,} x 409, {figures['patches_other']:,} other;"
        f" {figures['offers_redeemed_by_api']:,} offers ended redeemed"
    )
    if args.redemptions:
        rate = figures["redemptions_per_s"]
        print(
            f"\nb) redemptions by purchase events, {figures['redemption_offers']:,} sent offers,"
            f" one post per customer, {args.concurrency} at once,"
            f" {figures['redemption_seconds']:.1f} s:"
        )
        print(
            "   "
            + ("-" if rate is None else f"{rate:,.1f}")
            + " redemptions/s (first post -> last offer row redeemed)"
        )
        print(
            f"   post -> redeemed row: p50 {ms(figures['redemption_p50_ms'])},"
            f" p99 {ms(figures['redemption_p99_ms'])}"
        )
        print(
            f"   {figures['redeemed']:,} redeemed; posts {figures['purchase_posts_200']:,} x 200,"
            f" {figures['purchase_posts_other']:,} other"
        )
    if args.generates:
        print(f"\nc) generate, built-in writer, {args.generates:,} customers, one at a time:")
        print(
            f"   latency: p50 {ms(figures['generate_p50_ms'])},"
            f" p99 {ms(figures['generate_p99_ms'])};"
            f" {figures['generates_200']:,} x 200, {figures['generates_other']:,} other"
        )

    print("\nSummary:")
    rows = [
        ("transitions/s", figures["transitions_per_s"], "/s"),
        ("transition p50", figures["transition_p50_ms"], "ms"),
        ("transition p99", figures["transition_p99_ms"], "ms"),
        ("transition max", figures["transition_max_ms"], "ms"),
        ("redemptions/s", figures.get("redemptions_per_s"), "/s"),
        ("redemption p50", figures.get("redemption_p50_ms"), "ms"),
        ("redemption p99", figures.get("redemption_p99_ms"), "ms"),
        ("generate p50", figures.get("generate_p50_ms"), "ms"),
        ("generate p99", figures.get("generate_p99_ms"), "ms"),
    ]
    for label, value, unit in rows:
        shown = "not measured" if value is None else f"{value:>10,.1f} {unit}"
        print(f"  {label:<18} {shown}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--offers", type=int, default=300, help="offers moved through the API in a (3 PATCHes each)"
    )
    parser.add_argument(
        "--redemptions",
        type=int,
        default=None,
        help="sent offers redeemed by purchases in b (default: --offers; 0 skips b)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=32, help="concurrent HTTP clients in a and b"
    )
    parser.add_argument(
        "--generates", type=int, default=100, help="generate calls timed in c (0 skips c)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    if args.redemptions is None:
        args.redemptions = args.offers

    figures = on_stack(args, measure)
    report(figures, args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Decisions benchmark: `POST /api/v2/personalized_offers` and the placement offers of
`POST /api/v2/integrations/{id}/flows/{flow}/offers` over a realistic catalog.

Starts its own broker and PostgreSQL (as bench/ingest.py does), the sink, one worker and
one gateway; puts --customers customers straight into PostgreSQL (their profiles: page
views, purchases) and creates --offers catalog offers through the API (priorities 0-6,
discounts, a third with an audience over signals, a third with context conditions), then
measures decisions for random customers in random contexts (locale, device, url, roles);
for placements, an integration whose placement shows every catalog offer and the
customer's open offers, and --flows flows of random customers, each asked for offers
in turn (so a flow's offers already shown are read and skipped, as in a visit).
Each endpoint (--endpoints) is measured in turn:

  a) paced: --rate decisions per second for --seconds: p50/p99 (target p50 <= 3 ms and
     p99 <= 15 ms at 1,000/s), and how many the client sent late.
     Also the CPU time per decision of the gateway and of the whole stack (/proc), which
     says what a machine of its own would sustain when the latency is queueing.
  b) most: paced steps from --start-rate up by --step, --step-seconds each, until p99
     reaches 50 ms (or answers fail, or the client falls behind): the most decisions/s one
     gateway sustains with p99 under 50 ms.

Every answer is a decision logged on proffer.decisions (acked) before it went out.
Figures, not pass/fail. Noisy on a shared 2-core machine: the broker, PostgreSQL, the
three processes and this client share it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
from ingest import Stack, cpu_by_role, log, on_stack, warm_up

from proffer_stream.core.identity import customer_id
from proffer_stream.db.customers import upsert_customers
from proffer_stream.signals.fold import new_signals

TENANT = "local"
LOCALES = ["en-US", "pl-PL", "de-DE", "en-GB"]
AGENTS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0",
    "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)",
]
PAGES = ["https://shop.example/pricing", "https://shop.example/home", "https://shop.example/cart"]
Figures = dict[str, float | int | None]


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


async def seed_customers(db: asyncpg.Pool, count: int) -> None:
    """``count`` customers' profiles, as the sink would have written them."""
    for start in range(0, count, 5_000):
        profiles = []
        for n in range(start, min(start + 5_000, count)):
            profile = new_signals(TENANT, f"c{n}").model_copy(
                update={
                    "customer_id": customer_id(TENANT, f"c{n}"),
                    "event_count": 3,
                    "page_views": {"/pricing": n % 4},
                    "purchase_count": n % 3,
                    "purchase_total": 40 * (n % 3),
                }
            )
            profiles.append(profile)
        async with db.acquire() as conn:
            await upsert_customers(conn, profiles, [p.model_dump_json() for p in profiles])


def offer_body(n: int) -> dict:
    body: dict = {
        "status": "published",
        "name": {"en": f"Offer {n}", "pl": f"Oferta {n}"},
        "priority": n % 7,
        "terms": {"discount_percent": 5 + n % 30},
    }
    if n % 3 == 0:
        body["audience"] = {"min_page_views": {"/pricing": 1 + n % 3}}
    elif n % 3 == 1:
        body["context"] = random.Random(n).choice(
            [
                {"locales": ["pl"]},
                {"devices": ["mobile"]},
                {"url_patterns": ["*/pricing*"]},
                {"roles": ["admin"]},
            ]
        )
    return body


async def create_offers(stack: Stack, session: aiohttp.ClientSession, count: int) -> float:
    todo = list(range(count))
    headers = {"Authorization": f"Bearer {stack.api_key}"}

    async def client() -> None:
        while todo:
            async with session.post(
                f"{stack.api}/api/catalog/offers", json=offer_body(todo.pop()), headers=headers
            ) as response:
                if response.status != 201:
                    raise RuntimeError(
                        f"creating an offer: {response.status} {await response.text()}"
                    )

    start = time.monotonic()
    await asyncio.gather(*(client() for _ in range(16)))
    return time.monotonic() - start


def ask(rng: random.Random, customers: int) -> dict:
    return {
        "customer_id": f"c{rng.randrange(customers)}",
        "roles": ["admin"] if rng.random() < 0.2 else [],
        "request_context": {
            "locale": rng.choice(LOCALES),
            "user_agent": rng.choice(AGENTS),
            "url": rng.choice(PAGES),
        },
    }


@dataclass(frozen=True)
class Endpoint:
    """One endpoint measured: its requests (URL and JSON body, or None) and its answers
    (which statuses are answers, and which answers show an offer)."""

    name: str
    request: Callable[[random.Random], tuple[str, dict | None]]
    answered: frozenset[int]
    offered: Callable[[int, bytes], bool]


def personalized(stack: Stack, customers: int) -> Endpoint:
    url = f"{stack.api}/api/v2/personalized_offers"
    return Endpoint(
        "personalized_offers",
        lambda rng: (url, ask(rng, customers)),
        frozenset({200}),
        lambda status, answer: status == 200 and bool(json.loads(answer)["personalized_offers"]),
    )


async def placement(
    stack: Stack, session: aiohttp.ClientSession, customers: int, flows: int
) -> Endpoint:
    """An integration showing every catalog offer and open offers at ``order_confirmation``,
    and ``flows`` flows of random customers, taken in turn."""
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    body = {
        "name": "Checkout",
        "allowed_sites": ["*.shop.example"],
        "placements": {
            "order_confirmation": {"all_catalog_offers": True, "open_offers": True},
        },
    }
    async with session.post(f"{stack.api}/api/integrations", json=body, headers=headers) as made:
        if made.status != 201:
            raise RuntimeError(f"creating the integration: {made.status} {await made.text()}")
        integration = (await made.json())["integration"]["id"]
    base = f"{stack.api}/api/v2/integrations/{integration}/flows"
    rng = random.Random(7)
    urls = []
    for _ in range(flows):
        who = {"external_customer_id": f"c{rng.randrange(customers)}", "site": "shop.example"}
        async with session.post(base, json=who, headers=headers) as started:
            flow = (await started.json())["data"]["id"]
        urls.append(f"{base}/{flow}/offers?placement=order_confirmation&first_name=Ann")
    return Endpoint(
        "placement_offers",
        lambda rng: (rng.choice(urls), None),
        frozenset({201, 202}),
        lambda status, _: status == 201,
    )


async def paced(
    stack: Stack, session: aiohttp.ClientSession, rate: float, seconds: float, endpoint: Endpoint
) -> Figures:
    """Decisions at ``rate`` per second for ``seconds``: latency percentiles and answers."""
    rng = random.Random(int(rate))
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    latencies: list[float] = []
    statuses: Counter[int | str] = Counter()
    offered = late = 0

    async def one(url: str, body: dict | None) -> None:
        nonlocal offered
        sent = time.monotonic()
        try:
            async with session.post(url, json=body, headers=headers) as response:
                answer = await response.read()
                statuses[response.status] += 1
                if endpoint.offered(response.status, answer):
                    offered += 1
        except aiohttp.ClientError as error:
            statuses[type(error).__name__] += 1
        latencies.append((time.monotonic() - sent) * 1000)

    total = int(rate * seconds)
    tasks = []
    cpu_before = cpu_by_role(stack)
    start = time.monotonic()
    for n in range(total):
        wait = start + n / rate - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        elif wait < -0.05:
            late += 1
        tasks.append(asyncio.create_task(one(*endpoint.request(rng))))
    await asyncio.gather(*tasks)
    cpu = {role: used - cpu_before.get(role, 0.0) for role, used in cpu_by_role(stack).items()}
    ok = sum(statuses[status] for status in endpoint.answered)
    answered = max(ok, 1)
    return {
        "rate": rate,
        "p50_ms": statistics.median(latencies),
        "p99_ms": percentile(latencies, 0.99),
        "ok": ok,
        "failed": sum(statuses.values()) - ok,
        "with_offer": offered,
        "late": late,
        "per_s": ok / (time.monotonic() - start),
        "statuses": {str(status): count for status, count in statuses.items()},
        "gateway_cpu_ms": 1000 * cpu.get("gateway", 0.0) / answered,
        "stack_cpu_ms": 1000 * sum(v for k, v in cpu.items() if k != "bench") / answered,
        "cpu_ms_by_role": {role: round(1000 * used / answered, 2) for role, used in cpu.items()},
    }


async def measure(stack: Stack, args: argparse.Namespace) -> dict:
    db = await asyncpg.create_pool(stack.settings.database_url, min_size=1, max_size=4)
    connector = aiohttp.TCPConnector(limit=512)
    figures: dict = {}
    async with aiohttp.ClientSession(connector=connector) as session:
        await warm_up(stack, db, session)
        log(f"seeding {args.customers:,} customers into PostgreSQL")
        await seed_customers(db, args.customers)
        log(f"creating {args.offers:,} catalog offers through the API")
        figures["created_in"] = await create_offers(stack, session, args.offers)
        log(f"   in {figures['created_in']:.1f} s")
        endpoints = []
        if "personalized" in args.endpoints:
            endpoints.append(personalized(stack, args.customers))
        if "placement" in args.endpoints:
            log(f"starting {args.flows:,} flows")
            endpoints.append(await placement(stack, session, args.customers, args.flows))
        for endpoint in endpoints:
            figures[endpoint.name] = await measure_endpoint(stack, session, endpoint, args)
    await db.close()
    return figures


async def measure_endpoint(
    stack: Stack, session: aiohttp.ClientSession, endpoint: Endpoint, args: argparse.Namespace
) -> dict:
    """a) and b) for one endpoint."""
    log(f"{endpoint.name}: warming up")
    await paced(stack, session, 200, 2, endpoint)
    log(f"a) {endpoint.name} paced: {args.rate}/s for {args.seconds} s")
    at_rate = await paced(stack, session, args.rate, args.seconds, endpoint)
    log(f"   {at_rate}")
    steps = []
    rate = args.start_rate
    while rate <= args.max_rate:
        log(f"b) {endpoint.name} step at {rate}/s for {args.step_seconds} s")
        step = await paced(stack, session, rate, args.step_seconds, endpoint)
        log(f"   {step}")
        steps.append(step)
        if step["failed"] or (step["p99_ms"] or 0) >= 50 or step["late"] > rate * 0.05:
            break
        rate += args.step
    passing = [
        s
        for s in steps
        if not s["failed"] and (s["p99_ms"] or 0) < 50 and s["late"] <= s["rate"] * 0.05
    ]
    return {
        "paced": at_rate,
        "steps": steps,
        "most": max((s["per_s"] for s in passing), default=None),
    }


def report(figures: dict, args: argparse.Namespace) -> None:
    print("\nResults (2-core machine: broker, PostgreSQL, worker, sink, gateway and this client")
    print(f"share it; {args.customers:,} customers, {args.offers:,} catalog offers).")
    for name in ("personalized_offers", "placement_offers"):
        if name in figures:
            print(f"\n{name}:")
            report_endpoint(figures[name], args)


def report_endpoint(figures: dict, args: argparse.Namespace) -> None:
    paced_figures = figures["paced"]
    print(
        f"a) paced at {args.rate:,}/s for {args.seconds} s: p50 {paced_figures['p50_ms']:.1f} ms,"
        f" p99 {paced_figures['p99_ms']:.1f} ms; {paced_figures['ok']:,} answered"
        f" ({paced_figures['with_offer']:,} with an offer), {paced_figures['failed']} failed,"
        f" {paced_figures['late']} sent late"
    )
    print(
        f"   CPU per decision: gateway {paced_figures['gateway_cpu_ms']:.2f} ms, the whole stack"
        f" (broker, PostgreSQL, worker, sink, gateway) {paced_figures['stack_cpu_ms']:.2f} ms"
        f" ({paced_figures['cpu_ms_by_role']})"
    )
    for step in figures["steps"]:
        print(
            f"   step {step['rate']:,}/s: {step['per_s']:,.0f}/s answered,"
            f" p50 {step['p50_ms']:.1f} ms, p99 {step['p99_ms']:.1f} ms,"
            f" {step['failed']} failed, {step['late']} late"
        )
    most = figures["most"]
    print(f"b) most decisions/s with p99 < 50 ms: {'-' if most is None else f'{most:,.0f}'}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--offers", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=1_000, help="decisions/s in a)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of a)")
    parser.add_argument("--start-rate", type=float, default=500, help="first step of b)")
    parser.add_argument("--step", type=float, default=250, help="increase per step of b)")
    parser.add_argument("--step-seconds", type=float, default=5.0)
    parser.add_argument("--max-rate", type=float, default=5_000, help="last step of b)")
    parser.add_argument("--flows", type=int, default=2_000, help="placement flows asked in turn")
    parser.add_argument(
        "--endpoints",
        nargs="+",
        choices=["personalized", "placement"],
        default=["personalized", "placement"],
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    figures = on_stack(args, measure)
    report(figures, args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Catalog benchmark: uses of catalog offers through the API, and the member's offer list.

Starts its own broker and PostgreSQL (as bench/ingest.py does), the sink, one worker and
one gateway, creates catalog offers through `POST /api/catalog/offers`, and measures:

  a) hot offer: --uses uses of ONE published offer (no stock limit) by different
     members, --concurrency clients at once, through
     `POST /api/members/{id}/offers/{offer}/use`. Each answers once the offer's one
     owner decided and the sink projected the use. Figures: uses/s (200s over wall
     time), p50/p99 of a use's latency.
  b) spread: --offers published offers (created through the API; their creation time is
     printed), then --uses uses spread over them, the same way.
  c) paced: uses at --rate per second for --seconds over the --offers offers; p50/p99 at
     that rate (the target is p99 <= 50 ms at 1,000 uses/s), and how many were late.
  d) list: `GET /api/members/{id}/offers?per_page=100` of a member, one at a time,
     --lists times, with the --offers catalog in place (target: p99 <= 20 ms).

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
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import asyncpg
from ingest import Stack, log, on_stack, warm_up

Figures = dict[str, float | int | None]


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def auth(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.api_key}"}


async def create_offers(
    stack: Stack, session: aiohttp.ClientSession, count: int, concurrency: int
) -> tuple[list[int], float]:
    """``count`` published offers made through the API; their ids and the seconds taken."""
    ids: list[int] = []
    todo = list(range(count))

    async def client() -> None:
        while todo:
            n = todo.pop()
            body = {
                "type": "regular",
                "status": "published",
                "name": {"en": f"Offer {n}", "pl": f"Oferta {n}"},
                "description": {"en": "Ten percent off"},
                "terms": {"discount_percent": 10, "code_pattern": "BENCH-####"},
            }
            async with session.post(
                f"{stack.api}/api/catalog/offers", json=body, headers=auth(stack)
            ) as response:
                answer = await response.json()
                if response.status not in (200, 201):
                    raise RuntimeError(f"creating an offer: {response.status} {answer}")
                ids.append(answer.get("offer", answer)["id"])

    start = time.monotonic()
    await asyncio.gather(*(client() for _ in range(min(concurrency, count))))
    return ids, time.monotonic() - start


async def timed_use(
    stack: Stack, session: aiohttp.ClientSession, member: str, offer_id: int
) -> tuple[int | str, float]:
    """One use through the API: its status (or error) and latency in ms."""
    sent = time.monotonic()
    try:
        async with session.post(
            f"{stack.api}/api/members/{member}/offers/{offer_id}/use",
            json={},
            headers=auth(stack),
        ) as response:
            await response.read()
            code: int | str = response.status
    except aiohttp.ClientError as error:
        code = type(error).__name__
    return code, (time.monotonic() - sent) * 1000


async def closed_loop(
    uses: list[tuple[str, int]],
    concurrency: int,
    use: Callable[[str, int], Awaitable[tuple[int | str, float]]],
) -> tuple[Counter[int | str], list[float], float]:
    """The uses from ``concurrency`` clients, each sending its next when answered."""
    statuses: Counter[int | str] = Counter()
    latencies: list[float] = []
    queue = list(reversed(uses))

    async def client() -> None:
        while queue:
            code, ms = await use(*queue.pop())
            statuses[code] += 1
            latencies.append(ms)

    async def progress() -> None:
        while True:
            await asyncio.sleep(5)
            log(f"  ... {sum(statuses.values()):,}/{len(uses):,} uses answered")

    reporter = asyncio.create_task(progress())
    start = time.monotonic()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    reporter.cancel()
    return statuses, latencies, time.monotonic() - start


def use_figures(
    prefix: str, statuses: Counter[int | str], latencies: list[float], elapsed: float
) -> Figures:
    return {
        f"{prefix}_uses_per_s": statuses[200] / elapsed,
        f"{prefix}_p50_ms": statistics.median(latencies) if latencies else None,
        f"{prefix}_p99_ms": percentile(latencies, 0.99),
        f"{prefix}_200": statuses[200],
        f"{prefix}_other": sum(statuses.values()) - statuses[200],
        f"{prefix}_seconds": elapsed,
    }


async def phase_hot(
    stack: Stack, session: aiohttp.ClientSession, args: argparse.Namespace
) -> Figures:
    (offer,), _ = await create_offers(stack, session, 1, 1)
    log(f"a) hot offer: {args.uses:,} uses of offer {offer} from {args.concurrency} clients")
    uses = [(f"hot-{n}", offer) for n in range(args.uses)]
    statuses, latencies, elapsed = await closed_loop(
        uses, args.concurrency, lambda m, o: timed_use(stack, session, m, o)
    )
    log(f"   answers: {dict(statuses)}")
    return use_figures("hot", statuses, latencies, elapsed)


async def phase_spread(
    stack: Stack, session: aiohttp.ClientSession, args: argparse.Namespace, offers: list[int]
) -> Figures:
    log(f"b) spread: {args.uses:,} uses over {len(offers):,} offers, {args.concurrency} clients")
    uses = [(f"spread-{n}", offers[n % len(offers)]) for n in range(args.uses)]
    statuses, latencies, elapsed = await closed_loop(
        uses, args.concurrency, lambda m, o: timed_use(stack, session, m, o)
    )
    log(f"   answers: {dict(statuses)}")
    return use_figures("spread", statuses, latencies, elapsed)


async def phase_paced(
    stack: Stack, session: aiohttp.ClientSession, args: argparse.Namespace, offers: list[int]
) -> Figures:
    total = int(args.rate * args.seconds)
    log(f"c) paced: {args.rate:,}/s for {args.seconds} s ({total:,} uses)")
    statuses: Counter[int | str] = Counter()
    latencies: list[float] = []
    late = 0

    async def one(n: int) -> None:
        code, ms = await timed_use(stack, session, f"paced-{n}", offers[n % len(offers)])
        statuses[code] += 1
        latencies.append(ms)

    tasks = []
    start = time.monotonic()
    for n in range(total):
        due = start + n / args.rate
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        elif wait < -0.05:
            late += 1
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - start
    log(f"   answers: {dict(statuses)}")
    return {
        **use_figures("paced", statuses, latencies, elapsed),
        "paced_sent_late": late,
    }


async def phase_list(
    stack: Stack, session: aiohttp.ClientSession, args: argparse.Namespace
) -> Figures:
    log(f"d) list: {args.lists:,} member lists (per_page=100), one at a time")
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    shown = 0
    for n in range(args.lists):
        sent = time.monotonic()
        async with session.get(
            f"{stack.api}/api/members/list-{n % 50}/offers",
            params={"per_page": "100", "include_pagination_info": "true"},
            headers={**auth(stack), "Accept-Language": "pl"},
        ) as response:
            body = await response.read()
            statuses[response.status] += 1
        latencies.append((time.monotonic() - sent) * 1000)
        if n == 0 and response.status == 200:
            shown = len(json.loads(body)["offers"])
    return {
        "list_p50_ms": statistics.median(latencies) if latencies else None,
        "list_p99_ms": percentile(latencies, 0.99),
        "list_200": statuses[200],
        "list_offers_shown": shown,
    }


async def measure(stack: Stack, args: argparse.Namespace) -> Figures:
    db = await asyncpg.create_pool(stack.settings.database_url, min_size=1, max_size=2)
    connector = aiohttp.TCPConnector(limit=max(args.concurrency * 2, 256))
    async with aiohttp.ClientSession(connector=connector) as session:
        await warm_up(stack, db, session)
        log("stack is up; measuring")
        figures = await phase_hot(stack, session, args)
        log(f"b) creating {args.offers:,} offers through the API")
        offers, created_in = await create_offers(stack, session, args.offers, args.concurrency)
        log(f"   {len(offers):,} offers in {created_in:.1f} s")
        figures |= {"offers": len(offers), "create_seconds": created_in}
        figures |= await phase_spread(stack, session, args, offers)
        if args.rate:
            figures |= await phase_paced(stack, session, args, offers)
        figures |= await phase_list(stack, session, args)
    await db.close()
    return figures


def ms(value: float | int | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def report(figures: Figures, args: argparse.Namespace) -> None:
    print("\nResults (2-core machine: broker, PostgreSQL, worker, sink, gateway and this client")
    print("share it; figures are noisy).\n")
    for prefix, title in (
        ("hot", f"a) one hot offer, {args.concurrency} clients"),
        ("spread", f"b) {figures['offers']:,} offers, {args.concurrency} clients"),
        ("paced", f"c) paced at {args.rate:,}/s for {args.seconds} s"),
    ):
        if f"{prefix}_uses_per_s" not in figures:
            continue
        print(
            f"{title}: {figures[f'{prefix}_uses_per_s']:,.1f} uses/s;"
            f" p50 {ms(figures[f'{prefix}_p50_ms'])}, p99 {ms(figures[f'{prefix}_p99_ms'])};"
            f" {figures[f'{prefix}_200']:,} x 200, {figures[f'{prefix}_other']:,} other"
        )
    if "paced_sent_late" in figures:
        print(f"   uses sent more than 50 ms late by this client: {figures['paced_sent_late']:,}")
    print(
        f"   ({figures['offers']:,} offers created through the API"
        f" in {figures['create_seconds']:.1f} s)"
    )
    print(
        f"d) member list of the {figures['offers']:,}-offer catalog (per_page=100,"
        f" {figures['list_offers_shown']} shown): p50 {ms(figures['list_p50_ms'])},"
        f" p99 {ms(figures['list_p99_ms'])}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--uses", type=int, default=2000, help="uses in a) and in b)")
    parser.add_argument("--offers", type=int, default=1000, help="catalog offers in b), c), d)")
    parser.add_argument("--concurrency", type=int, default=32, help="clients in a) and b)")
    parser.add_argument("--rate", type=int, default=1000, help="uses per second in c) (0 skips)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of c)")
    parser.add_argument("--lists", type=int, default=500, help="member lists timed in d)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    figures = on_stack(args, measure)
    report(figures, args)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

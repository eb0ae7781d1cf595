"""A downstream consumer of ``proffer.offers``: every offer's changes, in order, once.

Run it beside Proffer Stream to follow offers as they are generated, approved, sent,
seen, clicked, redeemed or expire (``schemas/proffer.offers.v1.json`` is the contract):

    python examples/offers_consumer.py --bootstrap-servers 127.0.0.1:9092

It needs only ``aiokafka``. Delivery is at least once, so a consumer must expect an
event twice: each carries its ``event_id`` and the offer's ``version`` (one more per
change), and this one applies an event only when it moves the offer's version on, as
Proffer's own sink does. Records are keyed by tenant and customer, so one customer's
events arrive in order within a partition.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from aiokafka import AIOKafkaConsumer

CHANGES = {
    "offer.generated",
    "offer.approved",
    "offer.sent",
    "offer.seen",
    "offer.clicked",
    "offer.redeemed",
    "offer.expired",
}


class Offers:
    """The latest version of each offer seen, by tenant and offer id."""

    def __init__(self) -> None:
        self.versions: dict[tuple[str, int], int] = {}

    def describe(self, event: dict[str, Any]) -> str | None:
        """A line for an event that tells something new; None for a repeat or older one."""
        kind, offer_id = event["event_type"], event.get("offer_id")
        if kind == "offer.suppressed":
            reasons = "; ".join((event.get("trace") or {}).get("suppressed") or [])
            return f"{kind} customer {event['customer_id']}: {reasons or 'no reason given'}"
        if kind == "offer.redemption_rejected":
            return f"{kind} offer {offer_id} customer {event['customer_id']}: {event['reason']}"
        if kind not in CHANGES or offer_id is None:
            return None  # a type this consumer does not know yet: skip it, do not fail
        key = (event["tenant_id"], offer_id)
        if event["version"] <= self.versions.get(key, 0):
            return None  # delivered again, or older than what we have
        self.versions[key] = event["version"]
        moved = f"{event.get('previous_status') or '-'} -> {event['status']}"
        return (
            f"{kind} offer {offer_id} customer {event['customer_id']}: {moved}"
            f" v{event['version']} by {event['cause']}"
        )


async def follow(args: argparse.Namespace) -> int:
    """Print each new change until stopped, or until ``--max-events`` lines."""
    consumer = AIOKafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap_servers,
        group_id=args.group,
        auto_offset_reset="earliest" if args.from_beginning else "latest",
        enable_auto_commit=True,
    )
    offers = Offers()
    printed = 0
    await consumer.start()
    try:
        async for record in consumer:
            line = offers.describe(json.loads(record.value))
            if line is None:
                continue
            print(line, flush=True)
            printed += 1
            if args.max_events and printed >= args.max_events:
                return 0
    finally:
        await consumer.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    parser.add_argument("--topic", default="proffer.offers", help="with your topic prefix")
    parser.add_argument("--group", default="offers-example", help="consumer group (commits)")
    parser.add_argument(
        "--from-beginning", action="store_true", help="read the topic's whole history"
    )
    parser.add_argument("--max-events", type=int, default=0, help="stop after N lines")
    return asyncio.run(follow(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())

"""Chaos for the offer lifecycle: kill -9 of the worker while commands are being applied.

Every accepted command (one on ``proffer.offer-requests``) must be applied exactly once:
each offer ends redeemed at version 4 with one event per version, every command has
an applied outcome, and no event on the topic disagrees with another copy of itself.
"""

import asyncio
from datetime import UTC, datetime

import pytest
from support import messages_on_topic, produce_paced, wait_for

from proffer_stream.core.identity import offer_id, partition_key
from proffer_stream.kafka.topics import topics_for
from proffer_stream.offers.models import OfferCommand, OfferRequest
from proffer_stream.signals.fold import new_signals

pytestmark = pytest.mark.chaos

TENANT = "acme"
CUSTOMERS = 300
STEPS = ("approved", "sent", "redeemed")


def request(n: int) -> OfferRequest:
    customer = f"c{n}"
    signals = new_signals(TENANT, customer).model_copy(update={"email": f"{customer}@x.io"})
    return OfferRequest(
        request_id=f"req-{n}",
        tenant_id=TENANT,
        external_customer_id=customer,
        source="api",
        requested_at=datetime.now(UTC),
        signals=signals,
    )


def command(n: int, status: str) -> OfferCommand:
    return OfferCommand(
        command_id=f"cmd-{n}-{status}",
        tenant_id=TENANT,
        external_customer_id=f"c{n}",
        action="transition",
        offer_id=offer_id(TENANT, f"req-{n}"),
        status=status,
        cause="api key 'chaos'",
        issued_at=datetime.now(UTC),
    )


def record(message: OfferRequest | OfferCommand) -> tuple[bytes, bytes]:
    return partition_key(TENANT, message.external_customer_id), message.model_dump_json().encode()


async def counts(db):
    row = await db.fetchrow(
        "SELECT (SELECT count(*) FROM offers WHERE status = 'redeemed' AND version = 4)"
        " AS redeemed,"
        " (SELECT count(*) FROM offer_events WHERE event_type <> 'offer.generated') AS changes,"
        " (SELECT count(*) FROM offer_commands WHERE outcome = 'applied') AS applied,"
        " (SELECT count(*) FROM offer_commands WHERE outcome <> 'applied') AS rejected"
    )
    return dict(row)


async def events_on_topic(settings):
    """Each event id on the topic, with the distinct (type, version, status) of its copies."""
    seen: dict[str, set[tuple]] = {}
    for event in await messages_on_topic(settings, topics_for(settings).offers.name):
        copy = (event["event_type"], event["version"], event["status"])
        seen.setdefault(event["event_id"], set()).add(copy)
    return seen


async def test_kill_9_while_commands_apply_loses_none_and_applies_none_twice(
    settings, db, processes
):
    processes.start_pipeline(settings)
    topic = topics_for(settings).offer_requests.name
    await produce_paced(settings, topic, [record(request(n)) for n in range(CUSTOMERS)], 1000)
    await wait_for(
        lambda: db.fetchval("SELECT count(*) FROM offers"), lambda c: c == CUSTOMERS, what="offers"
    )

    # Each customer's commands in order on their partition, as the gateway would send them.
    commands = [record(command(n, step)) for step in STEPS for n in range(CUSTOMERS)]
    producing = asyncio.create_task(produce_paced(settings, topic, commands, per_second=300))
    await wait_for(lambda: counts(db), lambda c: c["applied"] >= 250, what="progress")
    processes.kill("worker")
    await asyncio.sleep(1)
    processes.start("worker", settings)
    await producing

    expected = {
        "redeemed": CUSTOMERS,
        "changes": CUSTOMERS * len(STEPS),
        "applied": CUSTOMERS * len(STEPS),
        "rejected": 0,
    }
    await wait_for(lambda: counts(db), lambda c: c == expected, timeout=120, what="all applied")
    await asyncio.sleep(3)  # nothing more trickles in
    assert await counts(db) == expected
    versions = await db.fetch(
        "SELECT offer_id, array_agg(version ORDER BY version) AS versions FROM offer_events"
        " GROUP BY offer_id"
    )
    assert {tuple(r["versions"]) for r in versions} == {(1, 2, 3, 4)}
    copies = await events_on_topic(settings)
    assert len(copies) == CUSTOMERS * (1 + len(STEPS))
    assert all(len(variants) == 1 for variants in copies.values())  # replays re-send the same
    assert processes.stop("worker") == 0

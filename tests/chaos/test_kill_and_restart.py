"""Chaos: kill -9 mid-stream, and a broker that comes back empty."""

import asyncio
import json
from decimal import Decimal

import pytest
from aiokafka import AIOKafkaProducer
from support import kept_port, produce_paced, wait_for

from proffer_stream.core.identity import partition_key
from proffer_stream.db import keys
from proffer_stream.kafka.topics import ensure_topics, topics_for
from proffer_stream.local.embedded import EmbeddedBroker

pytestmark = pytest.mark.chaos

TOTAL_EVENTS = 20_000
CUSTOMERS = 200


@pytest.fixture(autouse=True)
async def tenant_exists(db):
    """The tenant has a key: the worker dead-letters the records of a tenant without one."""
    await keys.create_key(db, "acme", "chaos")


def purchases(total):
    """One event per record, no event ids: only the offsets can keep the counts exact."""
    records = []
    for n in range(total):
        customer = f"c{n % CUSTOMERS}"
        value = {
            "tenant_id": "acme",
            "customer": {"id": customer},
            "events": [{"type": "purchase", "data": {"amount": 1}}],
        }
        records.append((partition_key("acme", customer), json.dumps(value).encode()))
    return records


async def totals(db):
    row = await db.fetchrow(
        "SELECT (SELECT coalesce(sum(event_count), 0) FROM customers) AS counted,"
        " (SELECT coalesce(sum((signals->>'purchase_total')::numeric), 0) FROM customers) AS spent,"
        " (SELECT count(*) FROM events) AS stored"
    )
    return dict(row)


async def test_kill_9_mid_stream_loses_and_duplicates_nothing(settings, db, processes):
    processes.start_pipeline(settings)
    producing = asyncio.create_task(
        produce_paced(
            settings, topics_for(settings).events.name, purchases(TOTAL_EVENTS), per_second=2_000
        )
    )
    await wait_for(lambda: totals(db), lambda t: t["counted"] >= 3_000, what="progress")
    processes.kill("worker")
    processes.kill("sink")
    await asyncio.sleep(1)
    processes.start("worker", settings)
    processes.start("sink", settings)
    await producing
    expected = {"counted": TOTAL_EVENTS, "spent": TOTAL_EVENTS, "stored": TOTAL_EVENTS}
    await wait_for(lambda: totals(db), lambda t: t == expected, timeout=120, what="exact totals")
    await asyncio.sleep(3)  # nothing more trickles in
    assert await totals(db) == expected
    assert processes.stop("worker") == 0
    assert processes.stop("sink") == 0


async def test_an_empty_broker_after_restart_restores_profiles_from_postgres(
    settings, db, processes
):
    """The embedded broker keeps nothing across restarts; the workers restore from PostgreSQL."""
    broker = EmbeddedBroker(kept_port())
    own = settings.model_copy(update={"kafka_bootstrap_servers": broker.start()})
    try:
        await ensure_topics(own)
        processes.start("worker", own)
        processes.start("sink", own)
        first = {
            "tenant_id": "acme",
            "customer": {"id": "u1", "email": "u1@x.io"},
            "events": [
                {"id": "a", "type": "purchase", "data": {"amount": 10}},
                {"id": "b", "type": "page_view", "data": {"page": "/pricing"}},
            ],
        }
        await produce_records(own, [first])
        await wait_for(
            lambda: totals(db),
            lambda t: t["counted"] == 2 and t["stored"] == 2,
            what="first events",
        )
        processes.stop("worker")
        processes.stop("sink")
        broker.stop()

        broker = EmbeddedBroker(broker.port)
        broker.start()
        await ensure_topics(own)
        processes.start("worker", own)
        processes.start("sink", own)
        second = {
            "tenant_id": "acme",
            "customer": {"id": "u1"},
            "events": [
                {"id": "b", "type": "page_view", "data": {"page": "/pricing"}},
                {"id": "c", "type": "purchase", "data": {"amount": 5}},
            ],
        }
        await produce_records(own, [second])
        await wait_for(
            lambda: totals(db),
            lambda t: t["counted"] == 3 and t["stored"] == 3,
            what="profile continued, re-sent id counted once",
        )
        signals = json.loads(await db.fetchval("SELECT signals FROM customers"))
        assert signals["purchase_count"] == 2
        assert Decimal(signals["purchase_total"]) == 15
        assert signals["page_views"] == {"/pricing": 1}
        assert signals["email"] == "u1@x.io"
    finally:
        processes.stop_all()
        broker.stop()


def clicks(customer, ids):
    return {
        "tenant_id": "acme",
        "customer": {"id": customer},
        "events": [{"id": event_id, "type": "click"} for event_id in ids],
    }


async def test_a_resent_request_counts_once_after_many_events_and_a_kill(settings, db, processes):
    """Issue 7, item 6: ids are remembered for days, not as the last few hundred."""
    processes.start_pipeline(settings)
    request = clicks("u1", [f"r{i}" for i in range(1000)])
    others = [clicks("u1", [f"o{n}-{i}" for i in range(500)]) for n in range(4)]
    await produce_records(settings, [request, *others])
    await wait_for(lambda: totals(db), lambda t: t["counted"] == 3000, what="first 3,000")
    processes.kill("worker")
    processes.start("worker", settings)
    await produce_records(settings, [request, clicks("u1", ["last"])])
    expected = {"counted": 3001, "spent": 0, "stored": 3001}
    await wait_for(lambda: totals(db), lambda t: t == expected, what="the re-send counted once")
    await asyncio.sleep(2)
    assert await totals(db) == expected


async def produce_records(settings, values):
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(
                topics_for(settings).events.name,
                key=partition_key(value["tenant_id"], value["customer"]["id"]),
                value=json.dumps(value).encode(),
            )
    finally:
        await producer.stop()

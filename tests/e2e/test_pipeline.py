"""End to end: sink, worker and gateway run as processes; events go in over HTTP and Kafka."""

import base64
import json
from decimal import Decimal

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from support import wait_for

from proffer_stream.core.identity import customer_id
from proffer_stream.db import keys
from proffer_stream.kafka.topics import topics_for

pytestmark = pytest.mark.e2e


def api(settings, key):
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{settings.gateway_port}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )


async def customer_when(client, external_id, done):
    async def probe():
        response = await client.get(f"/api/customers/external/{external_id}")
        return response.json()

    result = await wait_for(
        probe, lambda body: body.get("success") and done(body["customer"]), what=external_id
    )
    return result["customer"]


async def test_http_events_become_signals_and_rows(settings, db, processes):
    acme = (await keys.create_key(db, "acme", "e2e")).key
    other = (await keys.create_key(db, "other", "e2e")).key
    processes.start_pipeline(settings)
    body = {
        "customer": {
            "id": "user_12345",
            "email": "sarah@example.com",
            "name": "Sarah Chen",
            "metadata": {"plan": "free"},
        },
        "events": [
            {
                "id": "pv-1",
                "type": "page_view",
                "data": {"page": "/pricing", "duration_seconds": 45},
            },
            {"id": "pv-2", "type": "page_view", "data": {"page": "/pricing"}},
            {"id": "pv-3", "type": "page_view", "data": {"page": "/features"}},
            {"id": "buy-1", "type": "purchase", "data": {"amount": 29.99, "product": "starter"}},
            {"id": "cart-1", "type": "cart_abandon", "data": {"items": 2, "total": 80}},
            {
                "id": "feat-1",
                "type": "feature_use",
                "data": {"feature": "reports", "times_used": 8},
            },
            {"id": "sign-1", "type": "signup", "data": {"plan": "free", "source": "ads"}},
            {"type": "webinar_joined", "data": {"topic": "growth"}},
        ],
    }
    async with api(settings, acme) as client:
        response = await client.post("/api/webhook/events", json=body)
        assert response.status_code == 200, response.text
        internal_id = response.json()["customer_id"]
        assert internal_id == customer_id("acme", "user_12345")

        customer = await customer_when(
            client, "user_12345", lambda c: c["signals"]["event_count"] == 8
        )
        signals = customer["signals"]
        assert customer["id"] == internal_id
        assert (customer["email"], customer["name"]) == ("sarah@example.com", "Sarah Chen")
        assert signals["counts_by_type"]["page_view"] == 3
        assert signals["page_views"] == {"/pricing": 2, "/features": 1}
        assert signals["distinct_pages"] == 2
        # money: exact, a decimal string
        assert (signals["purchase_count"], signals["purchase_total"]) == (1, "29.99")
        assert (signals["cart_abandon_count"], Decimal(signals["cart_abandon_total"])) == (1, 80)
        assert signals["features_used"] == {"reports": 8}
        assert signals["signed_up"] and signals["signup_plan"] == "free"
        assert signals["windows"]["last_24h"]["events"] == 8
        assert signals["windows"]["last_7d"]["by_type"]["page_view"] == 3

        by_id = (await client.get(f"/api/customers/{internal_id}")).json()["customer"]
        assert by_id["external_id"] == "user_12345"

        async def stored_events():
            return (await client.get(f"/api/customers/{internal_id}/events?limit=100")).json()

        events = await wait_for(stored_events, lambda b: len(b["events"]) == 8, what="8 rows")
        assert {e["id"] for e in events["events"]} >= {"pv-1", "buy-1", "sign-1"}

        # The same events again (a client retry): counted once, stored once.
        again = {
            **body,
            "events": [
                *body["events"][:7],
                {"id": "pv-4", "type": "page_view", "data": {"page": "/pricing"}},
            ],
        }
        assert (await client.post("/api/webhook/events", json=again)).status_code == 200
        customer = await customer_when(
            client, "user_12345", lambda c: c["signals"]["event_count"] == 9
        )
        assert customer["signals"]["page_views"]["/pricing"] == 3
        assert customer["signals"]["purchase_count"] == 1

    rows = await db.fetch("SELECT id, type, data, occurred_at, received_at FROM events")
    assert len(rows) == 9
    purchase = next(r for r in rows if r["id"] == "buy-1")
    assert json.loads(purchase["data"])["amount"] == 29.99
    assert purchase["received_at"] is not None

    async with api(settings, other) as client:
        assert (await client.get(f"/api/customers/{internal_id}")).status_code == 404
        assert (await client.get("/api/customers/external/user_12345")).status_code == 404
        assert (await client.get("/api/customers")).json()["customers"] == []


async def produce(settings, records):
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topics_for(settings).events.name, key=key, value=value)
        await producer.flush()
    finally:
        await producer.stop()


async def dead_letters(settings, count):
    consumer = AIOKafkaConsumer(
        topics_for(settings).deadletter.name,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    letters = []
    try:

        async def probe():
            fetched = await consumer.getmany(timeout_ms=500)
            letters.extend(json.loads(r.value) for batch in fetched.values() for r in batch)
            return len(letters)

        await wait_for(probe, lambda n: n >= count, what=f"{count} dead letters")
        return letters
    finally:
        await consumer.stop()


async def test_direct_kafka_producers_and_dead_letters(settings, db, processes):
    key = (await keys.create_key(db, "acme", "e2e")).key
    processes.start_pipeline(settings)
    good = {
        "tenant_id": "acme",
        "customer": {"id": "kafka-user"},
        "events": [
            {"type": "page_view", "data": {"page": "/pricing"}},
            {"type": "purchase", "data": {"amount": 5}},
        ],
    }
    bad = [
        (b"acme:x", b"{not json"),
        (b"acme:x", json.dumps({"tenant_id": "acme", "events": [{"type": "x"}]}).encode()),
        (b"wrong-key", json.dumps({**good, "customer": {"id": "x"}}).encode()),
        (
            b"acme:x",
            json.dumps(
                {
                    **good,
                    "customer": {"id": "x"},
                    "events": [{"type": "purchase", "data": {"amount": "free"}}],
                }
            ).encode(),
        ),
    ]
    await produce(settings, [*bad, (b"acme:kafka-user", json.dumps(good).encode())])

    async with api(settings, key) as client:
        customer = await customer_when(
            client, "kafka-user", lambda c: c["signals"]["event_count"] == 2
        )
        assert Decimal(customer["signals"]["purchase_total"]) == 5
    assert (
        await wait_for(
            lambda: db.fetchval("SELECT count(*) FROM events"), lambda n: n == 2, what="2 rows"
        )
        == 2
    )

    letters = await dead_letters(settings, 4)
    by_value = {base64.b64decode(letter["value_b64"]): letter for letter in letters}
    assert [by_value[value]["reason"] for _, value in bad] == [
        "invalid_json",
        "invalid_message",
        "wrong_key",
        "invalid_message",
    ]
    assert "customer" in by_value[bad[1][1]]["error"]
    assert "acme:x" in by_value[bad[2][1]]["error"]
    assert "data.amount" in by_value[bad[3][1]]["error"]
    assert {letter["source_topic"] for letter in letters} == {topics_for(settings).events.name}
    assert all(letter["stage"] == "signals-agent" and letter["offset"] >= 0 for letter in letters)
    processes.assert_alive()

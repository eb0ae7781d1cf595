"""Poison: what PostgreSQL, JSON or a record cannot hold is refused or dead-lettered,
and never stops, wedges or drops another customer's events."""

import base64
import json
from decimal import Decimal

import pytest
from confluent_kafka import Producer
from support import wait_for
from test_pipeline import api, customer_when, dead_letters, produce

from proffer_stream.db import keys
from proffer_stream.kafka.topics import topics_for

pytestmark = pytest.mark.e2e

BIG_METADATA = {"blob": "x" * 9000}

# name -> (customer, event), each something the pipeline cannot store or count
POISON = {
    "nul_customer_id": ({"id": "bad\u0000id"}, {"type": "click"}),
    "nul_in_data": ({"id": "p1"}, {"type": "click", "data": {"note": "a\u0000b"}}),
    "nul_in_data_key": ({"id": "p2"}, {"type": "click", "data": {"a\u0000": 1}}),
    "nul_in_metadata": ({"id": "p3", "metadata": {"plan": "\u0000"}}, {"type": "click"}),
    "far_timestamp": ({"id": "p4"}, {"type": "click", "occurred_at": "9999-12-31T23:59:59-05:00"}),
    "huge_amount": ({"id": "p5"}, {"type": "purchase", "data": {"amount": 1.7e308}}),
    "huge_number_in_data": ({"id": "p6"}, {"type": "custom", "data": {"n": 10**30}}),
    "metadata_too_big": ({"id": "p7", "metadata": BIG_METADATA}, {"type": "click"}),
}
RAW_POISON = {  # JSON that json.dumps will not write
    "infinity": '{"customer": {"id": "p8"}, "events": [{"type": "purchase",'
    ' "data": {"amount": Infinity}}]}',
    "overflowing_number": '{"customer": {"id": "p9"}, "events": [{"type": "purchase",'
    ' "data": {"amount": 1e309}}]}',
}
EXPECTED_LOC = {
    "nul_customer_id": "customer.id",
    "nul_in_data": "data",
    "nul_in_data_key": "data",
    "nul_in_metadata": "customer.metadata",
    "far_timestamp": "occurred_at",
    "huge_amount": "data",
    "huge_number_in_data": "data",
    "metadata_too_big": "customer.metadata",
    "infinity": "data",
    "overflowing_number": "data",
}
GOOD = {"customer": {"id": "good"}, "events": [{"type": "purchase", "data": {"amount": 3}}]}


def bodies():
    for name, (customer, event) in POISON.items():
        yield name, json.dumps({"customer": customer, "events": [event]})
    yield from RAW_POISON.items()


async def test_poison_over_http_is_a_422_naming_the_field(settings, db, processes):
    key = (await keys.create_key(db, "acme", "poison")).key
    processes.start_pipeline(settings)
    async with api(settings, key) as client:
        for name, body in bodies():
            response = await client.post(
                "/api/webhook/events", content=body, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 422, (name, response.text)
            locs = " ".join(d["loc"] for d in response.json()["error"]["details"])
            assert EXPECTED_LOC[name] in locs, (name, locs)
        assert (await client.post("/api/webhook/events", json=GOOD)).status_code == 200
        customer = await customer_when(client, "good", lambda c: c["signals"]["event_count"] == 1)
        assert Decimal(customer["signals"]["purchase_total"]) == 3
    processes.assert_alive()


def record(body: str) -> tuple[bytes, bytes]:
    value = json.loads(body)
    value["tenant_id"] = "acme"
    customer = value["customer"]["id"]
    raw = json.dumps(value) if "Infinity" not in body and "1e309" not in body else None
    if raw is None:  # keep the token json.dumps would rewrite
        raw = body.replace('{"customer"', '{"tenant_id": "acme", "customer"', 1)
    return f"acme:{customer}".encode(), raw.encode()


async def test_poison_over_kafka_is_dead_lettered_and_the_batch_goes_on(settings, db, processes):
    key = (await keys.create_key(db, "acme", "poison")).key
    processes.start_pipeline(settings)
    poison = [record(body) for _, body in bodies()]
    too_large = (b"acme:big", json.dumps({**GOOD, "tenant_id": "acme", "pad": "x" * 900_000}))
    good = [(b"acme:good", json.dumps({**GOOD, "tenant_id": "acme"}).encode())]
    await produce(settings, [*poison, (too_large[0], too_large[1].encode()), *good])
    async with api(settings, key) as client:
        await customer_when(client, "good", lambda c: c["signals"]["event_count"] == 1)
    letters = await dead_letters(settings, len(poison) + 1)
    assert len(letters) == len(poison) + 1
    assert all(letter["stage"] == "signals-agent" for letter in letters)
    big = [letter for letter in letters if letter["value_size"] > 800_000]
    assert len(big) == 1 and big[0]["reason"] == "invalid_message" and big[0]["truncated"]
    assert len(base64.b64decode(big[0]["value_b64"])) == 65_536
    await wait_for(
        lambda: db.fetchval("SELECT count(*) FROM events"), lambda n: n == 1, what="1 row"
    )
    processes.assert_alive()


async def test_metadata_merged_past_its_bound_keeps_the_profile_flowing(settings, db, processes):
    key = (await keys.create_key(db, "acme", "poison")).key
    processes.start_pipeline(settings)
    async with api(settings, key) as client:
        for n in range(150):  # 150 x 8 KB of distinct keys would make a 1.2 MB profile
            body = {
                "customer": {"id": "meta", "metadata": {f"k{n}": "v" * 8000}},
                "events": [{"type": "click"}],
            }
            assert (await client.post("/api/webhook/events", json=body)).status_code == 200
        customer = await customer_when(client, "meta", lambda c: c["signals"]["event_count"] == 150)
        assert 0 < len(json.dumps(customer["metadata"])) <= 65_536
    processes.assert_alive()


async def test_a_librdkafka_producer_with_its_default_partitioner_is_counted_exactly(
    settings, db, processes
):
    """CRC32 (librdkafka) and murmur2 (the gateway) put one customer on two partitions."""
    key = (await keys.create_key(db, "acme", "mixed")).key
    processes.start_pipeline(settings)
    customers = [f"mixed-{n}" for n in range(20)]
    async with api(settings, key) as client:
        for customer in customers:
            body = {"customer": {"id": customer}, "events": [{"type": "click"}] * 3}
            assert (await client.post("/api/webhook/events", json=body)).status_code == 200
        producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
        for n in range(200):
            customer = customers[n % len(customers)]
            value = {"tenant_id": "acme", "customer": {"id": customer}, "events": [{"type": "x"}]}
            producer.produce(
                topics_for(settings).events.name,
                key=f"acme:{customer}".encode(),
                value=json.dumps(value).encode(),
            )
        assert producer.flush(30) == 0
        for customer in customers:
            await customer_when(client, customer, lambda c: c["signals"]["event_count"] >= 13)
    expected = 20 * 3 + 200
    await wait_for(
        lambda: db.fetchval("SELECT sum(event_count) FROM customers"),
        lambda n: n == expected,
        what=f"{expected} counted",
    )
    await wait_for(
        lambda: db.fetchval("SELECT count(*) FROM events"),
        lambda n: n == expected,
        what=f"{expected} rows",
    )
    processes.assert_alive()


async def test_what_http_refuses_is_dead_lettered_over_kafka_with_its_reason(
    settings, db, processes
):
    """Issue 21, item 7: one validation on both paths. More events than a request may
    carry, a record over what the gateway writes, and a tenant without a key are refused
    over HTTP (413, 413, 401); over Kafka each is dead-lettered and nothing is stored."""
    small = settings.model_copy(update={"max_body_bytes": 20_000, "max_events_per_request": 10})
    key = (await keys.create_key(db, "acme", "poison")).key
    processes.start_pipeline(small)

    def value(tenant, customer, events, **extra):
        body = {"tenant_id": tenant, "customer": {"id": customer, **extra}, "events": events}
        return json.dumps(body).encode()

    refused = {
        "too_many_events": (b"acme:many", value("acme", "many", [{"type": "click"}] * 11)),
        "too_large": (b"acme:big", value("acme", "big", [{"type": "x"}], name="x" * 40_001)),
        "unknown_tenant": (b"ghost:g1", value("ghost", "g1", [{"type": "click"}])),
    }
    good = (b"acme:good", value("acme", "good", [{"type": "click"}] * 10))
    await produce(small, [*refused.values(), good])
    async with api(small, key) as client:
        await customer_when(client, "good", lambda c: c["signals"]["event_count"] == 10)
        over_http = await client.post(
            "/api/webhook/events",
            json={"customer": {"id": "many"}, "events": [{"type": "click"}] * 11},
        )
        assert over_http.status_code == 413
    letters = await dead_letters(small, len(refused))
    assert sorted(letter["reason"] for letter in letters) == sorted(refused)
    for letter in letters:
        assert base64.b64decode(letter["value_b64"]) == refused[letter["reason"]][1][:65_536]
    too_large = next(letter for letter in letters if letter["reason"] == "too_large")
    assert "at most 40000" in too_large["error"]
    await wait_for(
        lambda: db.fetch("SELECT DISTINCT customer_id FROM events"),
        lambda rows: len(rows) == 1,
        what="only the good customer's events",
    )
    assert await db.fetchval("SELECT count(*) FROM events") == 10
    assert await db.fetchval("SELECT count(*) FROM customers") == 1
    processes.assert_alive()

"""The gateway in-process, against the real broker and PostgreSQL."""

import asyncio
import json
import time
from contextlib import asynccontextmanager

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from proffer_stream.api.app import create_app
from proffer_stream.core.identity import customer_id
from proffer_stream.db import keys
from proffer_stream.kafka.lag import fetched_log_ends, group_lag, topic_partitions
from proffer_stream.kafka.topics import ensure_topics, topics_for, worker_app_id
from proffer_stream.local.embedded import EmbeddedBroker, free_port

pytestmark = pytest.mark.integration


@asynccontextmanager
async def client_for(settings):
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


@asynccontextmanager
async def consumers_serving(settings):
    """Stand-ins for the worker and the sink: a member of each one's consumer group that
    reads nothing and commits nothing."""
    topics = topics_for(settings)
    members = [
        AIOKafkaConsumer(
            *[t.name for t in topics.worker_inputs()],
            bootstrap_servers=settings.bootstrap_servers,
            group_id=worker_app_id(settings.topic_prefix, settings.worker_id),
            enable_auto_commit=False,
        ),
        AIOKafkaConsumer(
            *[t.name for t in topics.sink_inputs()],
            bootstrap_servers=settings.bootstrap_servers,
            group_id=settings.sink_group,
            enable_auto_commit=False,
        ),
    ]
    for member in members:
        await member.start()
    try:
        for member in members:
            deadline = time.monotonic() + 60
            while not member.assignment():
                assert time.monotonic() < deadline, "the group never assigned its partitions"
                await asyncio.sleep(0.1)
            member.pause(*member.assignment())
        yield
    finally:
        for member in members:
            await member.stop()


@pytest.fixture
async def api_key(db):
    return (await keys.create_key(db, "acme", "test")).key


def auth(key):
    return {"Authorization": f"Bearer {key}"}


async def read_records(settings, count, timeout_ms=10_000):
    consumer = AIOKafkaConsumer(
        topics_for(settings).events.name,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    try:
        records = []
        while len(records) < count:
            fetched = await consumer.getmany(timeout_ms=timeout_ms)
            if not fetched:
                break
            records += [r for batch in fetched.values() for r in batch]
        return records
    finally:
        await consumer.stop()


async def test_a_webhook_call_becomes_one_keyed_record(settings, api_key):
    body = {
        "customer": {"id": "user_001", "email": "alex@startup.com", "name": "Alex Rivera"},
        "events": [
            {"type": "page_view", "data": {"page": "/pricing"}},
            {"id": "evt-1", "type": "click", "data": {"element": "start_trial"}},
            {"type": "feature_use", "data": {"feature": "reports", "times_used": 8}},
        ],
    }
    async with client_for(settings) as client:
        response = await client.post("/api/webhook/events", json=body, headers=auth(api_key))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "success": True,
        "customer_id": customer_id("acme", "user_001"),
        "events_ingested": 3,
        "message": "Events ingested successfully",
    }
    [record] = await read_records(settings, 1)
    assert record.key == b"acme:user_001"
    value = json.loads(record.value)
    assert value["tenant_id"] == "acme"
    assert [e["type"] for e in value["events"]] == ["page_view", "click", "feature_use"]
    assert value["events"][1]["id"] == "evt-1"
    assert all(e["id"] and e["occurred_at"] for e in value["events"])


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"Authorization": "Bearer pk_wrong"}, "invalid_api_key"),
        ({"Authorization": "Basic abc"}, "missing_api_key"),
    ],
)
async def test_requests_without_a_valid_key_get_401(settings, headers, code):
    async with client_for(settings) as client:
        response = await client.post(
            "/api/webhook/events",
            json={"customer": {"id": "u"}, "events": [{"type": "x"}]},
            headers=headers,
        )
        assert response.status_code == 401
        assert response.json()["error"]["code"] == code
        assert (await client.get("/api/customers/1", headers=headers)).status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "code", "loc", "words"),
    [
        (b'{"customer": {"id": "u"}, "events": [', 400, "invalid_json", "(body)", "JSON"),
        (b'{"events": [{"type": "x"}]}', 422, "validation_error", "customer", "required"),
        (
            b'{"customer": {}, "events": [{"type": "x"}]}',
            422,
            "validation_error",
            "customer.id",
            "required",
        ),
        (
            b'{"customer": {"id": "u"}, "events": [{"type": "x"}, {"type": 7}]}',
            422,
            "validation_error",
            "events[1].type",
            "string",
        ),
        (
            b'{"customer": {"id": "u"}, "events": [{"type": "purchase", "data": {"amount": "9"}}]}',
            422,
            "validation_error",
            "events[0].data.amount",
            "valid number",
        ),
        (b'{"customer": {"id": "u"}, "events": []}', 422, "validation_error", "events", "1 item"),
    ],
)
async def test_bad_input_gets_a_4xx_naming_the_field_and_nothing_is_ingested(
    settings, api_key, body, status, code, loc, words
):
    async with client_for(settings) as client:
        response = await client.post(
            "/api/webhook/events",
            content=body,
            headers={**auth(api_key), "Content-Type": "application/json"},
        )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert any(d["loc"] == loc and words in d["message"] for d in error["details"]), error
    assert await read_records(settings, 1, timeout_ms=500) == []


async def test_too_many_events_or_too_large_a_body_gets_413(settings, api_key):
    small = settings.model_copy(update={"max_events_per_request": 3, "max_body_bytes": 2000})
    async with client_for(small) as client:
        many = {"customer": {"id": "u"}, "events": [{"type": "x"}] * 4}
        response = await client.post("/api/webhook/events", json=many, headers=auth(api_key))
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "too_many_events"
        large = {"customer": {"id": "u"}, "events": [{"type": "x", "data": {"s": "y" * 3000}}]}
        response = await client.post("/api/webhook/events", json=large, headers=auth(api_key))
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "body_too_large"
    assert await read_records(settings, 1, timeout_ms=500) == []


@pytest.fixture
async def own_broker(settings):
    """A broker of the test's own, to kill, and settings that point at it."""
    broker = EmbeddedBroker(free_port())
    broker.start()
    own = settings.model_copy(
        update={"kafka_bootstrap_servers": broker.bootstrap_servers, "produce_timeout_seconds": 2}
    )
    await ensure_topics(own)
    yield broker, own
    broker.stop()


async def test_broker_down_gives_503_not_500_nor_a_hang(own_broker, api_key):
    broker, own = own_broker
    body = {"customer": {"id": "u"}, "events": [{"type": "x"}]}
    async with client_for(own) as client:
        assert (
            await client.post("/api/webhook/events", json=body, headers=auth(api_key))
        ).status_code == 200
        broker.kill()
        response = await client.post("/api/webhook/events", json=body, headers=auth(api_key))
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "broker_unavailable"
        assert response.headers["Retry-After"]
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        # Which dependency is down, never its internals, to an unauthenticated caller.
        assert ready.json() == {
            "ready": False,
            "checks": {"postgres": "ok", "kafka": "unavailable"},
        }


async def test_keys_created_over_http_belong_to_the_callers_tenant(settings, api_key, db):
    async with client_for(settings) as client:
        response = await client.post("/api/keys", json={"name": "My Key"}, headers=auth(api_key))
        assert response.status_code == 201
        created = response.json()
        assert created["tenant_id"] == "acme" and created["name"] == "My Key"
        assert await keys.tenant_for_key(db, created["key"]) == "acme"
        assert (await client.post("/api/keys")).status_code == 401


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


async def test_openapi_docs_and_metrics_are_served(settings):
    async with consumers_serving(settings), client_for(settings) as client:
        spec = (await client.get("/openapi.json")).json()
        defined = {f"#/components/schemas/{name}" for name in spec["components"]["schemas"]}
        assert set(_refs(spec)) <= defined, "the spec references undefined schemas"
        assert "/api/webhook/events" in spec["paths"]
        assert "/api/customers/{customer_id}" in spec["paths"]
        assert (await client.get("/docs")).status_code == 200
        assert (await client.get("/readyz")).json()["ready"] is True
        assert (await client.get("/api/customers/1")).status_code == 401
        metrics = (await client.get("/metrics")).text
        # Labelled by route template and status, so a dashboard can group them.
        assert 'proffer_http_requests_total{method="GET",route="/readyz",status="200"}' in metrics
        assert (
            'proffer_http_requests_total{method="GET",route="/api/customers/{customer_id}",'
            'status="401"}' in metrics
        )
        assert 'proffer_http_request_seconds_count{method="GET",route="/readyz"}' in metrics


async def test_unknown_customer_is_a_json_404(settings, api_key):
    async with client_for(settings) as client:
        response = await client.get("/api/customers/123", headers=auth(api_key))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "customer_not_found"
        response = await client.get("/api/customers/abc", headers=auth(api_key))
        assert response.status_code == 422
        assert response.json()["error"]["details"][0]["loc"] == "path.customer_id"


@pytest.mark.parametrize(
    "path",
    [
        f"/api/customers/{2**63}",
        "/api/customers/0",
        "/api/customers/-5",
        f"/api/customers/1/events?offset={2**63}",
        "/api/customers/1/events?limit=0",
        f"/api/customers?limit={2**70}",
        "/api/customers/external/bad%00id",
    ],
)
async def test_out_of_range_paths_and_queries_are_422_not_500(settings, api_key, path):
    async with client_for(settings) as client:
        response = await client.get(path, headers=auth(api_key))
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "validation_error"


async def test_reads_while_postgres_is_down_are_json_503(settings, api_key):
    async with client_for(settings) as client:
        assert (await client.get("/api/customers", headers=auth(api_key))).status_code == 200
        await client._transport.app.state.services.pool.close()
        await asyncio.sleep(1.1)  # past the key cache
        for path in ("/api/customers", "/api/customers/1", "/api/customers/external/u"):
            response = await client.get(path, headers=auth(api_key))
            assert response.status_code == 503, (path, response.text)
            assert response.json()["error"]["code"] == "database_unavailable"
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["postgres"] == "unavailable"


async def test_a_revoked_key_stops_working_within_a_second(settings, db):
    created = await keys.create_key(db, "acme", "soon revoked")
    async with client_for(settings) as client:
        assert (await client.get("/api/customers", headers=auth(created.key))).status_code == 200
        assert await keys.revoke_key(db, created.id)
        await asyncio.sleep(1.05)
        assert (await client.get("/api/customers", headers=auth(created.key))).status_code == 401


async def test_a_broker_outage_is_answered_within_the_produce_timeout(own_broker, api_key):
    broker, own = own_broker
    body = {"customer": {"id": "u"}, "events": [{"type": "x"}]}
    async with client_for(own) as client:
        broker.kill()
        for customer in ("never-seen-1", "never-seen-2"):  # needs metadata, then delivery
            started = time.monotonic()
            body["customer"]["id"] = customer
            response = await client.post("/api/webhook/events", json=body, headers=auth(api_key))
            assert response.status_code == 503
            assert time.monotonic() - started < 2.5


async def test_readyz_is_not_ready_while_the_worker_has_lag_and_makes_no_progress(
    settings, api_key
):
    """No worker or sink runs here: the events wait on the topic and nothing commits."""
    own = settings.model_copy(update={"stall_seconds": 1.0})
    async with consumers_serving(own), client_for(own) as client:
        body = {"customer": {"id": "u"}, "events": [{"type": "x"}]}
        assert (await client.get("/readyz")).status_code == 200  # no lag yet
        response = await client.post("/api/webhook/events", json=body, headers=auth(api_key))
        assert response.status_code == 200
        assert (await client.get("/readyz")).status_code == 200  # lag, but just seen
        await asyncio.sleep(1.5)
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {
            "postgres": "ok",
            "kafka": "ok",
            "worker": "stalled",
            "sink": "stalled",
        }


async def _commit_at_end(settings, group, topic):
    """Commit ``group`` at the end of ``topic``, as if it had consumed everything."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = await topic_partitions(consumer, [topic])
        consumer.assign(partitions)
        reported = await consumer.end_offsets(partitions)
        await consumer.commit(await fetched_log_ends(settings.bootstrap_servers, reported))
    finally:
        await consumer.stop()


async def test_readyz_watches_every_topic_the_worker_and_the_sink_read(settings):
    """Both groups are done with proffer.events, but nothing reads the offer requests (the
    offers agent) nor the offers (the sink): each lag shows all the same."""
    own = settings.model_copy(update={"stall_seconds": 1.0})
    topics = topics_for(own)
    producer = AIOKafkaProducer(bootstrap_servers=own.bootstrap_servers)
    await producer.start()
    try:
        for topic in (topics.events, topics.offer_requests, topics.offers):
            await producer.send_and_wait(topic.name, b"{}", key=b"acme:u")
    finally:
        await producer.stop()
    worker = worker_app_id(own.topic_prefix, own.worker_id)
    for group in (worker, own.sink_group):
        await _commit_at_end(own, group, topics.events.name)
        assert await group_lag(own.bootstrap_servers, group, [topics.events.name]) == 0
    async with consumers_serving(own), client_for(own) as client:
        ready = await client.get("/readyz")  # lag since the start: never seen serving
    assert ready.status_code == 503
    assert ready.json()["checks"] == {
        "postgres": "ok",
        "kafka": "ok",
        "worker": "starting",
        "sink": "starting",
    }


async def test_readyz_is_not_ready_until_the_worker_and_the_sink_have_joined(settings):
    async with client_for(settings) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {
            "postgres": "ok",
            "kafka": "ok",
            "worker": "starting",
            "sink": "starting",
        }
        async with consumers_serving(settings):
            assert (await client.get("/readyz")).status_code == 200


async def test_a_request_whose_record_outgrows_the_producer_limit_gets_413_not_503(
    settings, api_key
):
    """Numbers written longer than sent (1e15 -> 1000000000000000.0) make a record over
    the limit from a body under it: refused for its size, not answered as an outage."""
    small = settings.model_copy(update={"max_body_bytes": 4000})
    numbers = ",".join(["1e15"] * 700)  # 5 bytes each sent, 19 written
    event = '{"type":"x","data":{"v":[' + numbers + "]}}"
    sent = '{"customer":{"id":"grows"},"events":[' + event + "]}"
    async with client_for(small) as client:
        assert len(sent) < small.max_body_bytes
        response = await client.post(
            "/api/webhook/events",
            content=sent,
            headers={**auth(api_key), "content-type": "application/json"},
        )
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "record_too_large"
    assert "8000 bytes" in error["message"]
    assert "retry-after" not in response.headers
    assert await read_records(settings, 1, timeout_ms=500) == []

"""A decision that cannot be logged or read is not answered: 503 when the broker is down
(within the produce timeout) or PostgreSQL is; in-process gateway, real servers."""

import time
from contextlib import asynccontextmanager

import httpx
import pytest

from proffer_stream.api.app import create_app
from proffer_stream.db import keys
from proffer_stream.kafka.topics import ensure_topics
from proffer_stream.local.embedded import EmbeddedBroker, free_port

pytestmark = pytest.mark.integration

ASK = {"customer_id": "ann", "request_context": {"locale": "en-US"}}


@asynccontextmanager
async def gateway(settings):
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


@pytest.fixture
async def key(db):
    return (await keys.create_key(db, "acme", "faults")).key


async def test_broker_down_is_503_within_the_produce_timeout(settings, key):
    broker = EmbeddedBroker(free_port())
    broker.start()
    own = settings.model_copy(
        update={"kafka_bootstrap_servers": broker.bootstrap_servers, "produce_timeout_seconds": 2}
    )
    await ensure_topics(own)
    auth = {"Authorization": f"Bearer {key}"}
    try:
        async with gateway(own) as client:
            answered = await client.post("/api/v2/personalized_offers", json=ASK, headers=auth)
            assert answered.status_code == 200, answered.text
            broker.kill()
            started = time.monotonic()
            refused = await client.post("/api/v2/personalized_offers", json=ASK, headers=auth)
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "broker_unavailable"
            assert time.monotonic() - started < 2 + 0.5
    finally:
        broker.stop()


async def test_postgres_down_is_503(settings, key):
    auth = {"Authorization": f"Bearer {key}"}
    async with gateway(settings) as client:
        first = await client.post("/api/v2/personalized_offers", json=ASK, headers=auth)
        assert first.status_code == 200 and first.json()["personalized_offers"] == []
        await client._transport.app.state.services.pool.close()
        refused = await client.post("/api/v2/personalized_offers", json=ASK, headers=auth)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "database_unavailable"

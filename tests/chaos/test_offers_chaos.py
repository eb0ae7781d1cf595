"""Chaos for offers: kill -9 of the worker while offers are being written, and a restart.

Every requested offer must exist exactly once: one row per request, the offer id the
request's, one decision each, and on the topic no offer that was not requested.
"""

import asyncio
from datetime import UTC, datetime

import pytest
from fake_openai import start_fake_openai
from support import messages_on_topic, produce_paced, wait_for

from proffer_stream.core.identity import offer_id, partition_key
from proffer_stream.kafka.topics import topics_for
from proffer_stream.offers.models import OfferRequest
from proffer_stream.signals.fold import new_signals

pytestmark = pytest.mark.chaos

TENANT = "acme"
REQUESTS = 1_200
CUSTOMERS = 300


def offer_request(n: int) -> OfferRequest:
    customer = f"c{n % CUSTOMERS}"
    signals = new_signals(TENANT, customer).model_copy(
        update={"email": f"{customer}@example.com", "page_views": {"/pricing": 3}}
    )
    return OfferRequest(
        request_id=f"req-{n}",
        tenant_id=TENANT,
        external_customer_id=customer,
        source="api",
        requested_at=datetime.now(UTC),
        requested_by="chaos",
        signals=signals,
    )


async def counts(db):
    row = await db.fetchrow(
        "SELECT (SELECT count(*) FROM offers) AS offers,"
        " (SELECT count(DISTINCT request_id) FROM offers) AS requests,"
        " (SELECT count(*) FROM decisions) AS decisions,"
        " (SELECT count(*) FROM offer_events WHERE event_type = 'offer.generated') AS generated"
    )
    return dict(row)


async def offer_ids_on_topic(settings):
    messages = await messages_on_topic(settings, topics_for(settings).offers.name)
    return [message["offer_id"] for message in messages]


async def settled(db, expected):
    return await wait_for(lambda: counts(db), lambda c: c == expected, timeout=120, what="all")


async def test_kill_9_mid_generation_yields_every_requested_offer_once(settings, db, processes):
    """The model answers after 0.2 s, so the kill lands while writes are in flight."""
    model = await start_fake_openai(delay=0.2)
    try:
        own = settings.model_copy(
            update={"llm_base_url": model.base_url, "llm_model": "fake", "llm_api_key": "k"}
        )
        processes.start_pipeline(own)
        requests = [offer_request(n) for n in range(REQUESTS)]
        records = [
            (partition_key(TENANT, r.external_customer_id), r.model_dump_json().encode())
            for r in requests
        ]
        topic = topics_for(own).offer_requests.name
        producing = asyncio.create_task(produce_paced(own, topic, records, per_second=300))
        await wait_for(lambda: counts(db), lambda c: c["offers"] >= 300, what="progress")
        processes.kill("worker")
        await asyncio.sleep(1)
        processes.start("worker", own)
        await producing
        expected = {"offers": REQUESTS, "requests": REQUESTS, "decisions": REQUESTS}
        expected["generated"] = REQUESTS
        await settled(db, expected)
        await asyncio.sleep(3)  # nothing more trickles in
        assert await counts(db) == expected
        assert model.count >= REQUESTS
    finally:
        await model.stop()

    ids = {offer_id(TENANT, r.request_id) for r in requests}
    rows = {r["id"] for r in await db.fetch("SELECT id FROM offers")}
    assert rows == ids
    on_topic = await offer_ids_on_topic(own)
    assert set(on_topic) == ids  # replays re-publish the same offers, never new ones
    writers = await db.fetch("SELECT DISTINCT offer->>'writer' AS writer FROM offers")
    assert [w["writer"] for w in writers] == ["fake"]
    assert processes.stop("worker") == 0

"""The stock race over HTTP: 500 members using an offer with stock 100 at once get
exactly 100 uses and 400 refusals, in the answers, in PostgreSQL and on the topic; one
member's 50 concurrent uses of an offer with maximum_uses_per_user 3 get exactly 3."""

import asyncio
from collections import Counter

import asyncpg
import pytest
from support import messages_on_topic
from test_offers import client, sign_up

from proffer_stream.kafka.topics import topics_for

pytestmark = pytest.mark.e2e

CONCURRENT = 64
"""Requests in flight at once."""


async def create(api, **fields):
    body = {"type": "regular", "status": "published", "name": {"en": "Race"}, **fields}
    response = await api.post("/api/catalog/offers", json=body)
    assert response.status_code == 201, response.text
    return response.json()["offer"]["id"]


async def use_all(api, uses):
    """Each (member, offer) used once, ``CONCURRENT`` at a time; the answers' codes."""
    gate = asyncio.Semaphore(CONCURRENT)

    async def use(member, offer_id):
        async with gate:
            response = await api.post(f"/api/members/{member}/offers/{offer_id}/use")
            assert response.status_code in (200, 409), response.text
            body = response.json()
            return body["use"]["use_id"] if response.status_code == 200 else body["error"]["code"]

    return await asyncio.gather(*(use(m, o) for m, o in uses))


async def test_stock_and_per_member_limits_hold_under_concurrent_http_uses(
    settings, processes, db: asyncpg.Pool
):
    processes.start_pipeline(settings.model_copy(update={"signup_enabled": True}))
    key = await sign_up(settings, "Race")
    async with client(settings, key) as api:  # httpx keeps up to 100 connections
        stocked = await create(api, stock=100)
        capped = await create(api, maximum_uses_per_user=3)

        answers = await use_all(api, [(f"m{n}", stocked) for n in range(500)])
        outcomes = Counter("used" if a.startswith("use-") else a for a in answers)
        assert outcomes == {"used": 100, "out_of_stock": 400}
        read = (await api.get(f"/api/catalog/offers/{stocked}")).json()["offer"]
        assert (read["uses_count"], read["refusals_count"]) == (100, 400)

        same = await use_all(api, [("one", capped)] * 50)
        assert Counter("used" if a.startswith("use-") else a for a in same) == {
            "used": 3,
            "per_user_limit": 47,
        }

    rows = await db.fetch(
        "SELECT offer_id, kind, count(*) AS n FROM catalog_activity"
        " WHERE action = 'use' GROUP BY offer_id, kind"
    )
    assert {(r["offer_id"], r["kind"]): r["n"] for r in rows} == {
        (stocked, "used"): 100,
        (stocked, "refused"): 400,
        (capped, "used"): 3,
        (capped, "refused"): 47,
    }
    events = await messages_on_topic(settings, topics_for(settings).catalog_events.name)
    used = {e["event_id"] for e in events if e["offer_id"] == stocked and e["kind"] == "used"}
    assert len(used) == 100
    assert max(e["counts"]["uses_count"] for e in events if e["offer_id"] == stocked) == 100

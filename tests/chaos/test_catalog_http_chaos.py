"""kill -9 of the catalog offer's owner while 500 members use an offer with stock 100 over
HTTP: every use answered 200 is kept, none is applied twice, and exactly 100 are used."""

import asyncio
from collections import Counter

import asyncpg
import httpx
import pytest
from support import wait_for

pytestmark = pytest.mark.chaos

CONCURRENT = 64


def client(settings, key=None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{settings.gateway_port}", headers=headers, timeout=60
    )


async def sign_up(settings, name):
    async with client(settings) as anonymous:
        response = await anonymous.post("/api/keys", json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()["key"]


async def create(api, **fields):
    body = {"type": "regular", "status": "published", "name": {"en": "Race"}, **fields}
    response = await api.post("/api/catalog/offers", json=body)
    assert response.status_code == 201, response.text
    return response.json()["offer"]["id"]


async def test_kill_9_of_the_owner_mid_race_over_http(settings, processes, db: asyncpg.Pool):
    patient = settings.model_copy(update={"signup_enabled": True, "offer_wait_seconds": 40})
    processes.start_pipeline(patient)
    key = await sign_up(patient, "Race")
    async with client(patient, key) as api:
        offer_id = await create(api, stock=100)
        gate = asyncio.Semaphore(CONCURRENT)
        answered: list[tuple[int, dict]] = []

        async def use(member):
            async with gate:
                response = await api.post(f"/api/members/{member}/offers/{offer_id}/use")
                answered.append((response.status_code, response.json()))

        racing = asyncio.gather(*(use(f"m{n}") for n in range(500)))
        await wait_for(lambda: asyncio.sleep(0, len(answered)), lambda n: n >= 60, what="60")
        processes.kill("worker")
        assert len(answered) < 500  # the kill lands mid-race
        processes.start("worker", patient)
        await racing

    codes = Counter(code for code, _ in answered)
    assert set(codes) <= {200, 202, 409}, codes
    used_ids = {body["use"]["use_id"] for code, body in answered if code == 200}
    assert len(used_ids) == codes[200] <= 100  # each 200 a use of its own

    async def counts():
        return await db.fetchrow(
            "SELECT uses_count, refusals_count FROM catalog_counts WHERE offer_id = $1", offer_id
        )

    final = await wait_for(
        counts, lambda c: c is not None and c["uses_count"] + c["refusals_count"] >= 500
    )
    assert (final["uses_count"], final["refusals_count"]) == (100, 400)
    stored = await db.fetch(
        "SELECT event->'use'->>'use_id' AS use_id FROM catalog_activity"
        " WHERE offer_id = $1 AND kind = 'used'",
        offer_id,
    )
    assert len(stored) == 100 and used_ids <= {r["use_id"] for r in stored}

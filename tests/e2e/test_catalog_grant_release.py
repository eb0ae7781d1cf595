"""End to end: grants that expired unused give their stock back. Stock 2, two members
granted for a second; once it passed, a third member's grant is made (the owner
released the two at that command) while the two expired grantees' uses answer 409
grant_expired, and the counts read back say so."""

import asyncio

import pytest
from test_catalog import create, member
from test_offers import client, sign_up

pytestmark = pytest.mark.e2e


async def test_expired_grants_release_their_stock(settings, processes):
    processes.start_pipeline(settings.model_copy(update={"signup_enabled": True}))
    key = await sign_up(settings, "Shop")
    async with client(settings, key) as api:
        vip = await create(
            api,
            {
                "type": "exclusive",
                "status": "published",
                "name": {"en": "VIP"},
                "stock": 2,
                "usable_in_seconds_after_granting": 1,
            },
        )
        for who in ("ann", "bob"):
            granted = await member(api, who, vip["id"], "grant")
            assert granted.status_code == 200, granted.text
            held = granted.json()["member"]["held"]
            assert len(held) == 1 and held[0]["usable_until"] is not None
        full = await member(api, "cid", vip["id"], "grant")
        assert full.status_code == 409 and full.json()["error"]["code"] == "out_of_stock"

        # Past the second (and the end of its release bucket, a second at most later).
        await asyncio.sleep(2.5)
        third = await member(api, "cid", vip["id"], "grant")
        assert third.status_code == 200, third.text
        counts = third.json()["counts"]
        assert (counts["reserved_count"], counts["released_count"]) == (1, 2)
        for who in ("ann", "bob"):
            expired = await member(api, who, vip["id"], "use")
            assert expired.status_code == 409, expired.text
            assert expired.json()["error"]["code"] == "grant_expired"
        used = await member(api, "cid", vip["id"], "use")
        assert used.status_code == 200, used.text
        assert (used.json()["counts"]["uses_count"], used.json()["counts"]["reserved_count"]) == (
            1,
            0,
        )
        read = (await api.get(f"/api/catalog/offers/{vip['id']}")).json()["offer"]
        assert (read["uses_count"], read["grants_count"]) == (1, 3)

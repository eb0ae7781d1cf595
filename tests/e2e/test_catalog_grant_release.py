"""End to end: grants that expired unused give their stock back. Stock 2, two members
granted for a second; once it passed, a third member's grant is made (the owner
released the two at that command) while the two expired grantees' uses answer 409
grant_expired, and the counts read back say so. And readers see the stock given back as
of their own now, before any command: a member's view says usable, and a personalised
offers decision can choose the offer."""

import asyncio
from datetime import UTC, datetime

import pytest
from support import wait_for
from test_catalog import create, member
from test_decisions import decide
from test_lifecycle import customer
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


async def test_readers_see_expired_grants_stock_back_before_any_command(settings, processes):
    processes.start_pipeline(settings.model_copy(update={"signup_enabled": True}))
    key = await sign_up(settings, "Shop")
    async with client(settings, key) as api:
        one = await create(
            api,
            {
                "type": "regular",
                "status": "published",
                "name": {"en": "Last one"},
                "stock": 1,
                "usable_in_seconds_after_granting": 3,
            },
        )
        await customer(api, "dan")
        chosen = await wait_for(
            lambda: decide(api, customer_id="dan"), lambda o: o is not None, what="dan's profile"
        )
        assert chosen["offer_id"] == f"catalog_{one['id']}"

        async def dans_view():
            answer = await api.get(f"/api/members/dan/offers/{one['id']}")
            assert answer.status_code == 200, answer.text
            return answer.json()["offer"]

        granted = await member(api, "ann", one["id"], "grant")
        assert granted.status_code == 200, granted.text
        holds_until = datetime.fromisoformat(granted.json()["member"]["held"][0]["holds_until"])
        counts = granted.json()["counts"]
        assert counts["reserved_count"] == 1 and "ending" not in counts  # the owner's buckets
        # Held: out of stock for the others while the grant may be used.
        assert (await dans_view())["usable"] is False
        assert await decide(api, customer_id="dan") is None

        # Past the end of its release bucket, with no command of the offer since: the
        # projected reserved_count is still the owner's last decision (1), but readers
        # count the ended bucket released.
        await asyncio.sleep(max((holds_until - datetime.now(UTC)).total_seconds(), 0) + 0.3)
        assert (await dans_view())["usable"] is True
        again = await decide(api, customer_id="dan")
        assert again is not None and again["offer_id"] == f"catalog_{one['id']}"
        read = (await api.get(f"/api/catalog/offers/{one['id']}")).json()["offer"]
        assert "reserved_count" not in read and "ending" not in read
        # The owner agrees at its next command.
        used = await member(api, "dan", one["id"], "use")
        assert used.status_code == 200, used.text
        assert (
            used.json()["counts"]["reserved_count"],
            used.json()["counts"]["released_count"],
        ) == (
            0,
            1,
        )
        assert (await dans_view())["usable"] is False  # used up now

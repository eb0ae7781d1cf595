"""End to end: a rule whose offers come from the catalog, through the real worker, sink
and gateway: the offer is written for the catalog offer within its terms, issued once
granted (the grant counted), and redeemed by a purchase as a use of the catalog offer;
a refused grant is a suppression saying why."""

import pytest
from support import wait_for
from test_offers import client, sign_up

pytestmark = pytest.mark.e2e

SPRING = {
    "type": "regular",
    "status": "published",
    "name": {"en": "Spring sale"},
    "description": {"en": "Spring styles for less."},
    "stock": 5,
    "terms": {"discount_percent": 15, "code_pattern": "SPRING-####", "valid_days": 5},
}


def catalog_rule(rule_id, page, catalog_offer_id):
    return {
        "id": rule_id,
        "name": f"Viewed {page}",
        "conditions": {"min_page_views": {page: 2}},
        "hints": {"max_discount_percent": 30, "catalog_offer_ids": [catalog_offer_id]},
    }


async def test_a_rule_gives_a_catalog_offer_granted_then_used(settings, processes):
    processes.start_pipeline(settings.model_copy(update={"signup_enabled": True}))
    key = await sign_up(settings, "Shop")
    async with client(settings, key) as api:

        async def create(body):
            response = await api.post("/api/catalog/offers", json=body)
            assert response.status_code == 201, response.text
            return response.json()["offer"]

        async def catalog(offer_id):
            return (await api.get(f"/api/catalog/offers/{offer_id}")).json()["offer"]

        async def views(who, page):
            body = {
                "customer": {"id": who, "name": f"{who.title()} Lee"},
                "events": [{"type": "page_view", "data": {"page": page}} for _ in range(2)],
            }
            assert (await api.post("/api/webhook/events", json=body)).status_code == 200

        spring = await create(SPRING)
        sold_out = await create({**SPRING, "name": {"en": "Sold out"}, "stock": 0})
        single = await create({**SPRING, "name": {"en": "Single"}, "stock": 1})
        rules = [
            catalog_rule("spring", "/spring", spring["id"]),
            catalog_rule("sold-out", "/sold-out", sold_out["id"]),
            catalog_rule("single", "/single", single["id"]),
        ]
        assert (await api.put("/api/rules", json={"rules": rules})).status_code == 200

        # The rule fires: an offer written for the catalog offer, within its terms.
        await views("ann", "/spring")

        async def offers():
            return (await api.get("/api/offers")).json()

        listed = await wait_for(offers, lambda b: b["total"] == 1, what="the catalog offer")
        offer = listed["offers"][0]
        assert offer["catalog_offer_id"] == spring["id"] and offer["rule_id"] == "spring"
        assert offer["headline"] == "Ann, Spring sale" and offer["writer"] == "built-in"
        assert "Spring styles for less." in offer["body_copy"]
        terms = offer["offer_terms"]
        assert (terms["discount_percent"], terms["valid_days"]) == (15, 5)
        assert terms["code"].startswith("SPRING-") and len(terms["code"]) == 11

        # Issuing it granted the catalog offer.
        granted = await wait_for(
            lambda: catalog(spring["id"]), lambda o: o["grants_count"] == 1, what="the grant"
        )
        assert granted["uses_count"] == 0

        # Sent, then redeemed by a purchase with its code: a use of the catalog offer.
        for status in ("approved", "sent"):
            moved = await api.patch(f"/api/offers/{offer['id']}", json={"status": status})
            assert moved.status_code == 200, moved.text
        purchase = {"type": "purchase", "data": {"offer_code": terms["code"], "amount": 40}}
        body = {"customer": {"id": "ann"}, "events": [purchase]}
        assert (await api.post("/api/webhook/events", json=body)).status_code == 200
        used = await wait_for(
            lambda: catalog(spring["id"]), lambda o: o["uses_count"] == 1, what="the use"
        )
        assert (used["grants_count"], used["refusals_count"]) == (1, 0)
        redeemed = (await api.get(f"/api/offers/{offer['id']}")).json()["offer"]
        assert redeemed["status"] == "redeemed"

        # No stock: the grant is refused, and the decision is a suppression saying why.
        await views("bob", "/sold-out")
        bob = await wait_for(
            lambda: api.get("/api/customers/external/bob"),
            lambda r: r.status_code == 200,
            what="bob",
        )

        async def decisions():
            customer_id = bob.json()["customer"]["id"]
            return (await api.get(f"/api/customers/{customer_id}/decisions")).json()["decisions"]

        [decision] = await wait_for(decisions, lambda d: len(d) == 1, what="bob's decision")
        assert decision["outcome"] == "suppressed", decision
        [reason] = decision["trace"]["suppressed"]
        assert reason.startswith("catalog grant refused: out_of_stock"), reason
        assert decision["trace"]["catalog"]["catalog_offer_id"] == sold_out["id"]
        refused = await catalog(sold_out["id"])
        assert (refused["grants_count"], refused["refusals_count"]) == (0, 1)
        assert (await offers())["total"] == 1

        # Stock 1: carl's offer holds it, so dan's grant is refused; carl's offer expires
        # unredeemed, the offers agent releases its grant, and eve's grant gets the unit.
        await views("carl", "/single")
        carl = await wait_for(offers, lambda b: b["total"] == 2, what="carl's offer")
        carls = next(o for o in carl["offers"] if o["catalog_offer_id"] == single["id"])
        await views("dan", "/single")
        await wait_for(
            lambda: catalog(single["id"]), lambda o: o["refusals_count"] == 1, what="dan refused"
        )
        expired = await api.patch(f"/api/offers/{carls['id']}", json={"status": "expired"})
        assert expired.status_code == 200, expired.text
        await views("eve", "/single")
        eve = await wait_for(
            offers, lambda b: b["total"] == 3, what="eve's offer, on the released unit"
        )
        assert sum(o["catalog_offer_id"] == single["id"] for o in eve["offers"]) == 2
        after = await catalog(single["id"])
        assert (after["grants_count"], after["uses_count"]) == (2, 0)

"""End to end: the reference's quick start, automatic offers from the default rules, batch,
traces and decisions, tenants kept apart. Worker, sink and gateway run as processes."""

import httpx
import pytest
from support import wait_for

pytestmark = pytest.mark.e2e


def client(settings, key=None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{settings.gateway_port}", headers=headers, timeout=30
    )


async def sign_up(settings, name="My Key"):
    async with client(settings) as anonymous:
        response = await anonymous.post("/api/keys", json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()["key"]


async def test_quick_start_word_for_word(settings, processes):
    processes.start_pipeline(settings.model_copy(update={"signup_enabled": True}))
    key = await sign_up(settings)
    async with client(settings, key) as api:
        response = await api.post(
            "/api/webhook/events",
            json={
                "customer": {"id": "user_001", "email": "alex@startup.com", "name": "Alex Rivera"},
                "events": [
                    {"type": "page_view", "data": {"page": "/pricing"}},
                    {"type": "click", "data": {"element": "start_trial"}},
                    {"type": "feature_use", "data": {"feature": "reports", "times_used": 8}},
                ],
            },
        )
        assert response.status_code == 200, response.text

        async def generate():
            return await api.post("/api/offers/generate", json={"external_customer_id": "user_001"})

        # The customer's row may trail the 200 of the webhook by a few milliseconds.
        generated = await wait_for(generate, lambda r: r.status_code != 404, what="customer")
        assert generated.status_code == 200, generated.text
        offer = generated.json()["offer"]
        assert generated.json()["success"] is True
        assert isinstance(offer["id"], int) and offer["status"] == "generated"
        assert offer["customer_id"] == response.json()["customer_id"]
        assert offer["channel"] == "email"  # an email is known
        assert "Alex" in offer["headline"] + offer["body_copy"]
        terms = offer["offer_terms"]
        assert terms["valid_days"] >= 1 and terms["code"]
        assert (terms["discount_percent"] or 0) <= 30
        for field in ("headline", "body_copy", "offer_type", "ai_reasoning", "expires_at"):
            assert offer[field]

        fetched = await api.get(f"/api/offers/{offer['id']}")
        assert fetched.status_code == 200 and fetched.json()["offer"] == offer

        trace = (await api.get(f"/api/offers/{offer['id']}/trace")).json()["decision"]
        assert trace["outcome"] == "offer" and trace["trace"]["source"] == "api"
        assert trace["trace"]["writer"]["kind"] == "built-in"
        assert trace["trace"]["signals"]["counts_by_type"]["page_view"] == 1
        assert {v["check"] for v in trace["trace"]["verdicts"]} >= {"channel", "code"}

        # decided by the customer's offers agent, whatever PostgreSQL has projected yet
        unknown = await api.post("/api/offers/generate", json={"external_customer_id": "nobody"})
        assert unknown.status_code == 422, unknown.text
        assert "unknown customer" in unknown.json()["error"]["message"]
        unknown_id = await api.post("/api/offers/generate", json={"customer_id": 1})
        assert unknown_id.status_code == 404
        assert unknown_id.json()["error"]["code"] == "customer_not_found"
        both = await api.post(
            "/api/offers/generate", json={"customer_id": 1, "external_customer_id": "x"}
        )
        assert both.status_code == 422

    other = await sign_up(settings, "Other")
    async with client(settings, other) as api:
        assert (await api.get(f"/api/offers/{offer['id']}")).status_code == 404
        assert (await api.get("/api/offers")).json()["offers"] == []


async def test_a_default_rule_makes_an_offer_by_itself_once(settings, processes, db):
    processes.start_pipeline(settings.model_copy(update={"signup_enabled": True}))
    key = await sign_up(settings)
    body = {
        "customer": {"id": "sarah", "name": "Sarah Chen"},
        "events": [
            {"id": "v1", "type": "page_view", "data": {"page": "/pricing"}},
            {"id": "v2", "type": "page_view", "data": {"page": "/pricing"}},
        ],
    }
    async with client(settings, key) as api:
        assert (await api.post("/api/webhook/events", json=body)).status_code == 200

        async def offers():
            return (await api.get("/api/offers")).json()

        listed = await wait_for(offers, lambda b: b["total"] == 1, what="an automatic offer")
        offer = listed["offers"][0]
        assert offer["rule_id"] == "pricing-interest"
        assert offer["channel"] == "in_app"  # no email, phone or push token known
        assert "/pricing" in offer["body_copy"] + offer["ai_reasoning"]

        # More interest within the cooldown: no second automatic offer.
        more = {**body, "events": [{"id": "v3", "type": "page_view", "data": {"page": "/pricing"}}]}
        assert (await api.post("/api/webhook/events", json=more)).status_code == 200
        customer = (await api.get("/api/customers/external/sarah")).json()["customer"]
        await wait_for(
            lambda: api.get(f"/api/customers/{customer['id']}"),
            lambda r: r.json()["customer"]["signals"]["page_views"]["/pricing"] == 3,
            what="third view counted",
        )
        assert (await api.get("/api/offers")).json()["total"] == 1

        decisions = (await api.get(f"/api/customers/{customer['id']}/decisions")).json()
        assert [d["outcome"] for d in decisions["decisions"]] == ["offer"]
        assert decisions["decisions"][0]["trace"]["rule_id"] == "pricing-interest"

        filtered = await api.get("/api/offers", params={"channel": "email"})
        assert filtered.json()["total"] == 0
        assert (await api.get("/api/offers", params={"limit": 101})).status_code == 422


async def test_batch_requests_offers_for_customers_due_one(settings, processes):
    processes.start_pipeline(settings.model_copy(update={"signup_enabled": True}))
    key = await sign_up(settings)
    async with client(settings, key) as api:
        for n in range(3):
            body = {"customer": {"id": f"c{n}"}, "events": [{"type": "click"}] * (n + 1)}
            assert (await api.post("/api/webhook/events", json=body)).status_code == 200
        await wait_for(
            lambda: api.get("/api/customers"),
            lambda r: len(r.json()["customers"]) == 3,
            what="3 customers",
        )
        assert (await api.post("/api/offers/generate-batch", json={"limit": 51})).status_code == 422
        batch = await api.post("/api/offers/generate-batch", json={"min_events": 2, "limit": 10})
        assert batch.status_code == 200, batch.text
        assert batch.json()["requested"] == 2
        listed = await wait_for(
            lambda: api.get("/api/offers"), lambda r: r.json()["total"] == 2, what="2 offers"
        )
        customers = {o["external_customer_id"] for o in listed.json()["offers"]}
        assert customers == {"c1", "c2"}
        again = await api.post("/api/offers/generate-batch", json={"min_events": 1})
        assert again.json()["requested"] == 1  # c0 only: the others got one today

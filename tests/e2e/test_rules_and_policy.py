"""End to end: a tenant replaces its rules and policy over the API, and the worker uses
them within seconds; bad ones answer 422 naming the rule and the field; tenants never
see each other's. Worker, sink and gateway run as processes."""

import httpx
import pytest
from support import wait_for

pytestmark = pytest.mark.e2e

CHECKOUT_RULE = {
    "id": "checkout-visits",
    "name": "Visited checkout twice",
    "conditions": {"min_page_views": {"/checkout": 2}},
    "priority": 50,
    "cooldown_hours": 1,
    "hints": {"offer_types": ["discount"], "max_discount_percent": 10},
}


def client(settings, key=None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{settings.gateway_port}", headers=headers, timeout=30
    )


async def sign_up(settings, name):
    async with client(settings) as anonymous:
        response = await anonymous.post("/api/keys", json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()["key"]


def visits(customer, page, n, prefix="v"):
    return {
        "customer": {"id": customer, "email": f"{customer}@example.com"},
        "events": [
            {"id": f"{prefix}{i}", "type": "page_view", "data": {"page": page}} for i in range(n)
        ],
    }


async def test_rules_and_policy_of_a_tenant_take_effect_and_stay_its_own(settings, processes):
    processes.start_pipeline(settings.model_copy(update={"signup_enabled": True}))
    acme, other = await sign_up(settings, "acme"), await sign_up(settings, "other")
    async with client(settings, acme) as api, client(settings, other) as other_api:
        default = (await api.get("/api/rules")).json()
        assert default["version"] == 0 and default["is_default"]
        assert {r["id"] for r in default["rules"]} >= {"pricing-interest", "cart-abandoned"}

        bad = {"rules": [CHECKOUT_RULE, {**CHECKOUT_RULE, "id": "broken", "priority": "high"}]}
        refused = await api.put("/api/rules", json=bad)
        assert refused.status_code == 422, refused.text
        detail = refused.json()["error"]["details"][0]
        assert detail["loc"] == "body.rules[1].priority" and 'rule "broken"' in detail["message"]
        duplicate = await api.put("/api/rules", json={"rules": [CHECKOUT_RULE, CHECKOUT_RULE]})
        assert duplicate.status_code == 422 and "duplicate rule id" in duplicate.text

        put = await api.put("/api/rules", json={"rules": [CHECKOUT_RULE]})
        assert put.status_code == 200, put.text
        assert put.json()["version"] == 1 and put.json()["rules"][0]["version"] == 1
        again = await api.put(
            "/api/rules", json={"rules": [{**CHECKOUT_RULE, "name": "Two checkout visits"}]}
        )
        assert again.json()["version"] == 2 and again.json()["rules"][0]["version"] == 2
        assert (await api.get("/api/rules")).json()["rules"] == again.json()["rules"]

        policy = await api.put(
            "/api/policy", json={"max_discount_percent": 5, "channels": ["in_app", "sms"]}
        )
        assert policy.status_code == 200 and policy.json()["version"] == 1
        assert (await api.put("/api/policy", json={"max_discount_percent": 500})).status_code == 422
        assert (await api.put("/api/policy", json={"surprise": 1})).status_code == 422
        assert (await other_api.get("/api/policy")).json()["is_default"]
        assert (await other_api.get("/api/rules")).json()["version"] == 0

        # acme's own rule fires, within its policy; the default pricing rule is gone for acme.
        assert (await api.post("/api/webhook/events", json=visits("p", "/pricing", 3))).is_success
        assert (await api.post("/api/webhook/events", json=visits("c", "/checkout", 2))).is_success
        listed = await wait_for(
            lambda: api.get("/api/offers"), lambda r: r.json()["total"] >= 1, what="an offer"
        )
        (offer,) = listed.json()["offers"]
        assert offer["external_customer_id"] == "c" and offer["rule_id"] == "checkout-visits"
        assert offer["rule_version"] == 2
        assert offer["channel"] == "in_app"  # email is known but the policy does not allow it
        assert (offer["offer_terms"]["discount_percent"] or 0) <= 5

        # The other tenant keeps the defaults: its pricing visitor gets an offer.
        assert (
            await other_api.post("/api/webhook/events", json=visits("p", "/pricing", 2))
        ).is_success
        theirs = await wait_for(
            lambda: other_api.get("/api/offers"), lambda r: r.json()["total"] == 1, what="offer"
        )
        assert theirs.json()["offers"][0]["rule_id"] == "pricing-interest"
        assert (await other_api.get(f"/api/offers/{offer['id']}/trace")).status_code == 404

        # No rules: no automatic offers for acme.
        assert (await api.put("/api/rules", json={"rules": []})).json()["version"] == 3
        assert (await api.post("/api/webhook/events", json=visits("d", "/checkout", 2))).is_success
        customer = await wait_for(
            lambda: api.get("/api/customers/external/d"),
            lambda r: r.status_code == 200,
            what="customer d",
        )
        decisions = await api.get(f"/api/customers/{customer.json()['customer']['id']}/decisions")
        assert decisions.json()["decisions"] == []


async def test_concurrent_changes_get_one_version_each_and_the_rest_409(settings, processes):
    """The one owner of a tenant's policy decides versions: of changes made at once
    against one version, one is applied and the others answer 409 with the version in
    force; what the 200 says, a GET reads at once."""
    import asyncio

    processes.start_pipeline(settings.model_copy(update={"signup_enabled": True}))
    key = await sign_up(settings, "acme")
    async with client(settings, key) as api:
        for version in (1, 2):
            answers = await asyncio.gather(
                *(api.put("/api/policy", json={"max_discount_percent": n}) for n in range(1, 9))
            )
            codes = sorted(a.status_code for a in answers)
            assert codes == [200] + [409] * 7, [a.text for a in answers]
            won = next(a.json() for a in answers if a.status_code == 200)
            assert won["version"] == version
            for lost in (a.json() for a in answers if a.status_code == 409):
                assert lost["error"]["code"] == "version_conflict"
                assert lost["error"]["current_version"] == version
            read = (await api.get("/api/policy")).json()
            assert read["version"] == version and read["policy"] == won["policy"]

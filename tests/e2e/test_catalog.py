"""End to end: the catalog over HTTP through the real worker (the offers' owner), sink
and gateway: definitions, stock, grants, the member's localized list, likes, events,
encoded offers, and tenants kept apart."""

import pytest
from test_offers import client, sign_up

pytestmark = pytest.mark.e2e

SPRING = {
    "type": "regular",
    "status": "published",
    "name": {"en": "Spring sale", "pl": "Wiosenna wyprzedaz"},
    "description": {"en": "10% off"},
    "stock": 2,
    "terms": {"discount_percent": 10, "code_pattern": "SPRING-####"},
}


async def create(api, body):
    response = await api.post("/api/catalog/offers", json=body)
    assert response.status_code == 201, response.text
    return response.json()["offer"]


async def member(api, who, offer_id, action, method="POST", **body):
    return await api.request(
        method, f"/api/members/{who}/offers/{offer_id}/{action}", json=body or None
    )


async def test_the_catalog_over_http(settings, processes):
    processes.start_pipeline(settings.model_copy(update={"signup_enabled": True}))
    key, other_key = await sign_up(settings, "Shop"), await sign_up(settings, "Other shop")
    async with client(settings, key) as api, client(settings, other_key) as other:
        spring = await create(api, SPRING)
        assert (spring["version"], spring["uses_count"], spring["stock"]) == (1, 0, 2)

        for bad, field in [
            ({**SPRING, "colour": "red"}, "body.colour"),
            ({**SPRING, "stock": -1}, "body.stock"),
            ({**SPRING, "name": {"english": "x"}}, "body.name"),
            (
                {"visible_since": "2030-01-02T00:00:00Z", "visible_until": "2030-01-01T00:00:00Z"},
                "body.visible_until",
            ),
        ]:
            refused = await api.post("/api/catalog/offers", json=bad)
            assert refused.status_code == 422, refused.text
            assert field in [d["loc"] for d in refused.json()["error"]["details"]], refused.text

        # Stock 2: two uses, then out_of_stock; the counts follow.
        codes = []
        for who in ("ann", "bob"):
            used = await member(api, who, spring["id"], "use")
            assert used.status_code == 200, used.text
            codes.append(used.json()["use"]["code"])
        assert all(code.startswith("SPRING-") for code in codes) and len(set(codes)) == 2
        empty = await member(api, "cid", spring["id"], "use")
        assert empty.status_code == 409 and empty.json()["error"]["code"] == "out_of_stock"
        read = (await api.get(f"/api/catalog/offers/{spring['id']}")).json()["offer"]
        assert (read["uses_count"], read["refusals_count"]) == (2, 1)

        # An exclusive offer: not seen nor usable until granted.
        vip = await create(api, {"type": "exclusive", "status": "published", "name": {"en": "VIP"}})
        seen_ids = lambda r: [o["id"] for o in r.json()["offers"]]  # noqa: E731
        listed = await api.get("/api/members/ann/offers")
        assert vip["id"] not in seen_ids(listed) and spring["id"] in seen_ids(listed)
        not_granted = await member(api, "ann", vip["id"], "use")
        assert not_granted.status_code == 409
        assert not_granted.json()["error"]["code"] == "not_granted"
        assert (await member(api, "ann", vip["id"], "grant")).status_code == 200
        assert vip["id"] in seen_ids(await api.get("/api/members/ann/offers"))
        assert (await member(api, "ann", vip["id"], "use")).status_code == 200

        # Localized and paged.
        polish = await api.get(
            "/api/members/ann/offers",
            params={"order_by": "name DESC", "per_page": 1, "include_pagination_info": "true"},
            headers={"Accept-Language": "pl-PL,pl;q=0.9"},
        )
        assert polish.status_code == 200, polish.text
        assert polish.json()["offers"][0]["name"] == "Wiosenna wyprzedaz"
        assert polish.json()["pagination_info"]["total_count"] == 2
        assert polish.json()["pagination_info"]["next_page"] == 2
        fallback = await api.get(f"/api/members/ann/offers/{vip['id']}", params={"locale": "pl"})
        assert fallback.json()["offer"]["name"] == "VIP"
        bad_locale = await api.get("/api/members/ann/offers", params={"locale": "polish!"})
        assert bad_locale.status_code == 422
        assert bad_locale.json()["error"]["details"][0]["loc"] == "query.locale"

        # Likes, seen and clicked.
        liked = await member(api, "ann", spring["id"], "like")
        assert liked.status_code == 200 and liked.json()["counts"]["likes_count"] == 1
        assert (await api.get("/api/members/ann/offers", params={"liked": "true"})).json()[
            "offers"
        ][0]["liked"]
        unliked = await member(api, "ann", spring["id"], "like", method="DELETE")
        assert unliked.json()["counts"]["likes_count"] == 0
        await member(api, "ann", spring["id"], "events/seen")
        clicked = await member(api, "ann", spring["id"], "events/clicked")
        assert clicked.json()["counts"]["seen_count"] == 1
        assert clicked.json()["counts"]["clicked_count"] == 1

        # Encoded: used once; a changed token is refused.
        coffee = await create(api, {"status": "published", "name": {"en": "Coffee"}})
        encoded = await member(api, "ann", coffee["id"], "encode")
        assert encoded.status_code == 200, encoded.text
        token = encoded.json()["token"]
        till = {"Idempotency-Key": "till-1-sale-9"}
        first = await api.post("/api/catalog/encoded/use", json={"token": token}, headers=till)
        assert first.status_code == 200, first.text
        retried = await api.post("/api/catalog/encoded/use", json={"token": token}, headers=till)
        assert retried.status_code == 200 and retried.json()["use"] == first.json()["use"]
        again = await api.post("/api/catalog/encoded/use", json={"token": token})
        assert again.status_code == 409 and again.json()["error"]["code"] == "token_used"
        forged = await api.post("/api/catalog/encoded/use", json={"token": "x" + token})
        assert forged.status_code == 400 and forged.json()["error"]["code"] == "bad_token"
        stranger = await other.post("/api/catalog/encoded/use", json={"token": token})
        assert stranger.status_code == 400

        # PATCH merges; archive hides; another tenant sees nothing.
        patched = await api.patch(f"/api/catalog/offers/{coffee['id']}", json={"stock": 5})
        assert patched.status_code == 200, patched.text
        assert (patched.json()["offer"]["stock"], patched.json()["offer"]["version"]) == (5, 2)
        assert (await api.delete(f"/api/catalog/offers/{coffee['id']}")).status_code == 200
        gone = await api.get(f"/api/members/ann/offers/{coffee['id']}")
        assert gone.status_code == 404
        assert (await other.get(f"/api/catalog/offers/{spring['id']}")).status_code == 404
        assert (await other.get(f"/api/members/ann/offers/{spring['id']}")).status_code == 404
        assert (await member(other, "ann", spring["id"], "use")).status_code == 404
        managed = await api.get("/api/catalog/offers", params={"sort_by": "created_at"})
        assert managed.json()["pagination_info"]["total_count"] == 2


async def test_a_use_sent_again_with_its_idempotency_key_is_applied_once(settings, processes):
    """A point of sale that got no answer (a 202, a timeout) sends the use again with the
    same Idempotency-Key: it is answered as the first time, and the stock counts one."""
    processes.start_pipeline(settings.model_copy(update={"signup_enabled": True}))
    key = await sign_up(settings, "Till")
    async with client(settings, key) as api:
        offer = await create(api, {**SPRING, "stock": 5})
        path = f"/api/members/ann/offers/{offer['id']}/use"
        first = await api.post(path, headers={"Idempotency-Key": "till-7-receipt-42"})
        again = await api.post(path, headers={"Idempotency-Key": "till-7-receipt-42"})
        assert first.status_code == again.status_code == 200, (first.text, again.text)
        assert again.json()["use"] == first.json()["use"]
        assert again.json()["counts"]["uses_count"] == 1
        other = await api.post(path, headers={"Idempotency-Key": "till-7-receipt-43"})
        assert other.json()["counts"]["uses_count"] == 2
        bob = await api.post(
            f"/api/members/bob/offers/{offer['id']}/use",
            headers={"Idempotency-Key": "till-7-receipt-42"},  # another member: another use
        )
        assert bob.json()["counts"]["uses_count"] == 3
        bad = await api.post(path, headers={"Idempotency-Key": "has space"})
        assert bad.status_code == 422
        read = (await api.get(f"/api/catalog/offers/{offer['id']}")).json()["offer"]
        assert read["uses_count"] == 3

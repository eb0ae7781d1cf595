"""End to end: offers moved along their lifecycle over the API, expired by the worker's
timers, redeemed and engaged with by the customer's events, and their history."""

import asyncio

import pytest
from support import wait_for
from test_offers import client, sign_up

pytestmark = pytest.mark.e2e

STATUSES = ["generated", "approved", "sent", "redeemed", "expired"]
ALLOWED = {
    "generated": ["approved", "expired"],
    "approved": ["sent", "expired"],
    "sent": ["redeemed", "expired"],
    "redeemed": [],
    "expired": [],
}
PATH_TO = {
    "generated": [],
    "approved": ["approved"],
    "sent": ["approved", "sent"],
    "redeemed": ["approved", "sent", "redeemed"],
    "expired": ["expired"],
}


async def customer(api, external_id, **profile):
    body = {
        "customer": {"id": external_id, "email": f"{external_id}@example.com", **profile},
        "events": [{"type": "click", "data": {}}],
    }
    assert (await api.post("/api/webhook/events", json=body)).status_code == 200


async def new_offer(api, external_id="ann"):
    async def generate():
        return await api.post("/api/offers/generate", json={"external_customer_id": external_id})

    generated = await wait_for(generate, lambda r: r.status_code != 404, what="customer")
    assert generated.status_code == 200, generated.text
    return generated.json()["offer"]


async def patch(api, offer_id, status):
    return await api.patch(f"/api/offers/{offer_id}", json={"status": status})


async def move(api, offer_id, statuses):
    for status in statuses:
        response = await patch(api, offer_id, status)
        assert response.status_code == 200, response.text


async def test_the_whole_state_machine_over_the_api(settings, processes):
    processes.start_pipeline(settings.model_copy(update={"signup_enabled": True}))
    key = await sign_up(settings, "Ops Console")
    async with client(settings, key) as api:
        await customer(api, "ann")
        for source in STATUSES:
            at_source = (await new_offer(api))["id"]
            await move(api, at_source, PATH_TO[source])
            for target in STATUSES:
                if target in ALLOWED[source]:
                    fresh = (await new_offer(api))["id"]
                    await move(api, fresh, PATH_TO[source])
                    moved = await patch(api, fresh, target)
                    assert moved.status_code == 200, (source, target, moved.text)
                    offer = moved.json()["offer"]
                    assert offer["status"] == target and offer[f"{target}_at"]
                    assert offer["version"] == len(PATH_TO[source]) + 2
                    continue
                refused = await patch(api, at_source, target)
                assert refused.status_code == 409, (source, target, refused.text)
                error = refused.json()["error"]
                assert error["code"] == "invalid_transition"
                assert error["current_status"] == source
                assert error["allowed_statuses"] == ALLOWED[source]
            current = (await api.get(f"/api/offers/{at_source}")).json()["offer"]
            assert current["status"] == source  # refusals changed nothing

        assert (await patch(api, 999_999, "approved")).status_code == 404
        assert (await patch(api, at_source, "bogus")).status_code == 422
        broken = await api.patch(
            f"/api/offers/{at_source}", content=b"{", headers={"content-type": "application/json"}
        )
        assert broken.status_code == 400 and broken.json()["error"]["code"] == "invalid_json"

        # The last fresh offer went generated -> approved -> sent -> expired.
        history = (await api.get(f"/api/offers/{fresh}/events")).json()["events"]
        assert [(e["event_type"], e["previous_status"], e["version"]) for e in history] == [
            ("offer.generated", None, 1),
            ("offer.approved", "generated", 2),
            ("offer.sent", "approved", 3),
            ("offer.expired", "sent", 4),
        ]
        assert history[1]["cause"] == "api key 'Ops Console'"

    other = await sign_up(settings, "Other")
    async with client(settings, other) as api:
        assert (await patch(api, at_source, "expired")).status_code == 404
        assert (await api.get(f"/api/offers/{at_source}/events")).status_code == 404


async def test_answers_are_what_a_following_read_reads(settings, processes):
    """Read-your-writes: the offer ``generate`` or ``PATCH`` answers with is the one a GET
    right after reads, its history holds the change, for offers changed at once."""
    processes.start_pipeline(settings.model_copy(update={"signup_enabled": True}))
    key = await sign_up(settings)
    async with client(settings, key) as api:
        names = [f"ryw-{n}" for n in range(8)]
        await asyncio.gather(*(customer(api, name) for name in names))
        made = await asyncio.gather(*(new_offer(api, name) for name in names))
        for offer in made:
            read = await api.get(f"/api/offers/{offer['id']}")
            assert read.json()["offer"] == offer

        async def change_then_read(offer, status):
            answered = await patch(api, offer["id"], status)
            assert answered.status_code == 200, answered.text
            read = (await api.get(f"/api/offers/{offer['id']}")).json()["offer"]
            history = (await api.get(f"/api/offers/{offer['id']}/events")).json()["events"]
            return answered.json()["offer"], read, history

        for status, version in (("approved", 2), ("sent", 3)):
            results = await asyncio.gather(*(change_then_read(o, status) for o in made))
            for answered, read, history in results:
                assert answered == read
                assert answered["status"] == status and answered["version"] == version
                assert [e["version"] for e in history] == list(range(1, version + 1))


async def test_conflicting_changes_at_once_one_wins(settings, processes, db):
    """Two approvals of one offer, and a redemption racing an expiry: one of each pair is
    applied and the other answers 409; one event each."""
    processes.start_pipeline(settings.model_copy(update={"signup_enabled": True}))
    key = await sign_up(settings)
    async with client(settings, key) as api:
        await customer(api, "bo")
        for path, pair in (
            ([], ("approved", "approved")),
            (["approved", "sent"], ("redeemed", "expired")),
        ):
            offer = await new_offer(api, "bo")
            await move(api, offer["id"], path)
            answers = await asyncio.gather(*(patch(api, offer["id"], s) for s in pair))
            assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
            history = (await api.get(f"/api/offers/{offer['id']}/events")).json()["events"]
            assert len(history) == len(path) + 2
        rows = await db.fetch("SELECT event_type, count(*) FROM offer_events GROUP BY 1")
        assert sum(r["count"] for r in rows if r["event_type"] != "offer.generated") == 4


async def test_offers_are_approved_by_policy_and_expire_by_themselves(settings, processes):
    processes.start_pipeline(settings.model_copy(update={"signup_enabled": True}))
    key = await sign_up(settings)
    async with client(settings, key) as api:
        policy = {"min_valid_days": 1, "max_valid_days": 1, "auto_approve": True}
        assert (await api.put("/api/policy", json=policy)).status_code == 200
        await customer(api, "cy")
        approved = await new_offer(api, "cy")

        async def approval():
            return (await api.get(f"/api/offers/{approved['id']}/events")).json()["events"]

        history = await wait_for(approval, lambda h: len(h) == 2, what="approval")
        assert history[1]["cause"] == "policy: auto_approve"
        assert history[1]["status"] == "approved"

        # Offers valid for no time at all expire at once, without an approval.
        policy = {"min_valid_days": 0, "max_valid_days": 0, "auto_approve": True}
        assert (await api.put("/api/policy", json=policy)).status_code == 200
        offer = await new_offer(api, "cy")
        assert offer["offer_terms"]["valid_days"] == 0

        async def status():
            return (await api.get(f"/api/offers/{offer['id']}")).json()["offer"]["status"]

        await wait_for(status, lambda s: s == "expired", timeout=20, what="expiry")
        history = (await api.get(f"/api/offers/{offer['id']}/events")).json()["events"]
        assert [(e["event_type"], e["cause"].split(":")[0]) for e in history] == [
            ("offer.generated", "api key 'My Key'"),
            ("offer.expired", "timer"),
        ]
        refused = await patch(api, offer["id"], "approved")
        assert refused.status_code == 409


async def test_purchases_redeem_and_engagement_is_recorded(settings, processes, db):
    processes.start_pipeline(settings.model_copy(update={"signup_enabled": True}))
    key = await sign_up(settings)
    async with client(settings, key) as api:
        await customer(api, "dee")
        await customer(api, "eve")
        offer = await new_offer(api, "dee")
        code = offer["offer_terms"]["code"]
        early = await new_offer(api, "dee")  # never sent
        await move(api, offer["id"], ["approved", "sent"])

        async def post(who, *events):
            body = {"customer": {"id": who}, "events": list(events)}
            answer = await api.post("/api/webhook/events", json=body)
            assert answer.status_code == 200, answer.text

        seen = {"type": "offer_seen", "data": {"offer_id": offer["id"]}}
        clicked = {"type": "offer_clicked", "data": {"offer_id": str(offer["id"])}}
        await post("dee", seen, clicked)
        await post("eve", {"type": "purchase", "data": {"offer_code": code, "amount": 10}})
        await post("dee", {"type": "purchase", "data": {"offer_code": code, "amount": 49.5}})
        await post("dee", {"type": "purchase", "data": {"offer_code": code, "amount": 3}})
        await post("dee", {"type": "purchase", "data": {"offer_id": early["id"], "amount": 3}})

        async def history():
            return (await api.get(f"/api/offers/{offer['id']}/events")).json()["events"]

        events = await wait_for(history, lambda h: len(h) == 7, what="history")
        assert [e["event_type"] for e in events] == [
            "offer.generated",
            "offer.approved",
            "offer.sent",
            "offer.seen",
            "offer.clicked",
            "offer.redeemed",
            "offer.redemption_rejected",  # the second purchase with the same code
        ]
        assert events[3]["status"] == "sent" and events[5]["cause"].startswith("event ")
        redeemed = (await api.get(f"/api/offers/{offer['id']}")).json()["offer"]
        assert redeemed["status"] == "redeemed"
        assert redeemed["redemption"]["amount"] in ("49.5", 49.5)
        assert redeemed["seen_at"] and redeemed["clicked_at"]

        async def rejections():
            return await db.fetch(
                "SELECT offer_id, event->>'reason' AS reason FROM offer_events"
                " WHERE event_type = 'offer.redemption_rejected' ORDER BY occurred_at"
            )

        rejected = await wait_for(rejections, lambda r: len(r) == 3, what="rejections")
        reasons = {(r["offer_id"], r["reason"]) for r in rejected}
        assert (None, f"no offer with code {code!r} was issued to this customer") in reasons
        assert (offer["id"], f"offer {offer['id']} is already redeemed") in reasons
        not_sent = f"offer {early['id']} is generated: only a sent offer can be redeemed"
        assert (early["id"], not_sent) in reasons

"""`proffer-stream up` stopped and started again: its embedded broker lost every topic,
and the offers made before behave as before (issue 20, items 1 and 2)."""

import time

import httpx
import pytest
from support import api_key_from, start_up, stop, up_ports

pytestmark = pytest.mark.e2e


def api(port, key):
    return httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def wait_for(read, ok, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        found = read()
        if ok(found):
            return found
        assert time.monotonic() < deadline, f"no {what}: {found}"
        time.sleep(0.2)


def post_events(client, who, *events):
    body = {"customer": {"id": who, "email": f"{who}@example.com"}, "events": list(events)}
    answer = client.post("/api/webhook/events", json=body)
    assert answer.status_code == 200, answer.text


def generate(client, who):
    answer = wait_for(
        lambda: client.post("/api/offers/generate", json={"external_customer_id": who}),
        lambda r: r.status_code != 404,
        what=f"{who} known",
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["offer"]


def offer_of(client, offer_id):
    return client.get(f"/api/offers/{offer_id}").json()["offer"]


def decisions_of(client, who):
    customer = client.get(f"/api/customers/external/{who}").json()["customer"]
    return client.get(f"/api/customers/{customer['id']}/decisions").json()["decisions"]


def test_offers_made_before_a_restart_of_up_behave_as_before(tmp_path):
    ports = up_ports()
    # No expiry check in the first run: the offer due at once is still open when up stops.
    process, log_path = start_up(tmp_path, *ports, env={"PROFFER_EXPIRY_CHECK_SECONDS": "3600"})
    try:
        key = api_key_from(log_path)
        with api(ports[0], key) as client:
            for who in ("ann", "bob", "cy", "dee"):
                post_events(client, who, {"type": "click", "data": {}})
            ann = generate(client, "ann")
            bob = generate(client, "bob")
            policy = {"min_valid_days": 0, "max_valid_days": 0}
            assert client.put("/api/policy", json=policy).status_code == 200
            cy = generate(client, "cy")
            assert cy["offer_terms"]["valid_days"] == 0
            wait_for(lambda: client.get("/api/offers").json(), lambda b: b["total"] == 3, "rows")
            assert offer_of(client, cy["id"])["status"] == "generated"
    finally:
        stop(process, log_path)

    process, log_path = start_up(tmp_path, *ports)  # the broker starts empty
    try:
        assert api_key_from(log_path) == key
        with api(ports[0], key) as client:
            # expiry at expires_at: the timer of an offer made before the restart
            wait_for(
                lambda: offer_of(client, cy["id"])["status"],
                lambda s: s == "expired",
                "expiry of an offer made before the restart",
                timeout=30,
            )
            history = client.get(f"/api/offers/{cy['id']}/events").json()["events"]
            assert [e["event_type"] for e in history] == ["offer.generated", "offer.expired"]
            assert history[1]["cause"].startswith("timer")

            # lifecycle changes
            for status in ("approved", "sent"):
                moved = client.patch(f"/api/offers/{ann['id']}", json={"status": status})
                assert moved.status_code == 200, moved.text
                assert moved.json()["offer"]["status"] == status

            # redemption by the offer's code
            code = ann["offer_terms"]["code"]
            purchase = {"type": "purchase", "data": {"offer_code": code, "amount": 20}}
            post_events(client, "ann", purchase)
            redeemed = wait_for(
                lambda: offer_of(client, ann["id"]),
                lambda o: o["status"] in ("redeemed", "expired"),
                "redemption by code",
            )
            assert redeemed["status"] == "redeemed", redeemed

            # the cooldown: bob had an offer before the restart; a rule firing now is
            # suppressed, not a second offer
            views = [{"type": "page_view", "data": {"page": "/pricing"}}] * 2
            post_events(client, "bob", *views)
            decided = wait_for(
                lambda: decisions_of(client, "bob"), lambda d: len(d) == 2, "bob's rule decided"
            )
            newest = decided[0]
            assert newest["outcome"] == "suppressed", newest
            assert newest["trace"]["rule_id"] == "pricing-interest"
            assert any(
                r.startswith("cooldown: an offer was made") for r in newest["trace"]["suppressed"]
            ), newest["trace"]["suppressed"]
            assert {o["id"] for o in client.get("/api/offers").json()["offers"]} == {
                ann["id"],
                bob["id"],
                cy["id"],
            }

            # generate for a customer with no event since the restart
            dee = client.post("/api/offers/generate", json={"external_customer_id": "dee"})
            assert dee.status_code == 200, dee.text
            assert dee.json()["offer"]["external_customer_id"] == "dee"
    finally:
        stop(process, log_path)

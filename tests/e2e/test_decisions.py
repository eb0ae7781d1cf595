"""End to end: personalised offers through the real worker, sink and gateway: each
answer code, the billing platform's form body and Basic auth, localization, context
conditions, never two entries, and attribution (decision, viewed, accepted, purchase
with the offer's code, redeemed) in PostgreSQL and on the decisions topic."""

import asyncio
import base64
import json

import pytest
from support import messages_on_topic, wait_for
from test_lifecycle import customer, move, new_offer
from test_offers import client, sign_up

from proffer_stream.kafka.topics import topics_for

pytestmark = pytest.mark.e2e

MOBILE_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"
DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0"
CATALOG = {
    "spring": {"name": {"en": "Spring sale", "pl": "Wiosenna wyprzedaz"}},
    "polish": {"name": {"en": "For Poland"}, "priority": 10, "context": {"locales": ["pl"]}},
    "admins": {
        "name": {"en": "Team plan"},
        "priority": 7,
        "context": {"roles": ["admin"], "custom_equals": {"plan": "pro"}},
        "options": [
            {"id": "upgrade", "label": {"en": "Upgrade"}, "processing_type": "billing_update"}
        ],
    },
    "mobile": {"name": {"en": "App only"}, "priority": 5, "context": {"devices": ["mobile"]}},
    "pricing": {
        "name": {"en": "Pricing page"},
        "priority": 3,
        "context": {"url_patterns": ["*/pricing*"]},
    },
}


async def decide(api, **body):
    answer = await api.post("/api/v2/personalized_offers", json=body)
    assert answer.status_code == 200, answer.text
    offers = answer.json()["personalized_offers"]
    assert len(offers) <= 1 and isinstance(answer.json()["expires_at"], int)
    return offers[0] if offers else None


async def test_personalized_offers(settings, processes, db):
    processes.start_pipeline(settings.model_copy(update={"signup_enabled": True}))
    key, other_key = await sign_up(settings, "Shop"), await sign_up(settings, "Other")
    async with client(settings, key) as api, client(settings, other_key) as other:
        ids = {}
        for name, fields in CATALOG.items():
            created = await api.post("/api/catalog/offers", json={"status": "published", **fields})
            assert created.status_code == 201, created.text
            ids[name] = f"catalog_{created.json()['offer']['id']}"

        # An unknown customer: an empty list, and the decision is logged all the same.
        assert await decide(api, customer_id="nobody") is None
        await customer(api, "ann")

        async def spring():
            return await decide(api, customer_id="ann")

        plain = await wait_for(spring, lambda o: o is not None, what="ann's profile")
        assert plain["offer_id"] == ids["spring"]
        assert plain["content"]["title"] == "Spring sale"
        assert plain["options"][0]["processing_type"] == "checkout"

        # Context conditions decide, priority first.
        polish = await decide(api, customer_id="ann", request_context={"locale": "pl-PL"})
        assert polish["offer_id"] == ids["polish"] and polish["content"]["title"] == "For Poland"
        admin = await decide(
            api,
            customer_id="ann",
            roles=["viewer", "admin"],
            custom={"plan": "pro"},
            request_context={"user_agent": MOBILE_UA, "url": "https://x.io/pricing"},
        )
        assert admin["offer_id"] == ids["admins"]
        assert admin["options"][0] == {
            "id": "upgrade",
            "label": "Upgrade",
            "processing_type": "billing_update",
            "processing_layout": "in_app",
            "redirect_url": None,
        }
        mobile = await decide(
            api, customer_id="ann", request_context={"user_agent": MOBILE_UA}, roles=["admin"]
        )
        assert mobile["offer_id"] == ids["mobile"]
        pricing = await decide(
            api,
            customer_id="ann",
            request_context={"user_agent": DESKTOP_UA, "url": "https://x.io/pricing?a=1"},
        )
        assert pricing["offer_id"] == ids["pricing"]
        localized = await decide(api, customer_id="ann", request_context={"locale": "pl_PL"})
        assert localized["offer_id"] == ids["polish"]

        # The billing platform's wire format: a form with bracket keys, Basic auth, and
        # its request-origin headers as context.
        basic = base64.b64encode(f"{key}:".encode()).decode()
        form = {
            "customer_id": "ann",
            "roles[0]": "admin",
            "custom": json.dumps({"plan": "pro"}),
            "request_context[url]": "https://x.io/home",
            "request_context[locale]": "en-US",
            "request_context[timezone]": "Europe/Warsaw",
        }
        answer = await api.post(
            "/api/v2/personalized_offers",
            data=form,
            headers={"Authorization": f"Basic {basic}"},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["personalized_offers"][0]["offer_id"] == ids["admins"]
        by_header = await api.post(
            "/api/v2/personalized_offers",
            data={"customer_id": "ann", "request_context[user_agent]": DESKTOP_UA},
            headers={
                "Authorization": f"Basic {basic}",
                "chargebee-request-origin-device": "mobile",
            },
        )
        assert by_header.json()["personalized_offers"][0]["offer_id"] == ids["mobile"]

        # Bad input: 422 naming the field; a bad key: 401.
        for body, loc in [
            ({"first_name": "Ann"}, "body.customer_id"),
            ({"customer_id": "ann", "request_context": {"locale": "english!"}}, None),
            ({"customer_id": "ann", "request_context": {"timezone": "Mars/Base"}}, None),
            ({"customer_id": "ann", "custom": "{not json"}, "body.custom"),
            ({"customer_id": "ann", "roles": "admin"}, "body.roles"),
        ]:
            refused = await api.post("/api/v2/personalized_offers", json=body)
            assert refused.status_code == 422, refused.text
            locs = [d["loc"] for d in refused.json()["error"]["details"]]
            expected = loc or (
                "body.request_context.locale"
                if "locale" in body.get("request_context", {})
                else "body.request_context.timezone"
            )
            assert expected in locs, refused.text
        malformed = await api.post(
            "/api/v2/personalized_offers",
            content=b"customer_id=ann&roles[0=x",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert malformed.status_code == 422 and malformed.json()["error"]["details"][0][
            "loc"
        ].startswith("body")
        wrong = base64.b64encode(b"pk_wrong:").decode()
        unauthorized = await api.post(
            "/api/v2/personalized_offers",
            json={"customer_id": "ann"},
            headers={"Authorization": f"Basic {wrong}"},
        )
        assert unauthorized.status_code == 401

        # Attribution: an approved offer of the customer's own wins where no catalog
        # offer has priority; viewed, accepted, fulfilled, bought with its code, redeemed.
        await customer(api, "bob")
        offer = await new_offer(api, "bob")
        await move(api, offer["id"], ["approved", "sent"])
        chosen = await decide(api, customer_id="bob")
        assert chosen["offer_id"] == f"offer_{offer['id']}", chosen
        decision_id = chosen["id"]
        viewed = await api.post(
            "/api/v2/offer_events",
            data={"personalized_offer_id": decision_id, "type": "viewed"},
        )
        assert viewed.status_code == 200, viewed.text
        started = await api.post(
            "/api/v2/offer_fulfillments",
            json={"personalized_offer_id": decision_id, "option_id": "accept"},
        )
        assert started.status_code == 200, started.text
        fulfillment = started.json()["offer_fulfillment"]
        assert fulfillment["status"] == "in_progress"
        bad_option = await api.post(
            "/api/v2/offer_fulfillments",
            json={"personalized_offer_id": decision_id, "option_id": "nope"},
        )
        assert bad_option.status_code == 422
        assert bad_option.json()["error"]["details"][0]["loc"] == "body.option_id"
        done = await api.post(
            f"/api/v2/offer_fulfillments/{fulfillment['id']}", json={"status": "completed"}
        )
        assert done.status_code == 200 and done.json()["offer_fulfillment"]["status"] == "completed"
        purchase = {
            "type": "purchase",
            "data": {"offer_code": offer["offer_terms"]["code"], "amount": 20},
        }
        bought = await api.post(
            "/api/webhook/events", json={"customer": {"id": "bob"}, "events": [purchase]}
        )
        assert bought.status_code == 200

        async def attributed():
            return (await api.get(f"/api/decisions/{decision_id}")).json()

        view = await wait_for(
            attributed,
            lambda v: (
                v.get("offer", {})
                and v["offer"]["status"] == "redeemed"
                and len(v["reactions"]) == 3
            ),
            what="redemption",
        )
        assert [r["reaction"] for r in view["reactions"]] == [
            "viewed",
            "fulfillment_started",
            "fulfillment_completed",
        ]
        assert view["fulfillments"][0]["status"] == "completed"
        assert view["decision"]["choice"]["probability"] == 1.0
        traced = {c["ref"]: c for c in view["decision"]["candidates"]}
        assert traced[ids["spring"]]["lost_because"][0].startswith("expected value")
        assert traced[ids["polish"]]["lost_because"][0].startswith("locale None")
        again = await api.get(f"/api/v2/offer_fulfillments/{fulfillment['id']}")
        assert again.json()["offer_fulfillment"]["status"] == "completed"
        ended = await api.post(
            f"/api/v2/offer_fulfillments/{fulfillment['id']}", json={"status": "failed"}
        )
        assert ended.status_code == 409

        # Two ends sent at once, before either is projected: one is kept, and only its
        # caller is told so; the other is 409 with the status kept.
        second = await api.post(
            "/api/v2/offer_fulfillments",
            json={"personalized_offer_id": decision_id, "option_id": "accept"},
        )
        url = f"/api/v2/offer_fulfillments/{second.json()['offer_fulfillment']['id']}"
        both = await asyncio.gather(
            api.post(url, json={"status": "completed"}), api.post(url, json={"status": "failed"})
        )
        assert sorted(r.status_code for r in both) == [200, 409], [r.text for r in both]
        [kept] = [r.json()["offer_fulfillment"]["status"] for r in both if r.status_code == 200]
        assert (await api.get(url)).json()["offer_fulfillment"]["status"] == kept

        # Another tenant sees nothing of it.
        assert (await other.get(f"/api/decisions/{decision_id}")).status_code == 404
        stranger = await other.post(
            "/api/v2/offer_events",
            json={"personalized_offer_id": decision_id, "type": "dismissed"},
        )
        assert stranger.status_code == 404
        assert (await api.get("/api/decisions/dec_1_x")).status_code == 404

        # On the topic: every decision, and the reactions under its id.
        on_topic = await messages_on_topic(settings, topics_for(settings).decisions.name)
        made = [m for m in on_topic if m["kind"] == "decision.made"]
        assert any(m["none_because"] == "unknown customer" for m in made)
        reactions = [
            m["reaction"]
            for m in on_topic
            if m.get("decision_id") == decision_id and m["kind"] == "decision.reaction"
        ]
        assert reactions[:3] == ["viewed", "fulfillment_started", "fulfillment_completed"]
        assert reactions[3] == "fulfillment_started"  # the second, ended twice at once
        assert sorted(reactions[4:]) == ["fulfillment_completed", "fulfillment_failed"]
        rows = await db.fetchval("SELECT count(*) FROM decisions_made")
        assert rows == len(made)

"""End to end: placements through the real worker, sink and gateway: integrations
managed (through the catalog's definition owner), flows, each answer code of the
placement offers API (201, 202, 403, 404, 422), sites allowed and blocked by Origin,
Referer and parameter, a flow never repeating an offer, shown/accept/decline recorded
against the decision, and other tenants kept out."""

import pytest
from support import messages_on_topic, wait_for
from test_lifecycle import customer, move, new_offer
from test_offers import client, sign_up

from proffer_stream.kafka.topics import topics_for

pytestmark = pytest.mark.e2e

V2 = "/api/v2/integrations"


async def created(api, path, body):
    answer = await api.post(path, json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


async def start_flow(api, integration_id, customer_id, **extra):
    headers = extra.pop("headers", {})
    return await api.post(
        f"{V2}/{integration_id}/flows",
        json={"external_customer_id": customer_id, **extra},
        headers=headers,
    )


async def test_placements(settings, processes, db):
    processes.start_pipeline(settings.model_copy(update={"signup_enabled": True}))
    key, other_key = await sign_up(settings, "Shop"), await sign_up(settings, "Other")
    async with client(settings, key) as api, client(settings, other_key) as other:
        collection = (await created(api, "/api/catalog/collections", {"title": {"en": "Thanks"}}))[
            "collection"
        ]["id"]
        offers = {}
        for name, fields in {
            "top": {"priority": 5, "name": {"en": "Free shipping", "pl": "Darmowa dostawa"}},
            "second": {"priority": 3, "collection_ids": [collection]},
            "third": {"priority": 1, "collection_ids": [collection]},
            "elsewhere": {"priority": 9},
        }.items():
            body = {"status": "published", "name": {"en": name}, **fields}
            offer = (await created(api, "/api/catalog/offers", body))["offer"]
            offers[f"catalog_{offer['id']}"] = name

        # Integrations: created, listed, read, changed, archived; versioned.
        integration = (
            await created(
                api,
                "/api/integrations",
                {
                    "name": "Checkout",
                    "allowed_sites": ["*.Shop.example"],
                    "blocked_sites": ["bad.shop.example"],
                    "placements": {
                        "order_confirmation": {
                            "collection_ids": [collection],
                            "offer_ids": [
                                int(r.split("_")[1]) for r, n in offers.items() if n == "top"
                            ],
                        }
                    },
                },
            )
        )["integration"]
        iid = integration["id"]
        assert integration["version"] == 1 and integration["allowed_sites"] == ["*.shop.example"]
        changed = await api.patch(
            f"/api/integrations/{iid}",
            json={
                "placements": {
                    **integration["placements"],
                    "order_status": {"open_offers": True},
                }
            },
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["integration"]["version"] == 2
        read = (await api.get(f"/api/integrations/{iid}")).json()["integration"]
        assert sorted(read["placements"]) == ["order_confirmation", "order_status"]
        gone = (await created(api, "/api/integrations", {"name": "Old"}))["integration"]["id"]
        assert (await api.delete(f"/api/integrations/{gone}")).status_code == 200
        listed = (await api.get("/api/integrations")).json()["integrations"]
        assert [i["id"] for i in listed] == [iid]
        bad = await api.post("/api/integrations", json={"name": "x", "blocked_sites": ["a b"]})
        assert bad.status_code == 422 and "body.blocked_sites" in bad.text
        assert (await other.get(f"/api/integrations/{iid}")).status_code == 404

        # Flows, and sites: allowed by pattern, blocked by name, Origin, Referer, parameter.
        started = await start_flow(api, iid, "nobody", site="www.shop.example")
        assert started.status_code == 201, started.text
        flow = started.json()["data"]["id"]
        assert started.json()["data"]["site"] == "www.shop.example"
        for extra in [
            {"site": "bad.shop.example"},
            {"site": "https://evil.example/cart"},
            {"headers": {"Origin": "https://bad.shop.example"}},
            {"headers": {"Referer": "https://evil.example/thanks?id=1"}},
        ]:
            refused = await start_flow(api, iid, "ann", **extra)
            assert refused.status_code == 403, (extra, refused.text)
            assert refused.json()["errors"][0]["code"] == "site_blocked"
        allowed = await start_flow(api, iid, "ann", headers={"Origin": "https://shop.example"})
        assert allowed.status_code == 201
        not_a_site = await start_flow(api, iid, "ann", site="http://")
        assert not_a_site.status_code == 422
        assert not_a_site.json()["errors"][0]["source"] == {"pointer": "/site"}

        def offers_of(flow_id, integration_id=iid):
            return f"{V2}/{integration_id}/flows/{flow_id}/offers"

        # An unknown customer: 202 with empty data, logged as a decision all the same.
        none = await api.post(offers_of(flow), params={"placement": "order_confirmation"})
        assert none.status_code == 202, none.text
        assert none.json()["data"] == [] and none.json()["decision_id"].startswith("dec_")
        # 403 by parameter or Origin on the offers too; 422 unknown placement; 404s.
        blocked = await api.post(
            offers_of(flow), params={"placement": "order_confirmation", "site": "bad.shop.example"}
        )
        assert blocked.status_code == 403
        blocked = await api.post(
            offers_of(flow),
            params={"placement": "order_confirmation"},
            headers={"Origin": "http://evil.example"},
        )
        assert blocked.status_code == 403
        unknown = await api.post(offers_of(flow), params={"placement": "homepage"})
        assert unknown.status_code == 422
        assert unknown.json()["errors"] == [
            {
                "status": "422",
                "code": "validation_error",
                "title": "Invalid request.",
                "detail": "no placement 'homepage' (known: ['order_confirmation', 'order_status'])",
                "source": {"parameter": "placement"},
            }
        ]
        for path in [
            offers_of(flow, 12345),
            offers_of(flow, gone),
            offers_of("flw_e30.forged"),
            offers_of(flow[:-2] + ("AA" if not flow.endswith("AA") else "BB")),
        ]:
            missing = await api.post(path, params={"placement": "order_confirmation"})
            assert missing.status_code == 404, (path, missing.text)
        stranger = await other.post(offers_of(flow), params={"placement": "order_confirmation"})
        assert stranger.status_code == 404
        assert (await start_flow(api, 12345, "ann")).status_code == 404
        for not_ours in ["abc", "0", "9" * 30]:  # a string id that names none: 404 too
            missing = await start_flow(api, not_ours, "ann")
            assert missing.status_code == 404, (not_ours, missing.text)
            assert missing.json()["errors"][0]["code"] == "integration_not_found"

        # Ann's flow: each offer once, best first; the first by the next link.
        await customer(api, "ann")
        flow = (await start_flow(api, iid, "ann")).json()["data"]["id"]
        other_flow = (await start_flow(api, iid, "ann")).json()["data"]["id"]

        async def first():
            return await api.post(
                offers_of(flow), params={"placement": "order_confirmation", "first_name": "Ann"}
            )

        answer = await wait_for(first, lambda r: r.status_code == 201, what="ann's profile")
        body = answer.json()
        assert body["api_version"]
        offer, event = body["data"]
        decision_id = offer["id"]
        assert offers[offer["offer_id"]] == "top"
        kinds = [(c["type"], c.get("role")) for c in offer["children"]]
        assert kinds == [("text", "headline"), ("text", "body"), ("view", "actions")]
        assert offer["children"][0]["text"] == "Ann, Free shipping"
        actions = [c["action"] for c in offer["children"][2]["children"]]
        assert actions == ["accept", "decline"]
        assert event["type"] == "event" and event["name"] == "decision.made"
        links = {link["rel"]: link["href"] for link in body["links"]}
        assert sorted(links) == ["accept", "decline", "next", "shown"]

        shown = await api.post(links["shown"])
        assert shown.status_code == 200, shown.text
        assert shown.json()["data"][1]["name"] == "offer.shown"
        seen = [offer["offer_id"]]
        following = await api.post(links["next"])  # carries after=<this decision>
        assert following.status_code == 201, following.text
        seen.append(following.json()["data"][0]["offer_id"])
        declined = following.json()["data"][0]["id"]
        assert (await api.post(following.json()["links"][1]["href"])).status_code == 200
        while True:  # the shown call waits for the decision: the next one knows it
            nxt = await api.post(offers_of(flow), params={"placement": "order_confirmation"})
            if nxt.status_code == 202:
                break
            assert nxt.status_code == 201, nxt.text
            chosen = nxt.json()["data"][0]
            assert (await api.post(f"{offers_of(flow)}/{chosen['id']}/shown")).status_code == 200
            seen.append(chosen["offer_id"])
        assert sorted(offers[s] for s in seen) == ["second", "third", "top"]
        assert len(set(seen)) == len(seen)
        # Another flow of the same customer starts again from the best, in the language
        # of Accept-Language (or of a locale parameter: 422 when it is not a language).
        fresh = await api.post(
            offers_of(other_flow),
            params={"placement": "order_confirmation"},
            headers={"Accept-Language": "pl-PL,pl;q=0.9,en;q=0.5"},
        )
        assert offers[fresh.json()["data"][0]["offer_id"]] == "top"
        assert fresh.json()["data"][0]["children"][0]["text"] == "Darmowa dostawa"
        bad_locale = await api.post(
            offers_of(other_flow), params={"placement": "order_confirmation", "locale": "xx@"}
        )
        assert bad_locale.status_code == 422
        assert bad_locale.json()["errors"][0]["source"] == {"parameter": "locale"}

        # Accept, recorded against the decision; another flow's offer is not this one's.
        accepted = await api.post(f"{offers_of(flow)}/{decision_id}/accept")
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["data"][1]["name"] == "offer.accepted"
        elsewhere = await api.post(f"{offers_of(other_flow)}/{decision_id}/shown")
        assert elsewhere.status_code == 404
        none_id = none.json()["decision_id"]
        assert (await api.post(f"{offers_of(flow)}/{none_id}/shown")).status_code == 404

        async def reactions_to(some_id):
            return (await api.get(f"/api/decisions/{some_id}")).json()

        view = await wait_for(
            lambda: reactions_to(decision_id),
            lambda v: len(v["reactions"]) == 2,
            what="shown and accepted projected",
        )
        assert [r["reaction"] for r in view["reactions"]] == ["shown", "accepted"]
        assert view["reactions"][1]["option_id"] == "accept"
        assert view["decision"]["surface"] == "placements"
        assert view["decision"]["context"]["placement"] == "order_confirmation"
        assert view["decision"]["context"]["flow_id"] == flow
        declined_view = await wait_for(
            lambda: reactions_to(declined), lambda v: bool(v["reactions"]), what="declined"
        )
        assert [r["reaction"] for r in declined_view["reactions"]] == ["declined"]
        last = (await api.get(f"/api/decisions/{none_id}")).json()["decision"]
        assert last["choice"] is None and last["none_because"] == "unknown customer"
        assert (await other.get(f"/api/decisions/{decision_id}")).status_code == 404

        # The customer's own open offers, where the placement takes them.
        await customer(api, "bob")
        own = await new_offer(api, "bob")
        await move(api, own["id"], ["approved"])
        bob_flow = (await start_flow(api, iid, "bob")).json()["data"]["id"]
        status = await api.post(offers_of(bob_flow), params={"placement": "order_status"})
        assert status.status_code == 201, status.text
        assert status.json()["data"][0]["offer_id"] == f"offer_{own['id']}"

        # On the topic: every decision with its flow and placement, reactions by id.
        on_topic = await messages_on_topic(settings, topics_for(settings).decisions.name)
        made = [m for m in on_topic if m["kind"] == "decision.made"]
        in_flow = [m for m in made if m["context"]["flow_id"] == flow]
        # (before ann's profile was projected, the first asks were "unknown customer")
        assert [m["choice"]["ref"] for m in in_flow if m["choice"]] == seen
        assert in_flow[-1]["choice"] is None
        assert {m["context"]["placement"] for m in in_flow} == {"order_confirmation"}
        reactions = [
            m["reaction"]
            for m in on_topic
            if m["kind"] == "decision.reaction" and m["decision_id"] == decision_id
        ]
        assert reactions == ["shown", "accepted"]
        rows = await db.fetchval("SELECT count(*) FROM decisions_made WHERE flow_id = $1", flow)
        assert rows == len(in_flow)

"""Chaos for decisions: kill -9 of the gateway under decision load, personalised offers
and placement offers at once. Every decision a client was answered with is on the
decisions topic (it is logged, acked, before the answer goes out)."""

import asyncio

import httpx
import pytest
from support import messages_on_topic, wait_for

from proffer_stream.db import keys
from proffer_stream.kafka.topics import topics_for

pytestmark = pytest.mark.chaos

CUSTOMERS = 20
CLIENTS = 8


def client(settings, key):
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{settings.gateway_port}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


async def test_kill_9_of_the_gateway_loses_no_answered_decision(settings, processes, db):
    processes.start_pipeline(settings)
    key = (await keys.create_key(db, "acme", "chaos")).key
    async with client(settings, key) as api:
        created = await api.post(
            "/api/catalog/offers", json={"status": "published", "name": {"en": "Hello"}}
        )
        assert created.status_code == 201, created.text
        customers = [f"c{n}" for n in range(CUSTOMERS)]
        body = {"customer": {"id": "x"}, "events": [{"type": "click"}]}
        for who in customers:
            body["customer"]["id"] = who
            assert (await api.post("/api/webhook/events", json=body)).status_code == 200

        async def last_known():
            answer = await api.post(
                "/api/v2/personalized_offers", json={"customer_id": customers[-1]}
            )
            return answer.json()["personalized_offers"]

        await wait_for(last_known, bool, what="the customers' profiles")
        integration = await api.post(
            "/api/integrations",
            json={"name": "Shop", "placements": {"checkout": {"all_catalog_offers": True}}},
        )
        assert integration.status_code == 201, integration.text
        flows_url = f"/api/v2/integrations/{integration.json()['integration']['id']}/flows"
        flows = []
        for who in customers:
            started = await api.post(flows_url, json={"external_customer_id": who})
            assert started.status_code == 201, started.text
            flows.append(f"{flows_url}/{started.json()['data']['id']}/offers")

    answered: list[str] = []
    stop = asyncio.Event()

    async def load(n: int) -> None:
        async with client(settings, key) as own:
            i = n
            while not stop.is_set():
                try:
                    if n % 2:  # a placement: the first offer of a flow, then none (202)
                        answer = await own.post(
                            flows[i % CUSTOMERS], params={"placement": "checkout"}
                        )
                    else:
                        answer = await own.post(
                            "/api/v2/personalized_offers",
                            json={"customer_id": customers[i % CUSTOMERS]},
                        )
                except httpx.TransportError:
                    return  # the gateway is gone
                i += CLIENTS
                got = answer.json() if answer.status_code in (200, 201, 202) else {}
                answered.extend(o["id"] for o in got.get("personalized_offers", []))
                if answer.status_code == 201:
                    answered.append(got["data"][0]["id"])
                elif answer.status_code == 202:
                    answered.append(got["decision_id"])

    loaders = [asyncio.create_task(load(n)) for n in range(CLIENTS)]
    await wait_for(lambda: asyncio.sleep(0, len(answered)), lambda n: n >= 300, what="load")
    processes.kill("gateway")
    stop.set()
    await asyncio.gather(*loaders)

    on_topic = await messages_on_topic(settings, topics_for(settings).decisions.name)
    logged = {m["decision_id"] for m in on_topic if m["kind"] == "decision.made"}
    missing = set(answered) - logged
    assert answered and not missing, f"{len(missing)} of {len(answered)} answered not logged"
    placed = [m for m in on_topic if m["kind"] == "decision.made" and m["context"]["flow_id"]]
    assert placed, "no placement decision was made under the load"

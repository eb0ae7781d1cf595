"""Issue 21: an id the gateway never issued to the caller's tenant is 404, not 202 for
ever; an id it issued is 202 until decided. And another tenant's offer history is 404.

The gateway in-process against the real broker and PostgreSQL, with no worker: what it
publishes is never decided, so every id it issues stays pending.
"""

from datetime import UTC, datetime

import pytest
from test_gateway import auth, client_for

from proffer_stream.core.identity import customer_id, new_request_id
from proffer_stream.db import keys
from proffer_stream.offers.models import OfferEvent
from proffer_stream.signals.fold import new_signals

pytestmark = pytest.mark.integration

POLLS = [
    "/api/offers/requests/{}",
    "/api/offers/commands/{}",
    "/api/config/commands/{}",
]


@pytest.fixture
def quick(settings):
    return settings.model_copy(update={"offer_wait_seconds": 0.2})


@pytest.fixture
async def tenants(db):
    acme = (await keys.create_key(db, "acme", "test")).key
    other = (await keys.create_key(db, "other", "test")).key
    return acme, other


async def add_customer(db, tenant_id, external_id):
    """A customer as the sink would have projected one (there is no sink here)."""
    signals = new_signals(tenant_id, external_id)
    signals.event_count = 3
    await db.execute(
        "INSERT INTO customers (tenant_id, id, external_id, event_count, signals, updated_at)"
        " VALUES ($1, $2, $3, 3, $4, $5)",
        tenant_id,
        customer_id(tenant_id, external_id),
        external_id,
        signals.model_dump_json(),
        datetime.now(UTC),
    )


@pytest.mark.parametrize("poll", POLLS)
async def test_an_id_never_issued_is_404_not_found(quick, tenants, poll):
    acme, _ = tenants
    async with client_for(quick) as client:
        for made_up in (new_request_id(), "never-issued", "x" * 200):
            response = await client.get(poll.format(made_up), headers=auth(acme))
            assert response.status_code == 404, response.text
            assert response.json()["error"]["code"] == "not_found"


async def test_a_generate_request_is_pending_for_its_tenant_and_unknown_to_another(
    quick, tenants, db
):
    acme, other = tenants
    await add_customer(db, "acme", "u1")
    async with client_for(quick) as client:
        asked = await client.post(
            "/api/offers/generate", json={"external_customer_id": "u1"}, headers=auth(acme)
        )
        assert asked.status_code == 202, asked.text
        poll = asked.json()["poll_url"]
        assert (await client.get(poll, headers=auth(acme))).status_code == 202
        theirs = await client.get(poll, headers=auth(other))
        assert theirs.status_code == 404 and theirs.json()["error"]["code"] == "not_found"
        # the same id is no offer command
        request_id = asked.json()["request_id"]
        wrong_kind = await client.get(f"/api/offers/commands/{request_id}", headers=auth(acme))
        assert wrong_kind.status_code == 404


async def test_a_batch_issues_every_request_id_it_answers_with(quick, tenants, db):
    acme, other = tenants
    for external_id in ("u1", "u2"):
        await add_customer(db, "acme", external_id)
    async with client_for(quick) as client:
        batch = await client.post(
            "/api/offers/generate-batch", json={"min_events": 1}, headers=auth(acme)
        )
        assert batch.status_code == 200, batch.text
        request_ids = batch.json()["request_ids"]
        assert len(request_ids) == 2
        for request_id in request_ids:
            poll = f"/api/offers/requests/{request_id}"
            assert (await client.get(poll, headers=auth(acme))).status_code == 202
            assert (await client.get(poll, headers=auth(other))).status_code == 404


async def test_a_config_change_is_pending_for_its_tenant_and_unknown_to_another(quick, tenants):
    acme, other = tenants
    async with client_for(quick) as client:
        put = await client.put("/api/policy", json={"max_discount_percent": 20}, headers=auth(acme))
        assert put.status_code == 202, put.text
        poll = put.json()["poll_url"]
        assert (await client.get(poll, headers=auth(acme))).status_code == 202
        assert (await client.get(poll, headers=auth(other))).status_code == 404


async def test_another_tenants_offer_history_is_404_like_the_offer(quick, tenants, db):
    """An event of the caller's tenant that names another tenant's offer id (a purchase
    carrying it) does not make that offer's history readable."""
    acme, _ = tenants
    rejected = OfferEvent(
        event_id="evt-9:redeem",
        event_type="offer.redemption_rejected",
        tenant_id="acme",
        customer_id=customer_id("acme", "u1"),
        external_customer_id="u1",
        offer_id=424242,  # another tenant's offer
        occurred_at=datetime.now(UTC),
        cause="evt-9",
        reason="not this customer's offer",
    )
    await db.execute(
        "INSERT INTO offer_events"
        " (tenant_id, event_id, offer_id, event_type, version, occurred_at, cause, event)"
        " VALUES ('acme', $1, 424242, $2, 0, $3, $4, $5)",
        rejected.event_id,
        rejected.event_type,
        rejected.occurred_at,
        rejected.cause,
        rejected.model_dump_json(),
    )
    async with client_for(quick) as client:
        offer = await client.get("/api/offers/424242", headers=auth(acme))
        events = await client.get("/api/offers/424242/events", headers=auth(acme))
    assert offer.status_code == events.status_code == 404

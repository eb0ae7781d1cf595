"""``GET /api/stats`` in-process: the caller's tenant only, the window, its JSON shape."""

from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from proffer_stream.api.app import create_app
from proffer_stream.db import keys

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@asynccontextmanager
async def client_for(settings):
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


async def insert(db, tenant_id, offer_id, rule_id, generated_at, sent_at, redeemed_at, amount):
    await db.execute(
        """
        INSERT INTO offers (tenant_id, id, customer_id, external_customer_id, status, channel,
                            offer_type, rule_id, request_id, version, generated_at,
                            expires_at, offer, sent_at, redeemed_at, redeemed_amount)
        VALUES ($1, $2::bigint, 1, 'c1', $3, 'email', 'discount', $4, 'r' || $2::text, 1,
                $5::timestamptz, $5::timestamptz + interval '7 days', '{}', $6, $7, $8::numeric)
        """,
        tenant_id,
        offer_id,
        "redeemed" if redeemed_at else "generated",
        rule_id,
        generated_at,
        sent_at,
        redeemed_at,
        amount,
    )


async def test_stats_of_the_callers_offers_in_the_window(settings, db):
    key = (await keys.create_key(db, "acme", "test")).key
    sent, redeemed = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    await insert(db, "acme", 1, "pricing-interest", T0, sent, redeemed, "19.99")
    await insert(db, "acme", 2, None, T0 + timedelta(minutes=1), None, None, None)
    await insert(db, "acme", 3, None, T0 + timedelta(days=1), None, None, None)
    await insert(db, "other", 4, "pricing-interest", T0, sent, redeemed, "500")
    headers = {"Authorization": f"Bearer {key}"}
    window = {"from": "2026-03-01T00:00:00Z", "to": "2026-03-02T00:00:00"}  # naive: UTC
    async with client_for(settings) as client:
        response = await client.get("/api/stats", params=window, headers=headers)
        everything = await client.get("/api/stats", headers=headers)
        backwards = await client.get(
            "/api/stats", params={"from": window["to"], "to": window["from"]}, headers=headers
        )
        unauthenticated = await client.get("/api/stats")

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["success"], body["from"], body["to"]) == (
        True,
        "2026-03-01T00:00:00Z",
        "2026-03-02T00:00:00Z",
    )
    totals = body["totals"]
    assert totals["offers"] == 2
    assert totals["by_status"] == {
        "generated": 1,
        "approved": 0,
        "sent": 0,
        "redeemed": 1,
        "expired": 0,
    }
    assert totals["by_channel"] == {"email": 2, "sms": 0, "push": 0, "in_app": 0}
    assert totals["funnel"][0] == {
        "stage": "generated",
        "count": 2,
        "rate_from_previous": None,
        "rate_from_generated": 1.0,
    }
    assert [(s["stage"], s["count"]) for s in totals["funnel"]][1:] == [
        ("approved", 0),
        ("sent", 1),
        ("seen", 0),
        ("clicked", 0),
        ("redeemed", 1),
    ]
    assert totals["redeemed_revenue"] == "19.99"  # money is exact: a decimal string
    assert totals["median_seconds_sent_to_redeemed"] == 3600.0
    assert [(r["rule_id"], r["offers"], r["redeemed_revenue"]) for r in body["by_rule"]] == [
        ("pricing-interest", 1, "19.99"),
        (None, 1, "0.00"),
    ]

    assert everything.status_code == 200
    assert (everything.json()["from"], everything.json()["totals"]["offers"]) == (None, 3)

    assert backwards.status_code == 422
    assert backwards.json()["success"] is False
    assert backwards.json()["error"]["code"] == "invalid_window"
    assert unauthenticated.status_code == 401


@pytest.mark.parametrize(
    "params",
    [
        {"from": "yesterday"},
        {"to": "2026-13-01T00:00:00Z"},
        {"to": "9999-12-31T23:59:59-05:00"},
        {"to": "2.529181016456867e-55"},  # a number with a '-' (the fuzz test found it)
        {"from": "30.0"},
    ],
)
async def test_a_bad_window_is_a_json_422(settings, db, params):
    key = (await keys.create_key(db, "acme", "test")).key
    async with client_for(settings) as client:
        response = await client.get(
            "/api/stats", params=params, headers={"Authorization": f"Bearer {key}"}
        )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"

"""Offer stats against a real PostgreSQL: exact counts, funnel, revenue, medians, per rule."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from proffer_stream.db.stats import offer_stats

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, tzinfo=UTC)
H = timedelta(hours=1)
PRICING, CART = "pricing-interest", "cart-abandon"


def at(hours: float) -> datetime:
    return T0 + hours * H


# id, rule, status, channel, generated, approved, sent, seen, clicked, redeemed, amount
WINDOW = [
    (1, PRICING, "redeemed", "email", at(1), at(1), at(2), at(2), at(2), at(3), "100.00"),
    (2, PRICING, "redeemed", "email", at(2), at(2), at(3), at(3), at(3), at(5), "50.255"),
    (3, PRICING, "sent", "sms", at(3), at(3), at(4), at(4), None, None, None),
    (4, PRICING, "expired", "push", at(4), at(4), at(5), None, None, None, None),
    (5, CART, "redeemed", "in_app", at(5), at(5), at(6), at(6), at(6), at(6.5), "20"),
    (6, CART, "approved", "email", at(6), at(6), None, None, None, None, None),
    (7, CART, "redeemed", "sms", at(7), at(7), at(8), at(8), None, at(9), None),
    (8, None, "generated", "email", T0, None, None, None, None, None, None),
    (9, None, "redeemed", "email", at(8), at(8), at(9), None, None, at(9 + 1 / 6), "10"),
    (10, None, "redeemed", "push", at(10), None, None, None, None, at(11), "5"),
]
OUTSIDE = [
    (11, PRICING, "generated", "email", T0 - timedelta(seconds=1), *[None] * 6),
    (12, None, "redeemed", "sms", at(48), at(48), at(48), None, None, at(49), "999"),
]
TO = at(48)


async def insert(db, rows, tenant_id="acme"):
    await db.executemany(
        """
        INSERT INTO offers (tenant_id, id, customer_id, external_customer_id, status, channel,
                            offer_type, rule_id, request_id, version, generated_at,
                            expires_at, offer, approved_at, sent_at, seen_at, clicked_at,
                            redeemed_at, redeemed_amount)
        VALUES ($1, $2::bigint, $2::bigint, 'c' || $2::text, $4, $5, 'discount', $3,
                'r' || $2::text, 1, $6::timestamptz, $6::timestamptz + interval '7 days', '{}',
                $7, $8, $9, $10, $11, $12::numeric)
        """,
        [
            (tenant_id, i, rule, status, channel, gen, appr, sent, seen, click, red, amount)
            for i, rule, status, channel, gen, appr, sent, seen, click, red, amount in rows
        ],
    )


def funnel(stats):
    return [(s.stage, s.count, s.rate_from_previous, s.rate_from_generated) for s in stats.funnel]


def statuses(generated=0, approved=0, sent=0, redeemed=0, expired=0):
    return {
        "generated": generated,
        "approved": approved,
        "sent": sent,
        "redeemed": redeemed,
        "expired": expired,
    }


def channels(email=0, sms=0, push=0, in_app=0):
    return {"email": email, "sms": sms, "push": push, "in_app": in_app}


@pytest.fixture
async def offers(db):
    await insert(db, WINDOW + OUTSIDE)
    await insert(db, [(1, PRICING, "redeemed", "email", at(1), *[at(2)] * 5, "500")], "other")
    return db


async def test_totals_of_the_window(offers):
    totals = (await offer_stats(offers, "acme", since=T0, until=TO)).totals
    assert totals.offers == 10
    assert totals.by_status == statuses(generated=1, approved=1, sent=1, redeemed=6, expired=1)
    assert totals.by_channel == channels(email=5, sms=2, push=2, in_app=1)
    assert funnel(totals) == [
        ("generated", 10, None, 1.0),
        ("approved", 8, 0.8, 0.8),
        ("sent", 7, 0.875, 0.7),
        ("seen", 5, 0.7143, 0.5),
        ("clicked", 3, 0.6, 0.3),
        ("redeemed", 6, 2.0, 0.6),
    ]
    # 185.255 rounded half away from zero; offer 7's redemption had no amount.
    assert totals.redeemed_revenue == Decimal("185.26")
    # Sent -> redeemed of 1, 2, 5, 7, 9 (10 was never sent): 600, 1800, 3600, 3600, 7200.
    assert totals.median_seconds_sent_to_redeemed == 3600.0


async def test_per_rule_the_rules_that_earn_most_first_then_the_api(offers):
    by_rule = (await offer_stats(offers, "acme", since=T0, until=TO)).by_rule
    assert [r.rule_id for r in by_rule] == [PRICING, CART, None]
    pricing, cart, api = by_rule

    assert pricing.offers == 4
    assert pricing.by_status == statuses(sent=1, redeemed=2, expired=1)
    assert pricing.by_channel == channels(email=2, sms=1, push=1)
    assert funnel(pricing) == [
        ("generated", 4, None, 1.0),
        ("approved", 4, 1.0, 1.0),
        ("sent", 4, 1.0, 1.0),
        ("seen", 3, 0.75, 0.75),
        ("clicked", 2, 0.6667, 0.5),
        ("redeemed", 2, 1.0, 0.5),
    ]
    assert pricing.redeemed_revenue == Decimal("150.26")
    assert pricing.median_seconds_sent_to_redeemed == 5400.0  # between 3600 and 7200

    assert cart.offers == 3
    assert cart.by_status == statuses(approved=1, redeemed=2)
    assert cart.by_channel == channels(email=1, sms=1, in_app=1)
    assert funnel(cart) == [
        ("generated", 3, None, 1.0),
        ("approved", 3, 1.0, 1.0),
        ("sent", 2, 0.6667, 0.6667),
        ("seen", 2, 1.0, 0.6667),
        ("clicked", 1, 0.5, 0.3333),
        ("redeemed", 2, 2.0, 0.6667),
    ]
    assert cart.redeemed_revenue == Decimal("20.00")
    assert cart.median_seconds_sent_to_redeemed == 2700.0

    assert api.offers == 3
    assert api.by_status == statuses(generated=1, redeemed=2)
    assert api.by_channel == channels(email=2, push=1)
    assert funnel(api) == [
        ("generated", 3, None, 1.0),
        ("approved", 1, 0.3333, 0.3333),
        ("sent", 1, 1.0, 0.3333),
        ("seen", 0, 0.0, 0.0),
        ("clicked", 0, None, 0.0),
        ("redeemed", 2, None, 0.6667),
    ]
    assert api.redeemed_revenue == Decimal("15.00")
    assert api.median_seconds_sent_to_redeemed == 600.0


async def test_the_window_is_from_inclusive_to_exclusive_and_optional(offers):
    everything = await offer_stats(offers, "acme")
    assert everything.totals.offers == 12
    assert everything.totals.redeemed_revenue == Decimal("1184.26")
    assert [r.rule_id for r in everything.by_rule] == [None, PRICING, CART]

    from_only = await offer_stats(offers, "acme", since=T0)
    assert from_only.totals.offers == 11  # 8 (at from) is in, 11 (a second before) is out
    to_only = await offer_stats(offers, "acme", until=TO)
    assert to_only.totals.offers == 11  # 12 (at to) is out
    later = await offer_stats(offers, "acme", since=at(5), until=at(8))
    assert (later.totals.offers, [r.rule_id for r in later.by_rule]) == (3, [CART])


async def test_no_offers_gives_zeros_and_nulls(offers):
    for found in (
        await offer_stats(offers, "nobody"),
        await offer_stats(offers, "acme", since=at(100), until=at(200)),
    ):
        assert found.by_rule == []
        totals = found.totals
        assert totals.offers == 0
        assert totals.by_status == statuses()
        assert totals.by_channel == channels()
        assert [(s.count, s.rate_from_previous, s.rate_from_generated) for s in totals.funnel] == [
            (0, None, None)
        ] * 6
        assert totals.redeemed_revenue == 0
        assert totals.median_seconds_sent_to_redeemed is None

"""What a worker restores of a customer's offers from PostgreSQL, against a real one."""

from datetime import UTC, datetime, timedelta

import pytest

from proffer_stream.core.identity import customer_id
from proffer_stream.db.offers import (
    apply_command_outcomes,
    apply_offer_events,
    load_customer_offers,
    open_offers,
    rules_decided,
)
from proffer_stream.offers.models import (
    CommandOutcome,
    DecisionTrace,
    Offer,
    OfferEvent,
    OfferTerms,
)

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)


def offer(external, id_, *, at=NOW, status="generated", version=1, **times):
    return Offer(
        id=id_,
        customer_id=customer_id("acme", external),
        external_customer_id=external,
        tenant_id="acme",
        headline="h",
        body_copy="b",
        offer_type="discount",
        offer_terms=OfferTerms(discount_percent=10, code=f"SAVE{id_}", valid_days=7),
        channel="email",
        status=status,
        ai_reasoning="r",
        expires_at=at + timedelta(days=7),
        generated_at=at,
        request_id=f"req-{id_}",
        writer="built-in",
        version=version,
        **times,
    )


def decided(o, at):
    return OfferEvent(
        event_id=f"{o.request_id}:decided",
        event_type="offer.generated",
        tenant_id="acme",
        customer_id=o.customer_id,
        external_customer_id=o.external_customer_id,
        request_id=o.request_id,
        offer_id=o.id,
        status=o.status,
        version=o.version,
        occurred_at=at,
        cause="test",
        offer=o,
        trace=DecisionTrace(request_id=o.request_id, source="api"),
    )


def changed(o, command_id, event_type, at):
    return OfferEvent(
        event_id=command_id,
        event_type=event_type,
        tenant_id="acme",
        customer_id=o.customer_id,
        external_customer_id=o.external_customer_id,
        command_id=command_id,
        offer_id=o.id,
        status=o.status,
        version=o.version,
        occurred_at=at,
        cause="test",
        offer=o,
    )


def suppressed(external, request_id, at):
    return OfferEvent(
        event_id=f"{request_id}:decided",
        event_type="offer.suppressed",
        tenant_id="acme",
        customer_id=customer_id("acme", external),
        external_customer_id=external,
        request_id=request_id,
        occurred_at=at,
        cause="rule",
        trace=DecisionTrace(request_id=request_id, source="rule", suppressed=["cooldown"]),
    )


async def test_a_customers_offers_ids_and_cooldowns_come_back(db):
    t = [NOW - timedelta(hours=5 - n) for n in range(6)]
    first = offer("ann", 1, at=t[0])
    redeemed = offer(
        "ann", 1, at=t[0], status="redeemed", version=4, sent_at=t[2], redeemed_at=t[3]
    )
    second = offer("ann", 2, at=t[1])
    approved = offer("ann", 2, at=t[1], status="approved", version=2, approved_at=t[4])
    other = offer("bob", 3, at=t[2])
    async with db.acquire() as conn:
        await apply_offer_events(
            conn,
            [
                decided(first, t[0]),
                decided(second, t[1]),
                changed(redeemed, "ev-9:redeem", "offer.redeemed", t[3]),
                changed(approved, "cmd-approve", "offer.approved", t[4]),
                suppressed("ann", "rule-x", t[5]),
                decided(other, t[2]),
            ],
        )
        rejected = CommandOutcome(
            command_id="cmd-refused",
            tenant_id="acme",
            offer_id=1,
            outcome="rejected",
            reason="offer 1 is already redeemed",
            occurred_at=t[5],
        )
        await apply_command_outcomes(conn, [rejected])

    restored = await load_customer_offers(db, [("acme", "ann"), ("acme", "nobody")])
    assert list(restored) == [("acme", "ann")], "a customer with nothing stored is left out"
    ann = restored[("acme", "ann")]
    assert {i: o.status for i, o in ann.offers.items()} == {1: "redeemed", 2: "approved"}
    assert ann.decided == [
        "req-1",
        "req-2",
        "ev-9:redeem",
        "cmd-approve",
        "cmd-refused",
        "rule-x",
    ]  # oldest first; at one time, by id
    assert ann.last_offer_at == t[1] and ann.last_redeemed_at == t[3]
    assert ann.source_offset == -1

    still_open = {(o.external_customer_id, o.offer_id) for o in await open_offers(db)}
    assert still_open == {("ann", 2), ("bob", 3)}


async def test_rule_firings_with_a_decision_after_them_are_known(db):
    fired_at = NOW - timedelta(hours=1)
    async with db.acquire() as conn:
        await apply_offer_events(conn, [suppressed("ann", "rule-req-1", fired_at)])
        await db.execute('UPDATE decisions SET trace = trace || \'{"rule_id": "r1"}\'')
    ann = customer_id("acme", "ann")
    decided = await rules_decided(
        db,
        [
            ("acme", ann, "r1", fired_at - timedelta(seconds=1)),  # decided after it
            ("acme", ann, "r2", fired_at),  # another rule: no decision
            ("acme", customer_id("acme", "bob"), "r1", fired_at),  # another customer
        ],
    )
    assert decided == {("acme", ann, "r1")}
    later = await rules_decided(db, [("acme", ann, "r1", NOW)])  # fired again since
    assert later == set()

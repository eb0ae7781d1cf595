"""A customer's offers restored from what PostgreSQL kept, pure: after the broker lost the
offers table's log, lifecycle changes, redemptions, replays and cooldowns go on as before."""

from datetime import UTC, datetime, timedelta

import pytest

from proffer_stream.offers.commands import apply_command
from proffer_stream.offers.decide import (
    MAX_KEPT_OFFERS,
    MAX_REMEMBERED_REQUESTS,
    already_decided,
    restored_offers,
    suppression,
)
from proffer_stream.offers.models import Offer, OfferCommand, OfferRequest, OfferTerms
from proffer_stream.offers.policy import Policy
from proffer_stream.offers.triggers import unmark_undecided
from proffer_stream.signals.fold import new_signals

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 17, 12, 0, tzinfo=UTC)


def offer(id_, *, at=NOW, status="generated", code=None, redeemed_at=None):
    return Offer(
        id=id_,
        customer_id=1,
        external_customer_id="u1",
        tenant_id="acme",
        headline="h",
        body_copy="b",
        offer_type="discount",
        offer_terms=OfferTerms(discount_percent=10, code=code or f"SAVE{id_}", valid_days=7),
        channel="email",
        status=status,
        ai_reasoning="r",
        expires_at=at + timedelta(days=7),
        generated_at=at,
        redeemed_at=redeemed_at,
        request_id=f"req-{id_}",
        writer="built-in",
    )


def command(command_id, action, **fields):
    return OfferCommand(
        command_id=command_id,
        tenant_id="acme",
        external_customer_id="u1",
        action=action,
        cause="test",
        issued_at=NOW + timedelta(hours=1),
        **fields,
    )


def request(request_id, source="rule"):
    return OfferRequest(
        request_id=request_id,
        tenant_id="acme",
        external_customer_id="u1",
        source=source,
        requested_at=NOW,
    )


def test_the_offers_the_ids_and_the_cooldowns_come_back_with_no_offset():
    state = restored_offers(
        "acme",
        "u1",
        [offer(1), offer(2, at=NOW - timedelta(hours=3))],
        [(NOW, "req-1"), (NOW - timedelta(hours=3), "req-2"), (NOW + timedelta(hours=1), "cmd-a")],
    )
    assert set(state.offers) == {1, 2}
    assert state.decided == ["req-2", "req-1", "cmd-a"]  # oldest first, as remembered
    assert state.last_offer_at == NOW and state.last_redeemed_at is None
    assert state.source_offset == -1
    assert already_decided(state, "req-1", 0) and not already_decided(state, "req-3", 0)
    assert not already_decided(state, "cmd-b", 0), "offset 0 of the new log is no replay"


def test_what_the_agent_keeps_is_what_comes_back():
    many = [offer(n, at=NOW - timedelta(minutes=n)) for n in range(1, MAX_KEPT_OFFERS + 6)]
    ids = [(NOW - timedelta(seconds=n), f"id-{n}") for n in range(MAX_REMEMBERED_REQUESTS + 5)]
    ids.append((NOW + timedelta(seconds=1), "id-7"))  # decided again later: counts as newest
    state = restored_offers("acme", "u1", many, ids)
    assert sorted(state.offers) == list(range(1, MAX_KEPT_OFFERS + 1)), "the newest"
    assert len(state.decided) == MAX_REMEMBERED_REQUESTS
    assert state.decided[-1] == "id-7" and state.decided.count("id-7") == 1
    assert state.decided[-2] == "id-0" and "id-1004" not in state.decided


def test_the_cooldowns_are_the_latest_of_what_postgresql_and_the_offers_say():
    older = NOW - timedelta(days=40)
    redeemed = offer(1, status="redeemed", redeemed_at=NOW - timedelta(hours=1))
    state = restored_offers(
        "acme",
        "u1",
        [redeemed],
        [],
        last_offer_at=NOW + timedelta(minutes=1),  # an offer older ones pushed out
        last_redeemed_at=older,
    )
    assert state.last_offer_at == NOW + timedelta(minutes=1)
    assert state.last_redeemed_at == NOW - timedelta(hours=1)


def test_a_restored_offer_moves_on_is_redeemed_by_code_and_holds_the_cooldown():
    state = restored_offers("acme", "u1", [offer(1)], [])
    approve = command("c1", "transition", offer_id=1, status="approved")
    applied = apply_command(state, approve, 0, Policy())
    assert applied.outcome is not None and applied.outcome.outcome == "applied"
    assert state.offers[1].status == "approved"

    state = restored_offers("acme", "u1", [offer(1, status="sent", code="SPRING")], [])
    [redeemed] = apply_command(
        state, command("ev-1:redeem", "redeem", code="spring", amount=5), 0, Policy()
    ).events
    assert redeemed.event_type == "offer.redeemed"
    assert state.last_redeemed_at == NOW + timedelta(hours=1)

    later = NOW + timedelta(hours=2)
    signals = new_signals("acme", "u1")
    [made, used] = suppression(state, request("r9"), signals, None, Policy(), later)
    assert made.startswith("cooldown: an offer was made") and "redeemed" in used
    assert suppression(state, request("r10", "api"), signals, None, Policy(), later) == []


def test_a_rule_marked_as_fired_with_no_decision_is_unmarked_at_restore():
    """Its request was lost with the broker: its cooldown must not block the customer."""
    state = new_signals("acme", "u1")
    earlier = NOW - timedelta(days=3)
    state.rules_fired_at = {"pricing-interest": NOW, "cart-abandoners": earlier}
    state.last_offer_requested_at = NOW
    assert unmark_undecided(state, {"cart-abandoners"}) == ["pricing-interest"]
    assert state.rules_fired_at == {"cart-abandoners": earlier}
    assert state.last_offer_requested_at == earlier
    assert unmark_undecided(state, {"cart-abandoners"}) == []
    assert unmark_undecided(state, set()) == ["cart-abandoners"]
    assert state.rules_fired_at == {} and state.last_offer_requested_at is None

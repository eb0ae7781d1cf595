"""The offer lifecycle, pure: the whole state machine as a table, commands, behaviour, timers."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proffer_stream.ingest.models import NormalizedEvent
from proffer_stream.offers.behaviour import offer_commands
from proffer_stream.offers.commands import apply_command, auto_approval
from proffer_stream.offers.decide import CustomerOffers, suppression
from proffer_stream.offers.lifecycle import NEXT_STATUSES, TransitionRejected, engage, transition
from proffer_stream.offers.models import (
    Offer,
    OfferCommand,
    OfferEvent,
    OfferRequest,
    OfferStatus,
    OfferTerms,
)
from proffer_stream.offers.policy import Policy
from proffer_stream.signals.fold import new_signals
from proffer_stream.worker.expiry import ExpiryTimers

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 17, 12, 0, tzinfo=UTC)
STATUSES: list[OfferStatus] = ["generated", "approved", "sent", "redeemed", "expired"]
ALLOWED = {
    ("generated", "approved"),
    ("generated", "expired"),
    ("approved", "sent"),
    ("approved", "expired"),
    ("sent", "redeemed"),
    ("sent", "expired"),
}


def offer(status: OfferStatus = "generated", *, id_=7, code="SAVE10", days=7, version=1):
    return Offer(
        id=id_,
        customer_id=1,
        external_customer_id="u1",
        tenant_id="acme",
        headline="h",
        body_copy="b",
        offer_type="discount",
        offer_terms=OfferTerms(discount_percent=10, code=code, valid_days=days),
        channel="email",
        status=status,
        ai_reasoning="r",
        expires_at=NOW + timedelta(days=days),
        generated_at=NOW,
        request_id="req-1",
        writer="built-in",
        version=version,
    )


@pytest.mark.parametrize("source", STATUSES)
@pytest.mark.parametrize("target", STATUSES)
def test_every_pair_of_statuses(source, target):
    """The reference's table: each allowed move changes the status, time and version;
    every other pair is refused, saying where the offer may go."""
    at = NOW + timedelta(hours=1)
    if (source, target) in ALLOWED:
        moved = transition(offer(source), target, at)
        assert (moved.status, moved.version, getattr(moved, f"{target}_at")) == (target, 2, at)
    else:
        with pytest.raises(TransitionRejected) as refused:
            transition(offer(source), target, at)
        assert refused.value.allowed == list(NEXT_STATUSES[source])
        assert refused.value.status == source


def test_an_offer_past_its_expiry_can_only_expire():
    late = NOW + timedelta(days=8)
    with pytest.raises(TransitionRejected) as refused:
        transition(offer("sent"), "redeemed", late)
    assert refused.value.allowed == ["expired"] and "expired at" in refused.value.reason
    assert transition(offer("sent"), "expired", late).status == "expired"


def test_a_tenant_may_let_approved_offers_be_redeemed():
    with pytest.raises(TransitionRejected, match="only a sent offer can be redeemed"):
        transition(offer("approved"), "redeemed", NOW)
    assert transition(offer("approved"), "redeemed", NOW, redeem_approved=True).status == (
        "redeemed"
    )


@given(st.lists(st.sampled_from(STATUSES), max_size=8))
def test_any_sequence_of_moves_only_follows_the_table(targets):
    current, at = offer(), NOW
    for target in targets:
        at += timedelta(minutes=1)
        try:
            moved = transition(current, target, at)
        except TransitionRejected:
            continue
        assert (current.status, moved.status) in ALLOWED
        assert moved.version == current.version + 1
        current = moved


def test_engagement_keeps_the_first_time_and_moves_the_version():
    seen = engage(offer(), "seen", NOW + timedelta(minutes=5))
    again = engage(seen, "seen", NOW + timedelta(minutes=9))
    assert again.seen_at == NOW + timedelta(minutes=5) and again.version == 3
    assert again.status == "generated"


def state_with(*offers):
    state = CustomerOffers(tenant_id="acme", external_customer_id="u1")
    state.offers = {o.id: o for o in offers}
    return state


def command(action, *, offset_id="c1", at=NOW, **fields):
    return OfferCommand(
        command_id=offset_id,
        tenant_id="acme",
        external_customer_id="u1",
        action=action,
        cause="test",
        issued_at=at,
        **fields,
    )


def test_a_transition_command_changes_the_offer_once_with_its_outcome():
    state = state_with(offer())
    applied = apply_command(
        state, command("transition", offer_id=7, status="approved"), 3, Policy()
    )
    [event] = applied.events
    assert (event.event_type, event.previous_status, event.status, event.version) == (
        "offer.approved",
        "generated",
        "approved",
        2,
    )
    assert event.offer.status == "approved" and state.offers[7].status == "approved"
    assert applied.outcome.outcome == "applied" and applied.outcome.allowed == ["sent", "expired"]
    assert "c1" in state.decided and state.source_offset == 3


def test_a_refused_transition_makes_no_event_and_a_rejected_outcome():
    state = state_with(offer("sent"))
    applied = apply_command(
        state, command("transition", offer_id=7, status="approved"), 0, Policy()
    )
    assert applied.events == []
    assert applied.outcome.outcome == "rejected"
    assert applied.outcome.allowed == ["redeemed", "expired"]
    assert applied.outcome.status == "sent"
    assert state.offers[7].version == 1


def test_redemption_by_code_and_every_refusal():
    sent = offer("sent", code="SAVE10")
    state = state_with(sent, offer("generated", id_=8, code="EARLY"))
    redeem = command("redeem", code="save10", amount=Decimal("42.50"), offset_id="e1:redeem")
    [event] = apply_command(state, redeem, 0, Policy()).events
    assert event.event_type == "offer.redeemed" and event.offer.redemption.amount == Decimal(
        "42.50"
    )
    cases = {
        "SAVE10": "offer 7 is already redeemed",
        "EARLY": "only a sent offer can be redeemed",
        "OTHER": "no offer with code 'OTHER' was issued to this customer",
    }
    for n, (code, why) in enumerate(cases.items()):
        [refused] = apply_command(
            state, command("redeem", code=code, offset_id=f"x{n}"), 0, Policy()
        ).events
        assert refused.event_type == "offer.redemption_rejected" and why in refused.reason
    assert state.offers[7].version == 2 and state.offers[8].status == "generated"


def test_a_redemption_naming_another_customers_offer_stays_in_the_buyers_history():
    state = state_with(offer("sent", code="SAVE10"))
    theirs = command("redeem", offer_id=99, offset_id="b1:redeem")
    [refused] = apply_command(state, theirs, 0, Policy()).events
    assert refused.event_type == "offer.redemption_rejected"
    assert refused.offer_id is None and "id 99" in refused.reason
    assert refused.external_customer_id == state.external_customer_id


def test_the_timer_expires_only_an_open_offer_whose_time_came():
    state = state_with(offer(days=1), offer("redeemed", id_=8, days=1))
    early = command("expire", offer_id=7, at=NOW + timedelta(hours=1))
    assert apply_command(state, early, 0, Policy()).events == []
    due = NOW + timedelta(days=1)
    [event] = apply_command(state, command("expire", offer_id=7, at=due), 1, Policy()).events
    assert event.event_type == "offer.expired" and event.status == "expired"
    assert apply_command(state, command("expire", offer_id=8, at=due), 2, Policy()).events == []


def test_auto_approve_follows_the_tenants_policy():
    generated = OfferEvent(
        event_id="req-1:decided",
        event_type="offer.generated",
        tenant_id="acme",
        customer_id=1,
        external_customer_id="u1",
        request_id="req-1",
        offer_id=7,
        status="generated",
        version=1,
        occurred_at=NOW,
        cause="rule",
        offer=offer(),
    )
    state = state_with(offer())
    assert auto_approval(state, generated, Policy()) is None
    approved = auto_approval(state, generated, Policy(auto_approve=True))
    assert approved.event_id == "req-1:approved" and approved.version == 2
    assert state.offers[7].status == "approved"


def event(type_, data, id_="ev-1"):
    return NormalizedEvent(id=id_, type=type_, data=data, occurred_at=NOW, received_at=NOW)


def test_events_that_concern_offers_become_commands_and_the_rest_do_not():
    commands = offer_commands(
        "acme",
        "u1",
        [
            event("offer_seen", {"offer_id": 7}, "a"),
            event("offer_clicked", {"offer_id": "7"}, "b"),
            event("purchase", {"offer_code": "SAVE10", "amount": 30}, "c"),
            event("purchase", {"offer_id": 7, "amount": "nan"}, "d"),
            event("purchase", {"amount": 5}, "e"),
            event("offer_seen", {"offer_id": True}, "f"),
            event("offer_seen", {"offer_id": 2**60}, "g"),
            event("page_view", {"offer_id": 7}, "h"),
            event("purchase", {"code": "x" * 500}, "i"),
        ],
    )
    assert [(c.command_id, c.action, c.offer_id, c.code, c.amount) for c in commands] == [
        ("a:seen", "seen", 7, None, None),
        ("b:clicked", "clicked", 7, None, None),
        ("c:redeem", "redeem", None, "SAVE10", Decimal(30)),
        ("d:redeem", "redeem", 7, None, None),
    ]


def test_timers_come_due_in_order_and_once():
    timers = ExpiryTimers()
    state = state_with(offer(id_=1, days=2), offer(id_=2, days=1), offer("expired", id_=3))
    timers.schedule([state])
    timers.schedule([state])  # again: no second timer
    assert len(timers) == 2
    expired: set[int] = set()

    def still_open(customer, offer_id):
        return offer_id not in expired

    assert timers.due(NOW, still_open) == []
    [first] = timers.due(NOW + timedelta(days=1), still_open)
    assert (first.offer_id, first.command_id, first.action) == (2, "expire:2", "expire")
    expired.add(2)  # the agent applied it: its timer goes at its next turn
    assert [c.offer_id for c in timers.due(NOW + timedelta(days=3), still_open)] == [1]
    timers.reload([state])
    assert len(timers) == 2


def test_an_expire_whose_send_was_lost_is_sent_again_until_the_offer_is_not_open():
    """The send is queued, not awaited: a broker outage can lose it, and nothing else
    would time the offer again before a rebalance."""
    timers = ExpiryTimers()
    timers.schedule([state_with(offer(id_=1, days=1))])
    due = NOW + timedelta(days=1)
    open_ = {1}

    def still_open(customer, offer_id):
        return offer_id in open_

    assert [c.offer_id for c in timers.due(due, still_open)] == [1]
    assert timers.due(due + timedelta(seconds=29), still_open) == []
    assert [c.offer_id for c in timers.due(due + timedelta(seconds=30), still_open)] == [1]
    assert timers.due(due + timedelta(seconds=89), still_open) == []  # then 60 s later
    open_.clear()
    assert timers.due(due + timedelta(seconds=90), still_open) == []
    assert len(timers) == 0


def test_a_change_keeps_the_callers_reason_and_a_redemption_starts_the_cooldown():
    state = state_with(offer("sent"))
    ask = command("transition", offer_id=7, status="redeemed", reason="paid at the till")
    [event] = apply_command(state, ask, 0, Policy()).events
    assert event.reason == "paid at the till" and state.last_redeemed_at == NOW
    automatic = OfferRequest(
        request_id="r9",
        tenant_id="acme",
        external_customer_id="u1",
        source="rule",
        rule_id=None,
        requested_at=NOW,
    )
    later = NOW + timedelta(hours=2)
    [why] = suppression(state, automatic, new_signals("acme", "u1"), None, Policy(), later)
    assert why.startswith("cooldown: an offer was redeemed at")


def test_an_offer_id_that_only_looks_like_digits_names_no_offer():
    """``"²".isdigit()`` is true and ``int("²")`` raises: that crashed the worker, which
    read the record again at its restart (a crash loop from one client event)."""
    hostile = ["²", " ١٢ ", "9" * 5_000, "7" * 17]
    commands = offer_commands(
        "acme", "u1", [event("offer_seen", {"offer_id": v}, f"s{n}") for n, v in enumerate(hostile)]
    )
    assert commands == []


def test_a_purchase_redeems_the_offer_its_code_names_and_can_still_be_redeemed():
    sent = offer("sent", id_=1, code="SPRING10")
    newer = offer("generated", id_=2, code="SPRING10").model_copy(
        update={"generated_at": NOW + timedelta(hours=1)}
    )
    state = state_with(sent, newer)
    at = NOW + timedelta(hours=2)
    [event] = apply_command(state, command("redeem", code="spring10", at=at), 0, Policy()).events
    assert (event.event_type, event.offer.id) == ("offer.redeemed", 1)
    # A code and an id that is not its offer's: the code is what the customer typed.
    state = state_with(offer("sent", id_=3, code="ANN-10"))
    wrong_id = command("redeem", code="ANN-10", offer_id=4519, at=at, offset_id="c2")
    [event] = apply_command(state, wrong_id, 1, Policy()).events
    assert (event.event_type, event.offer.id) == ("offer.redeemed", 3)

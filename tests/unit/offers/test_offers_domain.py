"""Offers domain: rules, policy (with a property test), the built-in writer, decisions."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proffer_stream.offers.decide import CustomerOffers, already_decided, conclude, suppression
from proffer_stream.offers.models import (
    CHANNELS,
    OFFER_TYPES,
    DecisionTrace,
    OfferDraft,
    OfferRequest,
    OfferRequestsRecord,
    OfferTerms,
)
from proffer_stream.offers.policy import Policy, judge, offer_code, reachable_channels
from proffer_stream.offers.rules import DEFAULT_RULES, RulesError, firing_rule, load_rules
from proffer_stream.offers.triggers import triggered_request
from proffer_stream.offers.writer import write_builtin
from proffer_stream.signals.fold import new_signals

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 17, 12, 0, tzinfo=UTC)


def profile(**fields):
    state = new_signals("acme", "u1")
    for name, value in fields.items():
        setattr(state, name, value)
    return state


def fire(state, **kwargs):
    args = {"fired_at": {}, "last_offer_at": None, "offer_cooldown": timedelta(hours=24)}
    return firing_rule(DEFAULT_RULES, state, NOW, **{**args, **kwargs})


def test_default_rules_fire_on_the_reference_examples():
    assert fire(profile(page_views={"/pricing": 2})).id == "pricing-interest"
    assert fire(profile(page_views={"/pricing": 2}, purchase_count=1)) is None
    cart = profile(cart_abandon_count=1, cart_abandon_total=Decimal(80))
    assert fire(cart).id == "cart-abandoned"
    free = profile(counts_by_type={"feature_use": 6}, metadata={"plan": "free"})
    assert fire(free).id == "power-user-free-plan"
    lapsed = profile(purchase_count=2, last_purchase_at=NOW - timedelta(days=40))
    assert fire(lapsed).id == "lapsed-buyer"
    assert fire(profile(purchase_count=2, last_purchase_at=NOW - timedelta(days=3))) is None


def test_cooldowns_and_priority():
    both = profile(page_views={"/pricing": 2}, cart_abandon_count=1, cart_abandon_total=Decimal(60))
    by_id = {rule.id: rule for rule in DEFAULT_RULES.rules}
    ranked = sorted(["cart-abandoned", "pricing-interest"], key=lambda i: -by_id[i].priority)
    assert fire(both).id == ranked[0]  # the higher priority
    assert fire(both, fired_at={ranked[0]: NOW}).id == ranked[1]
    assert fire(both, last_offer_at=NOW - timedelta(hours=1)) is None


def test_a_bad_rules_file_names_the_rule_and_the_field():
    text = '{"rules": [{"id": "ok", "name": "x", "conditions": {}},'
    text += ' {"id": "cart", "name": "y", "conditions": {"min_cart_abandon_total": -1}}]}'
    with pytest.raises(RulesError) as error:
        load_rules(text, "rules.json")
    message = str(error.value)
    assert 'rule "cart" (rules[1])' in message and "conditions.min_cart_abandon_total" in message
    with pytest.raises(RulesError, match="duplicate rule id"):
        load_rules(
            '{"rules": [{"id": "a", "name": "x", "conditions": {}},'
            ' {"id": "a", "name": "y", "conditions": {}}]}',
            "rules.json",
        )


def test_the_builtin_writer_is_deterministic_and_names_what_matters():
    state = profile(name="Sarah Chen", email="s@x.io", page_views={"/pricing": 3})
    rule = DEFAULT_RULES.rules[1]
    first = write_builtin(state, rule, Policy(), NOW)
    assert first == write_builtin(state, rule, Policy(), NOW)
    assert first.headline.startswith("Sarah")
    assert "/pricing" in first.body_copy and first.channel == "email"
    assert first.offer_type in rule.hints.offer_types
    assert first.offer_terms.discount_percent <= 20


def test_policy_corrects_what_it_can_and_rejects_the_rest():
    draft = OfferDraft(
        headline="<b>Big</b> **deal**",
        body_copy="Buy [now](https://shop.acme.example/x)",
        offer_type="discount",
        offer_terms=OfferTerms(discount_percent=90, valid_days=100, code="x"),
        channel="sms",
        reasoning="because",
    )
    shop = Policy(link_hosts=["acme.example"])
    anyone = profile()
    judged = judge(
        draft, shop, reachable=["email", "in_app"], hints=None, offer_id=7, profile=anyone, now=NOW
    )
    assert judged.draft is not None
    assert judged.draft.headline == "Big deal" and judged.draft.body_copy == "Buy now"
    assert judged.draft.offer_terms.discount_percent == 30
    assert judged.draft.offer_terms.valid_days == 30
    assert judged.draft.channel == "email"
    assert draft.offer_terms.discount_percent == 90  # the input is left alone
    only_email = Policy(channels=["email"], offer_types=["content"], link_hosts=["acme.example"])
    rejected = judge(
        draft, only_email, reachable=["in_app"], hints=None, offer_id=7, profile=anyone, now=NOW
    )
    assert rejected.draft is None and len(rejected.rejected_because) == 2


def test_codes_are_distinct_per_offer():
    assert len({offer_code("SARAH", n) for n in range(1, 10_001)}) == 10_000


drafts = st.builds(
    OfferDraft,
    headline=st.text(max_size=300),
    body_copy=st.text(max_size=1500),
    offer_type=st.sampled_from(OFFER_TYPES),
    offer_terms=st.builds(
        OfferTerms,
        discount_percent=st.none() | st.integers(0, 100),
        code=st.none() | st.text(max_size=40),
        valid_days=st.integers(0, 365),
    ),
    channel=st.sampled_from(CHANNELS),
    reasoning=st.text(max_size=300),
)
policies = st.builds(
    Policy,
    max_discount_percent=st.integers(0, 100),
    max_valid_days=st.integers(1, 365),
    offer_types=st.lists(st.sampled_from(OFFER_TYPES), min_size=1, unique=True),
    channels=st.lists(st.sampled_from(CHANNELS), min_size=1, unique=True),
)


@settings(max_examples=300, deadline=None)
@given(drafts, policies, st.lists(st.sampled_from(CHANNELS), unique=True))
def test_no_draft_is_issued_in_breach_of_policy(draft, policy, reachable):
    judged = judge(
        draft, policy, reachable=reachable, hints=None, offer_id=42, profile=profile(), now=NOW
    )
    issued = judged.draft
    if issued is None:
        return
    terms = issued.offer_terms
    assert issued.offer_type in policy.offer_types
    assert (terms.discount_percent or 0) <= policy.max_discount_percent
    assert policy.min_valid_days <= terms.valid_days <= policy.max_valid_days
    assert issued.channel in policy.channels and issued.channel in reachable
    assert len(issued.headline) <= policy.max_headline_chars
    assert len(issued.body_copy) <= policy.max_body_chars
    assert "<" not in issued.headline or ">" not in issued.headline
    assert terms.code == offer_code(terms.code.split("-")[0], 42)


def request(source="rule"):
    return OfferRequest(
        request_id="r1",
        tenant_id="acme",
        external_customer_id="u1",
        source=source,
        requested_at=NOW,
    )


def test_a_request_is_decided_once_and_automatic_ones_respect_the_cooldown():
    state = CustomerOffers(tenant_id="acme", external_customer_id="u1")
    signals = profile(email="u@x.io", page_views={"/pricing": 2})
    written = (write_builtin(signals, None, Policy(), NOW), None)
    from proffer_stream.offers.models import WriterTrace

    written = (written[0], WriterTrace(kind="built-in"))
    event = conclude(
        state,
        request(),
        5,
        signals=signals,
        rule=None,
        policy=Policy(),
        now=NOW,
        suppressed=[],
        written=written,
    )
    assert event.event_type == "offer.generated" and event.offer.id in state.offers
    assert already_decided(state, "r1", 6) and already_decided(state, "r1", 5)
    later = NOW + timedelta(hours=1)
    assert suppression(state, request("rule"), signals, None, Policy(), later)
    assert suppression(state, request("api"), signals, None, Policy(), later) == []
    assert suppression(state, request(), None, None, Policy(), later)


def test_a_request_of_a_rule_removed_or_disabled_since_it_fired_makes_no_offer():
    state = CustomerOffers(tenant_id="acme", external_customer_id="u1")
    signals = profile(email="u@x.io")
    fired = request().model_copy(update={"rule_id": "pricing-interest", "rule_version": 1})
    rule = DEFAULT_RULES.rules[2]
    assert rule.id == "pricing-interest"
    assert suppression(state, fired, signals, rule, Policy(), NOW) == []
    removed = suppression(state, fired, signals, None, Policy(), NOW)
    assert removed == ["rule disabled: pricing-interest was removed since it fired"]
    off = rule.model_copy(update={"enabled": False})
    assert suppression(state, fired, signals, off, Policy(), NOW) == [
        "rule disabled: pricing-interest was disabled since it fired"
    ]
    assert reachable_channels(signals) == ["email", "in_app"]


BOOKKEEPING = {
    "schema_version",
    "rules_fired_at",
    "last_offer_requested_at",
    "source_offset",
    "id_chunks",
    "updated_at",
}


def test_a_fired_rule_requests_with_the_public_profile_not_the_worker_bookkeeping():
    state = profile(email="u@x.io", page_views={"/pricing": 2}, source_offset=41)
    state.id_chunks = {20529: 1}
    fired = triggered_request(state, DEFAULT_RULES, Policy(), NOW)
    assert fired is not None and state.rules_fired_at == {fired.rule_id: NOW}
    sent = json.loads(fired.model_dump_json())["signals"]
    assert sent["page_views"] == {"/pricing": 2} and sent["external_id"] == "u1"
    assert BOOKKEEPING.isdisjoint(sent)
    state.page_views["/pricing"] = 3  # a copy: the worker's later updates do not leak in
    assert fired.signals.page_views == {"/pricing": 2}


def test_records_written_with_the_whole_worker_state_still_parse():
    old = profile(email="u@x.io", source_offset=7, rules_fired_at={"r": NOW})
    old.id_chunks = {20529: 1}
    whole = json.loads(old.model_dump_json())
    record = {**json.loads(request().model_dump_json()), "signals": whole}
    parsed = OfferRequestsRecord.model_validate_json(json.dumps(record)).root
    assert parsed.signals.email == "u@x.io"
    assert BOOKKEEPING.isdisjoint(json.loads(parsed.model_dump_json())["signals"])
    trace = DecisionTrace.model_validate({"request_id": "r1", "source": "rule", "signals": whole})
    assert trace.signals.external_id == "u1"


def test_a_firing_at_an_offset_seen_before_the_broker_lost_its_topics_is_a_new_request():
    def fired(offset: int, by: str) -> str:
        state = profile(email="u@x.io", page_views={"/pricing": 2}, source_offset=offset)
        request = triggered_request(state, DEFAULT_RULES, Policy(), NOW, fired_by=by)
        assert request is not None
        return request.request_id

    assert fired(41, "e-1") == fired(41, "e-1")  # a replay of the record: the same request
    assert fired(41, "e-1") != fired(41, "e-9")  # offsets numbered from 0 again: another

"""Trigger rules: conditions, priority, cooldowns, the default rules, and loading."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from proffer_stream.ingest.models import CustomerIn, NormalizedEvent
from proffer_stream.offers.rules import (
    DEFAULT_RULES,
    RuleConditions,
    RulesError,
    RuleSet,
    TriggerRule,
    describe_rule_errors,
    firing_rule,
    load_rules,
    matches,
)
from proffer_stream.signals.fold import apply_record, hour_of, new_signals
from proffer_stream.signals.seen_ids import SeenIds, day_of

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 17, 12, 0, tzinfo=UTC)
HOUR = hour_of(NOW)


def profile(**fields):
    state = new_signals("acme", "u1")
    for name, value in fields.items():
        setattr(state, name, value)
    return state


def rule(id_="r", priority=0, cooldown_hours=168.0, enabled=True, **conditions):
    return TriggerRule(
        id=id_,
        name=f"rule {id_}",
        priority=priority,
        cooldown_hours=cooldown_hours,
        enabled=enabled,
        conditions=RuleConditions(**conditions),
    )


def fire(rules, state, *, fired_at=None, last_offer_at=None, now=NOW):
    return firing_rule(
        rules if isinstance(rules, RuleSet) else RuleSet(rules=rules),
        state,
        now,
        fired_at=fired_at or {},
        last_offer_at=last_offer_at,
        offer_cooldown=timedelta(hours=24),
    )


CONDITIONS = [
    # (condition, a profile where it holds, one where it does not)
    ({"min_counts": {"click": 3}}, {"counts_by_type": {"click": 3}}, {"counts_by_type": {}}),
    (
        {"min_page_views": {"/pricing": 2}},
        {"page_views": {"/pricing": 2}},
        {"page_views": {"/pricing": 1, "/docs": 9}},
    ),
    ({"min_purchase_count": 2}, {"purchase_count": 2}, {"purchase_count": 1}),
    ({"max_purchase_count": 0}, {"purchase_count": 0}, {"purchase_count": 1}),
    (
        {"min_purchase_total": Decimal("100")},
        {"purchase_total": Decimal("100.00")},
        {"purchase_total": Decimal("99.99")},
    ),
    ({"min_cart_abandon_count": 1}, {"cart_abandon_count": 1}, {"cart_abandon_count": 0}),
    (
        {"min_cart_abandon_total": Decimal(50)},
        {"cart_abandon_total": Decimal(50)},
        {"cart_abandon_total": Decimal("49.5")},
    ),
    (
        {"min_features_used": {"reports": 5}},
        {"features_used": {"reports": 5}},
        {"features_used": {"reports": 4, "export": 10}},
    ),
    (
        {"min_distinct_features": 2},
        {"features_used": {"reports": 1, "export": 1}},
        {"features_used": {"reports": 1, "export": 0}},
    ),
    (
        {"min_events_last_24h": 3},
        {"hourly_counts": {HOUR: {"click": 2}, HOUR - 23: {"page_view": 1}}},
        {"hourly_counts": {HOUR: {"click": 2}, HOUR - 24: {"page_view": 5}}},
    ),
    (
        {"min_events_last_7d": 3},
        {"hourly_counts": {HOUR - 100: {"click": 2}, HOUR - 167: {"page_view": 1}}},
        {"hourly_counts": {HOUR - 100: {"click": 2}, HOUR - 168: {"page_view": 1}}},
    ),
    (
        {"min_hours_since_last_seen": 48},
        {"last_seen_at": NOW - timedelta(hours=48)},
        {"last_seen_at": NOW - timedelta(hours=47)},
    ),
    ({"min_hours_since_last_seen": 48}, {"last_seen_at": NOW - timedelta(days=9)}, {}),
    (
        {"min_days_since_last_purchase": 30},
        {"last_purchase_at": NOW - timedelta(days=30)},
        {"last_purchase_at": NOW - timedelta(days=29)},
    ),
    ({"min_days_since_last_purchase": 30}, {"last_purchase_at": NOW - timedelta(days=99)}, {}),
    (
        {"max_days_since_last_purchase": 7},
        {"last_purchase_at": NOW - timedelta(days=7)},
        {"last_purchase_at": NOW - timedelta(days=8)},
    ),
    ({"max_days_since_last_purchase": 7}, {"last_purchase_at": NOW}, {}),
    ({"metadata_equals": {"plan": "free"}}, {"metadata": {"plan": "free"}}, {"metadata": {}}),
    (
        {"metadata_equals": {"plan": "free"}},
        {"metadata": {"plan": "free", "x": 1}},
        {"metadata": {"plan": "pro"}},
    ),
    ({"metadata_equals": {"seats": 3}}, {"metadata": {"seats": 3.0}}, {"metadata": {"seats": 4}}),
    ({"metadata_equals": {"vip": True}}, {"metadata": {"vip": True}}, {"metadata": {"vip": 1}}),
    ({"metadata_equals": {"n": 1}}, {"metadata": {"n": 1}}, {"metadata": {"n": True}}),
]


@pytest.mark.parametrize(("condition", "holds", "fails"), CONDITIONS)
def test_each_condition_holds_or_not(condition, holds, fails):
    the_rule = rule(**condition)
    assert matches(the_rule, profile(**holds), NOW)
    assert not matches(the_rule, profile(**fails), NOW)


def test_every_condition_given_must_hold():
    both = rule(min_purchase_count=1, min_page_views={"/pricing": 1})
    assert matches(both, profile(purchase_count=1, page_views={"/pricing": 1}), NOW)
    assert not matches(both, profile(purchase_count=1), NOW)
    assert not matches(both, profile(page_views={"/pricing": 1}), NOW)
    assert matches(rule(), profile(), NOW)  # no conditions: always


def test_the_highest_priority_wins_and_ties_go_to_the_first_listed():
    low, high, also_high = rule("low", 1), rule("high", 5), rule("also-high", 5)
    assert fire([low, high, also_high], profile()).id == "high"
    assert fire([also_high, low, high], profile()).id == "also-high"
    picky = rule("picky", 9, min_purchase_count=1)
    assert fire([low, picky], profile()).id == "low"  # a rule that does not match never fires


def test_a_disabled_rule_never_fires():
    assert fire([rule("off", 9, enabled=False), rule("on", 1)], profile()).id == "on"
    assert fire([rule("off", enabled=False)], profile()) is None


def test_a_rule_waits_out_its_own_cooldown():
    rules = [rule("a", 5, cooldown_hours=72), rule("b", 1)]
    fired = {"a": NOW - timedelta(hours=71)}
    assert fire(rules, profile(), fired_at=fired).id == "b"
    fired = {"a": NOW - timedelta(hours=72)}
    assert fire(rules, profile(), fired_at=fired).id == "a"
    assert fire(rules, profile(), fired_at={"a": NOW, "b": NOW}) is None


def test_no_rule_fires_within_the_offer_cooldown():
    rules = [rule("a", cooldown_hours=0)]
    assert fire(rules, profile(), last_offer_at=NOW - timedelta(hours=23)) is None
    assert fire(rules, profile(), last_offer_at=NOW - timedelta(hours=24)).id == "a"


# --- The default rules on profiles built from events.


def event(type_, data, n, at=NOW):
    return NormalizedEvent(id=f"e{n}", type=type_, data=data, occurred_at=at, received_at=at)


def folded(events, metadata=None, name=None, email=None):
    state = new_signals("acme", "sarah")
    customer = CustomerIn(id="sarah", name=name, email=email, metadata=metadata or {})
    apply_record(state, customer, events, offset=0, now=NOW, seen=SeenIds(day_of(NOW), []))
    return state


def test_default_rules_fire_on_realistic_profiles():
    pricing = folded([event("page_view", {"page": "/pricing"}, n) for n in range(2)])
    assert fire(DEFAULT_RULES, pricing).id == "pricing-interest"
    pricing.purchase_count = 1
    assert fire(DEFAULT_RULES, pricing) is None

    cart = folded([event("cart_abandon", {"total": 89.5}, 1)])
    assert fire(DEFAULT_RULES, cart).id == "cart-abandoned"
    assert fire(DEFAULT_RULES, folded([event("cart_abandon", {"total": 20}, 1)])) is None

    uses = [event("feature_use", {"feature": "reports"}, n) for n in range(5)]
    assert fire(DEFAULT_RULES, folded(uses, {"plan": "free"})).id == "power-user-free-plan"
    assert fire(DEFAULT_RULES, folded(uses, {"plan": "pro"})) is None

    bought = NOW - timedelta(days=45)
    lapsed = folded([event("purchase", {"amount": 30}, 1, at=bought)])
    assert fire(DEFAULT_RULES, lapsed).id == "lapsed-buyer"
    recent = folded([event("purchase", {"amount": 30}, 1, at=NOW - timedelta(days=3))])
    assert fire(DEFAULT_RULES, recent) is None


def test_an_abandoned_cart_outranks_pricing_interest():
    both = folded(
        [event("page_view", {"page": "/pricing"}, n) for n in range(3)]
        + [event("cart_abandon", {"total": 120}, 9)]
    )
    assert fire(DEFAULT_RULES, both).id == "cart-abandoned"
    assert fire(DEFAULT_RULES, both, fired_at={"cart-abandoned": NOW}).id == "pricing-interest"


# --- Loading rules from JSON.


def rules_json(*rules):
    return json.dumps({"rules": list(rules)})


def test_load_rules_reads_a_rule_set():
    text = rules_json(
        {"id": "vip", "name": "VIP", "conditions": {"min_purchase_total": 500}, "priority": 3}
    )
    loaded = load_rules(text, "rules.json")
    assert loaded.rules[0].conditions.min_purchase_total == Decimal(500)
    assert load_rules(DEFAULT_RULES.model_dump_json(), "defaults") == DEFAULT_RULES


def test_a_bad_rule_is_named_by_id_and_field():
    text = rules_json(
        {"id": "ok", "name": "fine", "conditions": {}},
        {"id": "cart-abandoned", "name": "x", "conditions": {"min_cart_abandon_total": -1}},
    )
    with pytest.raises(RulesError) as error:
        load_rules(text, "rules.json")
    assert str(error.value) == (
        'rules.json: rule "cart-abandoned" (rules[1]): conditions.min_cart_abandon_total:'
        " Input should be greater than or equal to 0"
    )
    assert error.value.errors == [
        {
            "rule": "cart-abandoned",
            "index": 1,
            "field": "conditions.min_cart_abandon_total",
            "message": "Input should be greater than or equal to 0",
        }
    ]


def test_a_rule_without_a_readable_id_is_named_by_index():
    text = rules_json({"id": "ok", "name": "x", "conditions": {}}, {"name": "", "conditions": {}})
    with pytest.raises(RulesError) as error:
        load_rules(text, "r.json")
    message = str(error.value)
    assert "r.json: rules[1]: id: Field required" in message
    assert "r.json: rules[1]: name: String should have at least 1 character" in message


def test_errors_name_nested_fields_and_unknown_ones():
    text = rules_json(
        {"id": "p", "name": "x", "conditions": {"min_page_views": {"/pricing": -2}}},
        {"id": "q", "name": "x", "conditions": {"min_pageviews": 1}},
    )
    with pytest.raises(RulesError) as error:
        load_rules(text, "r.json")
    fields = [(e["rule"], e["field"]) for e in error.value.errors]
    assert fields == [
        ("p", 'conditions.min_page_views["/pricing"]'),
        ("q", "conditions.min_pageviews"),
    ]


def test_describe_rule_errors_reports_top_level_problems():
    data = {"rules": "none", "version": 1}
    with pytest.raises(ValidationError) as error:
        RuleSet.model_validate(data)
    [problem] = describe_rule_errors(error.value, data)
    assert problem == {
        "rule": None,
        "index": None,
        "field": "rules",
        "message": "Input should be a valid list",
    }


def test_duplicate_rule_ids_are_rejected():
    text = rules_json(
        {"id": "a", "name": "x", "conditions": {}},
        {"id": "b", "name": "y", "conditions": {}},
        {"id": "a", "name": "z", "conditions": {}},
    )
    with pytest.raises(RulesError, match=r'duplicate rule id "a" \(rules\[0\] and rules\[2\]\)'):
        load_rules(text, "rules.json")


@pytest.mark.parametrize(
    "text",
    ["{", '{"rules": [], "version": NaN}', '{"rules": [{"id": "a", "cooldown_hours": Infinity}]}'],
)
def test_text_that_is_not_json_is_an_error_naming_the_source(text):
    with pytest.raises(RulesError, match=r"^rules.json: not valid JSON"):
        load_rules(text, "rules.json")


@pytest.mark.parametrize(
    ("field", "value"),
    [("id", "Bad Id"), ("version", 0), ("cooldown_hours", -1), ("name", "x" * 201)],
)
def test_rule_fields_are_checked(field, value):
    fields = {"id": "a", "name": "x", "conditions": {}, field: value}
    with pytest.raises(RulesError, match=field):
        load_rules(rules_json(fields), "rules.json")


def test_hints_are_checked():
    fields = {"id": "a", "name": "x", "conditions": {}, "hints": {"offer_types": ["freebie"]}}
    with pytest.raises(RulesError, match=r"hints\.offer_types\[0\]"):
        load_rules(rules_json(fields), "rules.json")

"""The built-in writer: deterministic copy that names what matters, within hints and policy."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from proffer_stream.offers.policy import Policy, judge, reachable_channels
from proffer_stream.offers.rules import DEFAULT_RULES, RuleConditions, TriggerRule, WriterHints
from proffer_stream.offers.writer import write_builtin
from proffer_stream.signals.fold import new_signals

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 17, 12, 0, tzinfo=UTC)
RULES = {rule.id: rule for rule in DEFAULT_RULES.rules}


def profile(**fields):
    state = new_signals("acme", "u1")
    for name, value in fields.items():
        setattr(state, name, value)
    return state


def hinted(*offer_types, max_discount=None, channel=None):
    return TriggerRule(
        id="custom",
        name="Custom",
        conditions=RuleConditions(),
        hints=WriterHints(
            offer_types=list(offer_types), max_discount_percent=max_discount, channel=channel
        ),
    )


PRICING = {"name": "Sarah  Chen", "email": "sarah@x.io", "page_views": {"/pricing": 3, "/": 1}}


def test_the_same_input_gives_the_same_draft():
    state = profile(**PRICING)
    rule = RULES["pricing-interest"]
    assert write_builtin(state, rule, Policy(), NOW) == write_builtin(state, rule, Policy(), NOW)
    again = profile(**{**PRICING, "page_views": {"/": 1, "/pricing": 3}})  # another order
    assert write_builtin(again, rule, Policy(), NOW) == write_builtin(state, rule, Policy(), NOW)


def test_pricing_interest_names_the_customer_and_the_page():
    draft = write_builtin(profile(**PRICING), RULES["pricing-interest"], Policy(), NOW)
    assert draft.headline.startswith("Sarah, ")
    assert "You viewed /pricing 3 times." in draft.body_copy
    assert draft.offer_type == "upgrade" and draft.offer_terms.discount_percent == 15
    assert draft.offer_terms.code == "SARAH"
    assert draft.channel == "email" and draft.offer_terms.valid_days == 7
    assert "pricing-interest" in draft.reasoning and "Looked at pricing" in draft.reasoning


def test_an_abandoned_cart_is_named_with_its_total():
    state = profile(name="ana", cart_abandon_count=1, cart_abandon_total=Decimal("89.5"))
    draft = write_builtin(state, RULES["cart-abandoned"], Policy(), NOW)
    assert draft.offer_type == "free_shipping"
    assert draft.headline == "ana, free shipping on your 89.50 cart"
    assert "You left a cart worth 89.50." in draft.body_copy
    assert draft.channel == "in_app"  # no email known
    assert draft.offer_terms.code == "ANA"


def test_a_power_user_is_told_about_their_feature():
    state = profile(features_used={"reports": 12, "export": 3}, metadata={"plan": "free"})
    draft = write_builtin(state, RULES["power-user-free-plan"], Policy(), NOW)
    assert draft.offer_type == "upgrade"
    assert "reports" in draft.headline and "You used reports 12 times." in draft.body_copy
    assert draft.offer_terms.code == "UPGRADE"  # no name: the offer type


def test_a_lapsed_buyer_hears_about_their_purchases():
    state = profile(
        purchase_count=3,
        purchase_total=Decimal("240"),
        last_purchase_at=NOW - timedelta(days=95),
        metadata={"last_product": "Trail Shoes"},
    )
    draft = write_builtin(state, RULES["lapsed-buyer"], Policy(), NOW)
    assert draft.offer_type == "discount" and draft.offer_terms.discount_percent == 20
    assert "You have placed 3 orders worth 240.00 in all." in draft.body_copy
    assert "Your last order (Trail Shoes) was 95 days ago." in draft.body_copy
    assert "20% off your next order on Trail Shoes" in draft.body_copy


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"cart_abandon_count": 1, "cart_abandon_total": Decimal(10)}, "free_shipping"),
        ({"features_used": {"reports": 3}, "metadata": {"plan": "free"}}, "upgrade"),
        ({"purchase_count": 1, "last_purchase_at": NOW - timedelta(days=40)}, "discount"),
        ({"page_views": {"/pricing": 1}}, "discount"),
        ({"page_views": {"/blog": 4}}, "content"),
        ({}, "content"),
    ],
)
def test_without_a_rule_the_signals_choose_the_offer_type(fields, expected):
    assert write_builtin(profile(**fields), None, Policy(), NOW).offer_type == expected


def test_the_hints_and_the_policy_are_respected():
    state = profile(**PRICING, cart_abandon_count=1, cart_abandon_total=Decimal(500))
    rule = hinted("bundle", "discount", max_discount=12, channel="in_app")
    draft = write_builtin(state, rule, Policy(offer_types=["discount", "content"]), NOW)
    assert draft.offer_type == "discount"  # bundle is not allowed by policy
    assert draft.offer_terms.discount_percent == 12
    assert draft.channel == "in_app"
    tight = Policy(
        offer_types=["discount"], max_discount_percent=5, min_valid_days=10, max_valid_days=20
    )
    draft = write_builtin(state, None, tight, NOW)
    assert draft.offer_type == "discount" and draft.offer_terms.discount_percent == 5
    assert draft.offer_terms.valid_days == 10


def test_no_discount_allowed_means_no_discount_offer():
    state = profile(page_views={"/pricing": 9})
    draft = write_builtin(state, None, Policy(max_discount_percent=0), NOW)
    assert draft.offer_type == "content" and draft.offer_terms.discount_percent is None


def test_an_unreachable_hinted_channel_falls_back_to_email():
    rule = hinted("discount", channel="sms")
    assert write_builtin(profile(**PRICING), rule, Policy(), NOW).channel == "email"
    with_phone = profile(**PRICING, metadata={"phone": "+1 555 0100"})
    assert write_builtin(with_phone, rule, Policy(), NOW).channel == "sms"


def test_copy_stays_within_the_policy_and_passes_it():
    state = profile(
        name="<b>Maximilian-Alexander</b> von Something",
        email="m@x.io",
        page_views={"/" + "very-long-page-" * 20: 4},
        features_used={"**reports**": 2},
        cart_abandon_count=2,
        cart_abandon_total=Decimal("1234.5"),
        purchase_count=2,
        purchase_total=Decimal("99"),
        last_purchase_at=NOW - timedelta(days=31),
    )
    policy = Policy(max_headline_chars=30, max_body_chars=80)
    for rule in [None, *DEFAULT_RULES.rules]:
        draft = write_builtin(state, rule, policy, NOW)
        assert len(draft.headline) <= 30 and len(draft.body_copy) <= 80
        assert "<" not in draft.headline + draft.body_copy
        hints = rule.hints if rule else None
        judged = judge(
            draft,
            policy,
            reachable=reachable_channels(state),
            hints=hints,
            offer_id=1,
            profile=state,
            now=NOW,
        )
        assert judged.rejected_because == []
        assert {v.check for v in judged.verdicts if v.outcome == "corrected"} == {"code"}

"""The decision engine: candidates, eligibility in context, the score, the trace."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from proffer_stream.catalog.models import CatalogDefinition, MemberCounts, OfferCounts
from proffer_stream.catalog.views import MemberContext
from proffer_stream.decisions.context import (
    DecisionContext,
    context_misses,
    device_named,
    device_of,
    normal_locale,
)
from proffer_stream.decisions.engine import MOST_TRACED, by_priority
from proffer_stream.decisions.engine import decide as decide_by_priority
from proffer_stream.decisions.models import DecisionMade, DecisionRecord
from proffer_stream.decisions.present import choice_of, personalized_offer
from proffer_stream.offers.models import Offer, OfferTerms
from proffer_stream.signals.models import CustomerProfile

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"
IPAD = "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)"
MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 Safari/605.1.15"


def catalog(offer_id=1, **fields):
    return CatalogDefinition.model_validate(
        {
            "id": offer_id,
            "tenant_id": "acme",
            "version": 1,
            "created_at": NOW - timedelta(days=1),
            "updated_at": NOW,
            "command_id": f"c{offer_id}",
            "status": "published",
            "name": {"en": f"Offer {offer_id}", "pl": f"Oferta {offer_id}"},
            **fields,
        }
    )


def open_offer(offer_id=100, status="sent", discount=10, expires=NOW + timedelta(days=1)):
    return Offer(
        id=offer_id,
        customer_id=1,
        external_customer_id="ann",
        tenant_id="acme",
        headline="Yours: 10% off",
        body_copy="Just for you",
        offer_type="discount",
        offer_terms=OfferTerms(discount_percent=discount, code="ANN-10"),
        channel="in_app",
        status=status,
        ai_reasoning="",
        expires_at=expires,
        generated_at=NOW - timedelta(hours=1),
        request_id="r",
        writer="built-in",
    )


def decide(open_offers, catalog_offers, member_context, context, now):
    return decide_by_priority(
        open_offers, by_priority(catalog_offers), member_context, context, now
    )


def member(profile=None, standings=None, counts=None):
    return MemberContext(profile=profile, standings=standings or {}, counts=counts or {})


def test_no_candidates_is_a_decision_of_none_with_its_reason():
    decided = decide([], [], member(), DecisionContext(), NOW)
    assert decided.chosen is None
    assert decided.none_because == "no candidates: no open offers and no catalog offers"


def test_priority_wins_over_expected_value_and_the_trace_says_why_each_lost():
    cheap = catalog(1, priority=5, terms={"discount_percent": 90})
    rich = catalog(2, priority=0)
    draft = catalog(3, status="draft", priority=9)
    decided = decide([open_offer()], [cheap, rich, draft], member(), DecisionContext(), NOW)
    assert decided.chosen is not None and decided.chosen.ref == "catalog_1"
    by_ref = {c.ref: c for c in decided.candidates}
    assert by_ref["catalog_1"].lost_because == [] and by_ref["catalog_1"].eligible
    assert by_ref["catalog_2"].lost_because == ["priority 0 < 5 of catalog_1"]
    assert by_ref["offer_100"].lost_because == ["priority 0 < 5 of catalog_1"]
    assert by_ref["catalog_3"].lost_because == ["draft, not published"]
    assert by_ref["catalog_3"].eligible is False and by_ref["catalog_2"].eligible is None
    assert [c.ref for c in decided.candidates] == [
        "catalog_3",
        "catalog_1",
        "offer_100",
        "catalog_2",
    ]


def test_same_priority_goes_to_the_higher_expected_value():
    buyer = CustomerProfile(
        tenant_id="acme",
        customer_id=1,
        external_id="ann",
        purchase_count=2,
        purchase_total=Decimal("100"),
    )
    half = catalog(1, terms={"discount_percent": 50})
    small = catalog(2, terms={"discount_amount": "5"})
    decided = decide([], [half, small], member(buyer), DecisionContext(), NOW)
    assert decided.chosen is not None and decided.chosen.ref == "catalog_2"
    assert decided.chosen.score.margin == 45.0  # average order 50, less 5
    assert decided.candidates[1].lost_because == ["expected value 2.5 < 4.5 of catalog_2"]


def test_an_open_offer_beats_a_catalog_offer_of_equal_priority_and_margin():
    decided = decide([open_offer(discount=0)], [catalog(1)], member(), DecisionContext(), NOW)
    assert decided.chosen is not None and decided.chosen.ref == "offer_100"


def test_open_offers_must_be_open_and_unexpired():
    decided = decide(
        [open_offer(1, status="redeemed"), open_offer(2, expires=NOW)],
        [],
        member(),
        DecisionContext(),
        NOW,
    )
    assert decided.chosen is None
    reasons = {c.ref: c.lost_because for c in decided.candidates}
    assert reasons["offer_1"] == ["redeemed, not approved or sent"]
    assert reasons["offer_2"] == [f"expired at {NOW.isoformat()}"]


def test_usability_as_last_known_stock_limits_and_grants():
    sold_out = catalog(1, stock=1)
    used_up = catalog(2, maximum_uses_per_user=1)
    exclusive = catalog(3, type="exclusive")
    context = member(standings={2: MemberCounts(uses=1)}, counts={1: OfferCounts(uses_count=1)})
    decided = decide([], [sold_out, used_up, exclusive], context, DecisionContext(), NOW)
    reasons = {c.ref: c.lost_because for c in decided.candidates}
    assert reasons["catalog_1"] == ["out of stock"]
    assert reasons["catalog_2"] == ["used 1 of at most 1 times"]
    assert reasons["catalog_3"] == [
        "exclusive offers are shown once granted",
        "exclusive offers are used once granted",
    ]


def test_a_periodic_limit_spent_as_last_known_is_not_chosen():
    """Limit 0 never; limit 1 not while the last use is in this period of the
    customer's zone (the request's, else the profile's); higher limits: the owner's."""
    never = catalog(1, periodic_usage={"timespan": "day", "limit": 0})
    daily = catalog(2, periodic_usage={"timespan": "day", "limit": 1})
    twice = catalog(3, periodic_usage={"timespan": "day", "limit": 2})
    used = MemberCounts(uses=1, last_used_at=NOW - timedelta(minutes=5))
    context = member(standings={2: used, 3: used})
    decided = decide([], [never, daily, twice], context, DecisionContext(), NOW)
    reasons = {c.ref: c.lost_because for c in decided.candidates}
    assert reasons["catalog_1"] == ["no use left this day (at most 0)"]
    assert reasons["catalog_2"] == ["no use left this day (at most 1)"]
    assert decided.chosen is not None and decided.chosen.ref == "catalog_3"
    # Used at 10:00 UTC, asked at 12:00: the same day in UTC, but in Auckland (UTC+13)
    # 23:00 on the 1st and 01:00 on the 2nd: a new day there.
    earlier = {2: MemberCounts(uses=1, last_used_at=NOW - timedelta(hours=2))}
    assert decide([], [daily], member(standings=earlier), DecisionContext(), NOW).chosen is None
    auckland = {"timezone": "Pacific/Auckland"}
    in_auckland = CustomerProfile(
        tenant_id="acme", customer_id=1, external_id="ann", metadata=auckland
    )
    for zoned, context in [
        (member(standings=earlier), DecisionContext(timezone="Pacific/Auckland")),
        (member(in_auckland, standings=earlier), DecisionContext()),
    ]:
        decided = decide([], [daily], zoned, context, NOW)
        assert decided.chosen is not None and decided.chosen.ref == "catalog_2"


@pytest.mark.parametrize(
    ("conditions", "context", "fits"),
    [
        ({"url_patterns": ["*/pricing*"]}, {"url": "https://x.io/pricing?a=1"}, True),
        ({"url_patterns": ["*/pricing*"]}, {"url": "https://x.io/blog"}, False),
        ({"url_patterns": ["*/pricing*"]}, {}, False),
        ({"locales": ["pl"]}, {"locale": "pl-PL"}, True),
        ({"locales": ["pl-PL"]}, {"locale": "pl-pl"}, True),
        ({"locales": ["pl"]}, {"locale": "en-US"}, False),
        ({"devices": ["mobile"]}, {"device": "mobile"}, True),
        ({"devices": ["mobile"]}, {"device": "desktop"}, False),
        ({"roles": ["admin", "owner"]}, {"roles": ["viewer", "admin"]}, True),
        ({"roles": ["admin"]}, {"roles": ["viewer"]}, False),
        (
            {"custom_equals": {"plan": "pro", "seats": 5}},
            {"custom": {"plan": "pro", "seats": 5}},
            True,
        ),
        ({"custom_equals": {"beta": True}}, {"custom": {"beta": 1}}, False),
        ({"custom_equals": {"plan": "pro"}}, {"custom": {}}, False),
    ],
)
def test_context_conditions(conditions, context, fits):
    offer = catalog(1, context=conditions)
    assert (context_misses(offer.context, DecisionContext(**context)) == []) is fits
    decided = decide([], [offer], member(), DecisionContext(**context), NOW)
    assert (decided.chosen is not None) is fits


def test_devices_from_user_agents():
    assert device_of(IPHONE) == "mobile"
    assert device_of(IPAD) == "tablet"
    assert device_of(MAC) == "desktop"
    assert device_of("Googlebot/2.1") == "bot"
    assert device_of(None) is None
    assert device_named(" Mobile ") == "mobile"
    assert device_named("smart fridge") is None and device_named(None) is None


def test_locales_are_language_codes():
    assert normal_locale("en_US") == "en-US"
    with pytest.raises(ValueError):
        normal_locale("english please")


def test_the_trace_is_bounded_and_counts_the_rest():
    drafts = [catalog(i, status="draft", priority=1) for i in range(1, MOST_TRACED + 11)]
    decided = decide([], drafts, member(), DecisionContext(), NOW)
    assert len(decided.candidates) == MOST_TRACED
    assert decided.excluded == {"not visible to the customer": 10}
    assert decided.none_because == f"none of {len(drafts)} candidate(s) is eligible"
    plenty = [catalog(i) for i in range(100, 100 + MOST_TRACED + 10)]
    decided = decide([], drafts + plenty, member(), DecisionContext(), NOW)
    assert decided.chosen is not None and decided.chosen.ref == "catalog_100"
    assert len(decided.candidates) == 2 * MOST_TRACED + 1
    assert decided.excluded == {"not visible to the customer": 10, "ranked below the choice": 9}


def test_the_answer_is_localized_and_the_event_round_trips():
    offer = catalog(
        7,
        description={"en": "Ten off", "pl": "Dziesiec taniej"},
        external_url="https://shop.example/spring",
    )
    decided = decide([], [offer], member(), DecisionContext(locale="pl-PL"), NOW)
    assert decided.chosen is not None
    entry = personalized_offer("dec_1", decided.chosen, ["pl-PL"], "en")
    assert entry == {
        "id": "dec_1",
        "offer_id": "catalog_7",
        "content": {"title": "Oferta 7", "description": "Dziesiec taniej"},
        "options": [
            {
                "id": "accept",
                "label": "Accept",
                "processing_type": "url_redirect",
                "processing_layout": "in_app",
                "redirect_url": "https://shop.example/spring",
            }
        ],
    }
    made = DecisionMade(
        decision_id="dec_1",
        tenant_id="acme",
        external_customer_id="ann",
        surface="personalized_offers",
        decided_at=NOW,
        expires_at=NOW + timedelta(minutes=5),
        customer_known=False,
        context=DecisionContext(locale="pl-PL"),
        choice=choice_of(decided.chosen, ["pl-PL"], "en"),
        candidates=decided.candidates,
    )
    again = DecisionRecord.model_validate_json(made.model_dump_json()).root
    assert again == made and again.choice is not None and again.choice.probability == 1.0

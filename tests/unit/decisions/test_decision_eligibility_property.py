"""The trace's reasons and the member's view agree: an offer is usable exactly when the
decision finds no reason against using it, and visible exactly when none against seeing it;
and the engine, which checks candidates lazily in rank order, chooses what checking them all
would."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proffer_stream.catalog.models import CatalogDefinition, MemberCounts, OfferCounts
from proffer_stream.catalog.views import MemberContext, hidden_because, sees, usable
from proffer_stream.decisions.context import DecisionContext
from proffer_stream.decisions.eligibility import catalog_misses, unusable_because
from proffer_stream.decisions.engine import by_priority, decide

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
hours = st.one_of(st.none(), st.integers(-48, 48).map(lambda h: NOW + timedelta(hours=h)))
small = st.integers(0, 4)


@st.composite
def offers(draw):
    since, until = draw(hours), draw(hours)
    if since is not None and until is not None and until <= since:
        since, until = until - timedelta(hours=1), since + timedelta(hours=1)
    return CatalogDefinition.model_validate(
        {
            "id": 1,
            "tenant_id": "acme",
            "version": 1,
            "created_at": NOW,
            "updated_at": NOW,
            "command_id": "c",
            "status": draw(st.sampled_from(["draft", "published", "unpublished"])),
            "type": draw(st.sampled_from(["regular", "exclusive", "birthday", "informational"])),
            "usable_since": since,
            "usable_until": until,
            "visible_since": draw(hours),
            "stock": draw(st.one_of(st.none(), small)),
            "maximum_uses_per_user": draw(st.one_of(st.none(), small)),
            "usable_in_seconds_after_granting": draw(st.one_of(st.none(), st.integers(0, 7200))),
        }
    )


standings = st.builds(
    MemberCounts,
    uses=small,
    grants=small,
    last_granted_at=st.one_of(st.none(), hours.filter(lambda h: h is not None)),
)
counts = st.builds(OfferCounts, uses_count=small, reserved_count=small)


@given(offers(), standings, counts)
def test_usable_exactly_when_no_reason_against(offer, standing, offer_counts):
    assert usable(offer, standing, offer_counts, NOW) == (
        unusable_because(offer, standing, offer_counts, NOW) == []
    )


@given(offers(), standings)
def test_visible_exactly_when_nothing_hides_it(offer, standing):
    assert sees(offer, standing, None, NOW) == (hidden_because(offer, standing, True, NOW) == [])


@st.composite
def catalogs(draw):
    count = draw(st.integers(0, 30))
    return [
        CatalogDefinition.model_validate(
            {
                "id": i + 1,
                "tenant_id": "acme",
                "version": 1,
                "created_at": NOW,
                "updated_at": NOW,
                "command_id": "c",
                "status": draw(st.sampled_from(["published", "published", "draft"])),
                "priority": draw(st.integers(0, 3)),
                "stock": draw(st.one_of(st.none(), st.integers(0, 2))),
                "terms": {"discount_percent": draw(st.integers(0, 100))},
                "context": draw(
                    st.sampled_from([None, {"locales": ["pl"]}, {"devices": ["mobile"]}])
                ),
            }
        )
        for i in range(count)
    ]


@given(catalogs(), st.sampled_from(["pl", "en"]), st.sampled_from(["mobile", "desktop"]))
def test_the_choice_is_the_best_ranked_eligible_candidate(offers, locale, device):
    context = DecisionContext(locale=locale, device=device)
    member = MemberContext(profile=None, counts={o.id: OfferCounts(uses_count=1) for o in offers})
    decided = decide([], by_priority(offers), member, context, NOW)
    eligible = [
        o
        for o in offers
        if not catalog_misses(o, MemberCounts(), member.counts_of(o.id), None, context, NOW)
    ]
    best = max(
        eligible,
        key=lambda o: (o.priority, 0.1 * (1 - o.terms.discount_percent / 100), False, -o.id),
        default=None,
    )
    assert (decided.chosen.item if decided.chosen else None) == best
    assert len(decided.candidates) + sum(decided.excluded.values()) == len(offers)

"""The decisions' stock check counts the stock that ended grants give back as of the
decision's now (the buckets projected with the counts), never before a bucket's end."""

from datetime import UTC, datetime, timedelta

import pytest

from proffer_stream.catalog.models import (
    CatalogDefinition,
    MemberCounts,
    OfferCounts,
    Reservation,
)
from proffer_stream.catalog.views import MemberContext
from proffer_stream.decisions.context import DecisionContext
from proffer_stream.decisions.eligibility import catalog_miss, unusable_because
from proffer_stream.decisions.engine import by_priority, decide

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def catalog(**fields):
    return CatalogDefinition.model_validate(
        {
            "id": 1,
            "tenant_id": "acme",
            "version": 1,
            "created_at": NOW - timedelta(days=1),
            "updated_at": NOW,
            "command_id": "c1",
            "status": "published",
            "name": {"en": "Offer 1"},
            **fields,
        }
    )


def held_until(at, count=1):
    return OfferCounts(reserved_count=count, ending=[Reservation(holds_until=at, count=count)])


@pytest.mark.parametrize(
    ("ends", "out_of_stock"),
    [
        (NOW - timedelta(seconds=1), False),
        (NOW, False),
        (NOW + timedelta(microseconds=1), True),
        (NOW + timedelta(hours=1), True),
    ],
)
def test_stock_held_by_a_bucket_is_back_from_its_end_on(ends, out_of_stock):
    one = catalog(stock=1)
    reasons = unusable_because(one, MemberCounts(), held_until(ends), NOW)
    assert reasons == (["out of stock"] if out_of_stock else [])
    miss = catalog_miss(one, MemberCounts(), held_until(ends), None, DecisionContext(), NOW)
    assert miss == ("not usable" if out_of_stock else None)


def test_a_decision_chooses_the_offer_whose_only_unit_an_ended_grant_held():
    one = catalog(stock=1)
    context = MemberContext(profile=None, counts={1: held_until(NOW - timedelta(seconds=1))})
    decided = decide([], by_priority([one]), context, DecisionContext(), NOW)
    assert decided.chosen is not None and decided.chosen.item.id == 1
    still = MemberContext(profile=None, counts={1: held_until(NOW + timedelta(seconds=1))})
    decided = decide([], by_priority([one]), still, DecisionContext(), NOW)
    assert decided.chosen is None

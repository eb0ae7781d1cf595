"""The lazy rank order (offers without an amount ranked in the order made once per
catalog change, merged with the others) is the full sort of every candidate's rank."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_decision_engine import catalog, open_offer

from proffer_stream.decisions.engine import _rank, by_priority, in_rank_order

pytestmark = pytest.mark.unit

TERMS = st.one_of(
    st.none(),
    st.builds(lambda p: {"discount_percent": p}, st.integers(0, 100)),
    st.builds(lambda a: {"discount_amount": str(a)}, st.decimals(0, 50, places=2)),
    st.just({}),
)
ORDERS = st.one_of(
    st.just(0.0), st.just(1.0), st.floats(0.01, 10_000, allow_nan=False), st.just(5e-324)
)


@given(
    st.lists(st.tuples(st.integers(0, 3), TERMS), max_size=25),
    st.lists(st.integers(0, 100), max_size=4),
    ORDERS,
)
def test_the_lazy_order_is_the_full_sort(items, open_discounts, order):
    offers = []
    for offer_id, (priority, terms) in enumerate(items, start=1):
        fields = {"priority": priority}
        if terms is not None:
            fields["terms"] = terms
        offers.append(catalog(offer_id, **fields))
    opens = [open_offer(100 + n, discount=d) for n, d in enumerate(open_discounts)]
    every = [_rank(o, o.priority, order) for o in offers] + [_rank(o, 0, order) for o in opens]
    expected = sorted(every, reverse=True)
    got = list(in_rank_order(opens, by_priority(offers), order))
    assert [r[:4] for r in got] == [r[:4] for r in expected]


def test_amounts_and_percentages_interleave_by_the_customer_order():
    offers = by_priority(
        [
            catalog(1, terms={"discount_percent": 50}),
            catalog(2, terms={"discount_amount": str(Decimal("5"))}),
        ]
    )
    small = [r[4].id for r in in_rank_order([], offers, 8.0)]  # 4 left vs 3 left
    large = [r[4].id for r in in_rank_order([], offers, 100.0)]  # 50 left vs 95 left
    assert small == [1, 2] and large == [2, 1]

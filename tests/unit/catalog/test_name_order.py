"""The default member-list order made once per catalog change: the same order as
sorting each list by name (ties by id), in the member's languages."""

from datetime import UTC, datetime

import pytest
from catalog_factories import definition
from hypothesis import given
from hypothesis import strategies as st

from proffer_stream.catalog.models import CatalogDefinition
from proffer_stream.catalog.name_order import NameOrders, in_name_order
from proffer_stream.catalog.store import CatalogStore
from proffer_stream.catalog.views import MemberContext, order_key, ordered

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
NAMES = st.sampled_from(["apple", "Apple", "banana", "Ćma", "zebra", "ábaco", ""])


def offer(offer_id: int, version: int = 1, **fields: object) -> CatalogDefinition:
    return definition(offer_id, NOW, version, **fields)


def by_name(offers: list[CatalogDefinition], languages: list[str]) -> list[int]:
    key = order_key(MemberContext(profile=None), languages, "en", NOW)
    return [o.id for o in ordered(offers, [("name", False)], key)]


@given(
    st.lists(
        st.tuples(NAMES, st.none() | NAMES),
        min_size=1,
        max_size=30,
    ),
    st.sampled_from([[], ["pl"], ["pl-PL", "en"]]),
)
def test_the_same_order_as_sorting_each_list(names, languages):
    store = CatalogStore()
    offers = []
    for offer_id, (english, polish) in enumerate(names, start=1):
        name = {"en": english} if polish is None else {"en": english, "pl": polish}
        offers.append(offer(offer_id, name=name))
        store.apply(offers[-1])
    orders = NameOrders(store)
    some = offers[::2]  # a member sees some of them
    sorted_once = in_name_order(list(reversed(some)), orders.positions("acme", languages, "en"))
    assert [o.id for o in sorted_once] == by_name(some, languages)


def test_made_again_when_the_catalog_changes():
    store = CatalogStore()
    store.apply(offer(1, name={"en": "b"}))
    store.apply(offer(2, name={"en": "c"}))
    orders = NameOrders(store)
    first = in_name_order(list(store.offers("acme").values()), orders.positions("acme", [], "en"))
    assert [o.id for o in first] == [1, 2]
    store.apply(offer(2, version=2, name={"en": "a"}))
    store.apply(offer(3, name={"en": "0"}))
    again = in_name_order(list(store.offers("acme").values()), orders.positions("acme", [], "en"))
    assert [o.id for o in again] == [3, 2, 1]

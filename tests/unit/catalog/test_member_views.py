"""The member's view of the catalog: who sees what, usable or not, in which language,
in which order and on which page; encoded-offer tokens; the catalog in memory."""

from datetime import UTC, datetime, timedelta

import pytest

from proffer_stream.catalog.models import (
    CatalogDefinition,
    CollectionDefinition,
    MemberCounts,
    OfferCounts,
)
from proffer_stream.catalog.store import CatalogStore
from proffer_stream.catalog.tokens import BadToken, EncodedOffer, decode_offer, encode_offer
from proffer_stream.catalog.views import (
    ListQuery,
    MemberContext,
    hidden_because,
    in_audience,
    member_offer,
    meta,
    order_key,
    ordered,
    pagination_info,
    parse_languages,
    parse_order_by,
    sees,
    select,
    usable,
)
from proffer_stream.signals.models import CustomerProfile

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def offer(offer_id=1, version=1, **fields):
    return CatalogDefinition.model_validate(
        {
            "id": offer_id,
            "tenant_id": "acme",
            "version": version,
            "created_at": NOW - timedelta(days=offer_id),
            "updated_at": NOW,
            "command_id": f"c{offer_id}",
            "status": "published",
            **fields,
        }
    )


def profile(**signals):
    return CustomerProfile(tenant_id="acme", customer_id=1, external_id="ann", **signals)


def test_visible_window_edges_since_inclusive_until_exclusive():
    edges = offer(visible_since=NOW, visible_until=NOW + timedelta(hours=1))
    assert sees(edges, MemberCounts(), None, NOW)
    assert not sees(edges, MemberCounts(), None, NOW - timedelta(microseconds=1))
    assert not sees(edges, MemberCounts(), None, NOW + timedelta(hours=1))


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"status": "draft"}, "draft, not published"),
        ({"archived_at": NOW}, "archived"),
        ({"type": "exclusive"}, "exclusive offers are shown once granted"),
        ({"visible_since": NOW + timedelta(days=1)}, "visible from"),
        ({"audience": {"min_purchase_count": 1}}, "not in the offer's audience"),
    ],
)
def test_hidden_offers_say_why(fields, reason):
    hidden = offer(**fields)
    assert not sees(hidden, MemberCounts(), profile(), NOW)
    why = hidden_because(hidden, MemberCounts(), in_audience(hidden, profile(), NOW), NOW)
    assert any(reason in text for text in why), why


def test_granted_exclusive_offers_are_seen_and_audiences_hold_on_signals():
    assert sees(offer(type="exclusive"), MemberCounts(grants=1), None, NOW)
    pricing = offer(
        audience={"min_page_views": {"/pricing": 2}, "metadata_equals": {"plan": "free"}}
    )
    assert sees(
        pricing, MemberCounts(), profile(page_views={"/pricing": 2}, metadata={"plan": "free"}), NOW
    )
    assert not sees(pricing, MemberCounts(), profile(page_views={"/pricing": 1}), NOW)
    assert not sees(pricing, MemberCounts(), None, NOW)  # never seen: no signals
    assert sees(offer(audience={"max_purchase_count": 0}), MemberCounts(), None, NOW)


def test_usable_follows_window_grant_period_limits_and_stock():
    assert usable(offer(), MemberCounts(), OfferCounts(), NOW)
    assert not usable(offer(type="informational"), MemberCounts(), OfferCounts(), NOW)
    assert not usable(offer(usable_until=NOW), MemberCounts(), OfferCounts(), NOW)
    assert not usable(offer(type="exclusive"), MemberCounts(), OfferCounts(), NOW)
    timed = offer(type="exclusive", usable_in_seconds_after_granting=60)
    granted = MemberCounts(grants=1, last_granted_at=NOW - timedelta(seconds=59))
    assert usable(timed, granted, OfferCounts(), NOW)
    assert not usable(timed, granted, OfferCounts(), NOW + timedelta(seconds=1))
    assert not usable(offer(maximum_uses_per_user=1), MemberCounts(uses=1), OfferCounts(), NOW)
    assert not usable(
        offer(stock=2), MemberCounts(), OfferCounts(uses_count=1, reserved_count=1), NOW
    )
    # a member holding a grant holds its unit of stock
    holder = MemberCounts(grants=1)
    assert usable(offer(stock=1), holder, OfferCounts(reserved_count=1), NOW)


def test_text_in_the_members_language_with_fallbacks():
    spring = offer(name={"en": "Spring", "pl": "Wiosna", "pt": "Primavera"})
    view = lambda langs, default="en": member_offer(  # noqa: E731
        spring, MemberCounts(), OfferCounts(), langs, default, NOW
    )["name"]
    assert view(["pl"]) == "Wiosna"
    assert view(["pt-BR"]) == "Primavera"
    assert view(["de"]) == "Spring"
    assert view(["de"], default="pl") == "Wiosna"
    assert parse_languages("de-CH, pl;q=0.9, en;q=0.8, *;q=0.1") == ["de-CH", "pl", "en"]
    assert parse_languages("en;q=0.1, pl") == ["pl", "en"]
    assert parse_languages("") == []


def test_member_view_hides_the_token_and_internal_fields():
    view = member_offer(
        offer(
            usage_authorization_token="s3cret",
            usage_authorization_token_required=True,
            internal_name="internal",
            notes="n",
        ),
        MemberCounts(),
        OfferCounts(),
        [],
        "en",
        NOW,
    )
    assert "s3cret" not in str(view) and "internal" not in str(view)
    assert view["usage_authorization_token_required"] is True


def test_order_by_parses_and_sorts_with_nulls_last():
    assert parse_order_by("usable ASC, created_at desc") == [
        ("usable", False),
        ("created_at", True),
    ]
    for bad in ("price", "name sideways", "", "name; DROP TABLE"):
        with pytest.raises(ValueError):
            parse_order_by(bad)
    offers = [
        offer(1, name={"en": "b"}, usable_until=NOW + timedelta(days=2)),
        offer(2, name={"en": "A"}),
        offer(3, name={"en": "c"}, usable_until=NOW + timedelta(days=1)),
    ]
    key = order_key(MemberContext(None), [], "en", NOW)
    assert [o.id for o in ordered(offers, [("name", False)], key)] == [2, 1, 3]
    assert [o.id for o in ordered(offers, [("usable_until", False)], key)] == [3, 1, 2]
    assert [o.id for o in ordered(offers, [("created_at", True)], key)] == [1, 2, 3]


def test_filters_and_meta():
    offers = [
        offer(1, collection_ids=[7]),
        offer(2, type="competition", collection_ids=[7, 8]),
        offer(3, type="exclusive"),
    ]
    context = MemberContext(None, standings={2: MemberCounts(liked=True)})
    ids = lambda query: [o.id for o in select(offers, context, query, NOW)]  # noqa: E731
    assert ids(ListQuery()) == [1, 2]
    assert ids(ListQuery(collection_ids=frozenset({8}))) == [2]
    assert ids(ListQuery(type="regular")) == [1]
    assert ids(ListQuery(liked=True)) == [2]
    assert ids(ListQuery(ids=frozenset({1, 3}))) == [1]
    assert meta(select(offers, context, ListQuery(), NOW)) == {
        "total_count": 2,
        "types": {"competition": 1, "regular": 1},
        "collections": {"7": 2, "8": 1},
    }


def test_pagination_info_follows_the_platform():
    assert pagination_info(250, 1, 100) == {
        "total_count": 250,
        "per_page": 100,
        "total_pages": 3,
        "current_page": 1,
        "next_page": 2,
        "prev_page": None,
        "is_first_page": True,
        "is_last_page": False,
        "is_out_of_range": False,
    }
    last = pagination_info(250, 3, 100)
    assert (last["next_page"], last["prev_page"], last["is_last_page"]) == (None, 2, True)
    assert pagination_info(250, 4, 100)["is_out_of_range"]
    assert not pagination_info(0, 1, 100)["is_out_of_range"]


def test_tokens_are_tamper_evident_and_expire():
    key = b"k" * 32
    token = encode_offer(
        key, EncodedOffer(t="acme", o=1, m="ann", i="t1", e=int(NOW.timestamp()) + 60)
    )
    assert decode_offer(key, token, NOW).m == "ann"
    payload, signature = token.split(".")
    for bad in (token + "x", "x" + token, payload, f"{payload}.{signature[::-1]}", "...", ""):
        with pytest.raises(BadToken) as refused:
            decode_offer(key, bad, NOW)
        assert refused.value.reason == "bad_token"
    with pytest.raises(BadToken):
        decode_offer(b"other key", token, NOW)
    with pytest.raises(BadToken) as late:
        decode_offer(key, token, NOW + timedelta(seconds=60))
    assert late.value.reason == "token_expired"


def test_the_store_keeps_the_highest_version():
    store = CatalogStore()
    assert store.apply(offer(1, version=2, name={"en": "new"}))
    assert not store.apply(offer(1, version=1, name={"en": "old"}))
    assert store.offers("acme")[1].name == {"en": "new"}
    collection = CollectionDefinition(
        id=1, tenant_id="acme", version=1, created_at=NOW, updated_at=NOW, command_id="c"
    )
    assert store.apply(collection)
    assert (store.version("acme", "offer", 1), store.version("acme", "collection", 1)) == (2, 1)
    assert store.offers("other") == {}

"""Placements' pure parts: sites, flow ids, a placement's candidates, the answer's
segments, a flow's shown offers skipped by the engine, integrations defined by the owner."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from proffer_stream.catalog.limits import OfferState, decide_definition
from proffer_stream.catalog.models import (
    CatalogDefinition,
    CollectionDefinition,
    DefinitionCommand,
    IntegrationDefinition,
    IntegrationFields,
    OfferOption,
    PlacementFields,
    definition_key,
)
from proffer_stream.catalog.store import CatalogStore
from proffer_stream.catalog.views import MemberContext
from proffer_stream.decisions.context import DecisionContext
from proffer_stream.decisions.engine import SHOWN, by_priority, decide
from proffer_stream.decisions.live import LiveCatalog
from proffer_stream.decisions.models import Choice
from proffer_stream.placements.answer import event_data, offer_data, offer_links
from proffer_stream.placements.candidates import LivePlacements, placement_catalog
from proffer_stream.placements.flows import Flow, new_flow_id, read_flow
from proffer_stream.placements.sites import blocked_because, host_of, site_matches

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
KEY = b"k" * 32


def stamp(item_id, **fields):
    return {
        "id": item_id,
        "tenant_id": "acme",
        "version": 1,
        "created_at": NOW - timedelta(days=1),
        "updated_at": NOW,
        "command_id": f"c{item_id}",
        **fields,
    }


def catalog(item_id, **fields):
    return CatalogDefinition.model_validate(
        stamp(item_id, status="published", name={"en": f"Offer {item_id}"}, **fields)
    )


def integration(**fields):
    return IntegrationDefinition.model_validate(stamp(7, name="Checkout", **fields))


@pytest.mark.parametrize(
    ("given", "site"),
    [
        ("https://Shop.example/thanks?x=1", "shop.example"),
        ("http://shop.example:8443", "shop.example:8443"),
        ("shop.example", "shop.example"),
        ("null", None),
        ("", None),
        ("https://", None),
        ("http://shop.example:99999", None),
    ],
)
def test_the_site_of_a_url_an_origin_or_a_host(given, site):
    assert host_of(given) == site


def test_site_patterns_take_a_host_a_domain_and_its_subdomains_and_a_port():
    assert site_matches("shop.example", "shop.example")
    assert not site_matches("shop.example", "www.shop.example")
    assert site_matches("*.shop.example", "www.shop.example")
    assert site_matches("*.shop.example", "shop.example")
    assert not site_matches("*.shop.example", "evilshop.example")
    assert site_matches("shop.example:8443", "shop.example:8443")
    assert not site_matches("shop.example:8443", "shop.example")
    assert site_matches("shop.example", "shop.example:8443")


def test_blocked_sites_win_and_allowed_sites_exclude_the_rest():
    checkout = integration(allowed_sites=["*.shop.example"], blocked_sites=["bad.shop.example"])
    assert blocked_because(checkout, "www.shop.example") is None
    assert blocked_because(checkout, None) is None
    assert "blocked" in (blocked_because(checkout, "bad.shop.example") or "")
    assert "not among" in (blocked_because(checkout, "evil.example") or "")
    assert blocked_because(integration(), "anything.example") is None


def test_integration_fields_are_checked_and_sites_lower_cased():
    fields = IntegrationFields(name="x", allowed_sites=["Shop.Example"])
    assert fields.allowed_sites == ["shop.example"]
    for bad in [
        {"name": ""},
        {"name": "x", "blocked_sites": ["a b"]},
        {"name": "x", "placements": {"Order Page": {}}},
        {"name": "x", "placements": {"ok": {"offer_ids": [0]}}},
    ]:
        with pytest.raises(ValidationError):
            IntegrationFields.model_validate(bad)


def test_a_flow_id_is_read_back_only_by_its_tenant_and_integration():
    flow = Flow(7, "ann", "shop.example", NOW, "abc")
    made = new_flow_id(KEY, "acme", flow)
    assert made.startswith("flw_")
    assert read_flow(KEY, "acme", 7, made) == flow
    assert read_flow(KEY, "other", 7, made) is None
    assert read_flow(KEY, "acme", 8, made) is None
    assert read_flow(b"x" * 32, "acme", 7, made) is None
    body, _, mac = made.partition(".")
    assert read_flow(KEY, "acme", 7, f"{body}x.{mac}") is None
    for forged in ["flw_", "flw_e30", "flw_e30.AAAA", "dec_1_a", made[:-1]]:
        assert read_flow(KEY, "acme", 7, forged) is None


def test_a_placement_shows_its_offers_its_collections_and_their_order():
    offers = [
        catalog(1, priority=5),
        catalog(2, collection_ids=[50]),
        catalog(3),
        catalog(4, priority=1),
    ]
    collections = {
        60: CollectionDefinition.model_validate(stamp(60, offers_order=[3])),
        61: CollectionDefinition.model_validate(
            stamp(61, offers_order=[4], archived_at=NOW.isoformat())
        ),
    }
    live = by_priority(offers)
    named = PlacementFields(offer_ids=[1], collection_ids=[50, 60, 61])
    shown = [o.id for _, group in placement_catalog(live, named, collections) for o in group]
    assert sorted(shown) == [1, 2, 3]
    assert placement_catalog(live, PlacementFields(all_catalog_offers=True), {}) is live
    assert placement_catalog(live, PlacementFields(), {}) == []


def test_live_placements_are_made_again_when_the_catalog_changes():
    store = CatalogStore()
    store.apply(catalog(1))
    checkout = integration(placements={"thanks": {"offer_ids": [1, 2]}})
    store.apply(checkout)
    live = LivePlacements(LiveCatalog(store))
    assert [o.id for _, g in live.of(checkout, "thanks") for o in g] == [1]
    store.apply(catalog(2))
    assert sorted(o.id for _, g in live.of(checkout, "thanks") for o in g) == [1, 2]
    assert store.integrations("acme")[7] == checkout
    assert store.version("acme", "integration", 7) == 1


def test_the_engine_skips_what_the_flow_showed_and_says_so():
    offers = by_priority([catalog(1, priority=5), catalog(2, priority=3)])
    member = MemberContext(profile=None, standings={}, counts={})
    first = decide([], offers, member, DecisionContext(), NOW)
    assert first.chosen is not None and first.chosen.ref == "catalog_1"
    second = decide([], offers, member, DecisionContext(), NOW, frozenset({"catalog_1"}))
    assert second.chosen is not None and second.chosen.ref == "catalog_2"
    assert second.candidates[0].lost_because == [SHOWN]
    none = decide([], offers, member, DecisionContext(), NOW, frozenset({"catalog_1", "catalog_2"}))
    assert none.chosen is None and none.none_because == "none of 2 candidate(s) is eligible"


def test_the_owner_defines_integrations_as_it_does_offers():
    body = IntegrationFields(name="Checkout", placements={"thanks": PlacementFields()})
    command = DefinitionCommand(
        command_id="c1",
        tenant_id="acme",
        target="integration",
        id=7,
        action="create",
        integration=body,
        issued_at=NOW,
    )
    assert command.key == definition_key("acme", "integration", 7) == b"acme\x00integration\x007"
    state, event = decide_definition(OfferState(), command)
    assert event.kind == "defined" and event.target == "integration" and event.version == 1
    assert state.integration is not None and state.integration.name == "Checkout"
    stale = command.model_copy(update={"command_id": "c2", "action": "update"})
    _, refused = decide_definition(state, stale)
    assert refused.reason == "version_conflict"
    with pytest.raises(ValidationError):
        DefinitionCommand(
            command_id="c3",
            tenant_id="acme",
            target="integration",
            id=7,
            action="create",
            collection={"title": {}},
            issued_at=NOW,
        )


def test_the_answer_is_segments_with_their_children_then_the_event():
    choice = Choice(
        ref="catalog_1",
        kind="catalog",
        id=1,
        title="Ann, Free shipping",
        description="On your next order",
        options=[OfferOption(id="take", label={"en": "Take it"})],
    )
    links = offer_links("/flows/f/offers", "dec_1_a", "thanks")
    assert [link["rel"] for link in links] == ["accept", "decline", "next", "shown"]
    assert links[2]["href"].endswith("?placement=thanks&after=dec_1_a")
    offer = offer_data("dec_1_a", choice, links, [], "en")
    assert offer["type"] == "offer" and offer["id"] == "dec_1_a"
    headline, body, view = offer["children"]
    assert (headline["type"], headline["text"]) == ("text", "Ann, Free shipping")
    assert (body["type"], body["text"]) == ("text", "On your next order")
    assert view["type"] == "view"
    assert [(a["action"], a["text"]) for a in view["children"]] == [
        ("accept", "Take it"),
        ("decline", "No, thanks"),
    ]
    assert all(a["children"] == [] for a in view["children"])
    event = event_data("decision.made", "dec_1_a", "dec_1_a", NOW)
    assert event["type"] == "event" and event["at"] == NOW.isoformat()

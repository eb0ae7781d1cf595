"""The loyalty platform's offer and collection models (its examples, as a client library
sends them) are taken as they are, and what it marks read-only is answered."""

import json
from datetime import UTC, datetime

import pytest
from catalog_factories import definition
from pydantic import ValidationError

from proffer_stream.api.catalog_models import CatalogOfferView
from proffer_stream.catalog.models import CatalogOfferFields, CollectionFields, OfferCounts

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
READ_ONLY = {"id", "url", "files", "created_at", "updated_at", "archived_at"}
READ_ONLY |= {"uses_count", "grants_count", "external_master"}
REFERENCE_OFFER = {
    "id": 129,
    "type": "regular",
    "status": "published",
    "name": {"en": "Great Offer!", "pl": "Super Oferta"},
    "description": {"en": "Special", "pl": "Specjalna"},
    "internal_name": "Internal offer name",
    "notes": "Internal offer description",
    "usable_since": "2022-05-05T13:00:00.000000Z",
    "usable_until": "2030-05-05T13:00:00.000000Z",
    "visible_since": "2021-05-05T13:00:00.000000Z",
    "visible_until": "2031-05-05T13:00:00.000000Z",
    "collection_ids": [2],
    "store_id": 15,
    "audience_id": None,
    "campaign_id": 32,
    "url": "promotions/423",
    "external_url": "https://example.com",
    "maximum_uses_per_user": 5,
    "maximum_grants_per_user": 10,
    "periodic_usage": {"timespan": "week", "limit": 15},
    "stock": 30,
    "usage_authorization_token": "tok3n",
    "usage_authorization_token_required": True,
    "external_master": None,
    "external_source": "crm",
    "image_template": {
        "width": 100,
        "height": 300,
        "default": False,
        "rectangles": [{"name": "Title", "color": "#FF00FF", "content": "{{stores}}"}],
        "background_url": "https://example.com/image.png",
    },
    "extras": {"something": "additional"},
    "cms_tag_ids": [3, 4],
    "files": [],
    "created_at": "2022-05-27T09:12:29.358079Z",
    "archived_at": None,
    "uses_count": 0,
}


def writable(**changes: object) -> dict[str, object]:
    return {k: v for k, v in {**REFERENCE_OFFER, **changes}.items() if k not in READ_ONLY}


def test_the_reference_offer_is_taken_with_every_writable_field_kept():
    offer = CatalogOfferFields.model_validate_json(json.dumps(writable()))
    kept = offer.model_dump(mode="json")
    assert {k: kept[k] for k in ("store_id", "campaign_id", "external_source", "cms_tag_ids")} == {
        "store_id": 15,
        "campaign_id": 32,
        "external_source": "crm",
        "cms_tag_ids": [3, 4],
    }
    assert kept["image_template"] == REFERENCE_OFFER["image_template"]


def test_a_dmp_audience_is_refused_rather_than_showing_the_offer_to_everyone():
    with pytest.raises(ValidationError) as refused:
        CatalogOfferFields.model_validate_json(json.dumps(writable(audience_id=34)))
    [error] = refused.value.errors()
    assert error["loc"] == ("audience_id",) and "`audience`" in error["msg"]


@pytest.mark.parametrize("field", ["store_id", "campaign_id", "cms_tag_ids"])
def test_foreign_ids_are_whole_numbers(field):
    bad = ["3"] if field == "cms_tag_ids" else -1
    with pytest.raises(ValidationError):
        CatalogOfferFields.model_validate_json(json.dumps(writable(**{field: bad})))


def test_an_offer_is_answered_with_its_page_and_files():
    offer = definition(129, NOW, store_id=15)
    shown = json.loads(CatalogOfferView.of(offer, OfferCounts()).model_dump_json())
    assert (shown["url"], shown["files"], shown["store_id"]) == ("offers/129", [], 15)


def test_the_reference_collection_files_are_kept():
    cover = {
        "url": "https://cdn.example/offer-1000115-original.jpg",
        "width": 600,
        "height": 800,
        "kind": "collection_cover_default",
        "size_type": "base",
    }
    collection = CollectionFields.model_validate({"title": {"en": "Super"}, "files": [cover]})
    assert collection.model_dump(mode="json")["files"] == [cover]


def test_a_periodic_limit_the_owner_could_not_count_to_is_refused():
    usage = {"timespan": "year", "limit": 401}
    with pytest.raises(ValidationError) as refused:
        CatalogOfferFields.model_validate({"periodic_usage": usage})
    assert refused.value.errors()[0]["loc"] == ("periodic_usage", "limit")
    assert CatalogOfferFields.model_validate({"periodic_usage": {**usage, "limit": 400}})

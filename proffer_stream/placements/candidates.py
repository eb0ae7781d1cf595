"""What may show at a placement: the tenant's live catalog offers the placement names
(by id, by collection, or all), and the customer's open offers if it takes them.

Made once per catalog change for each placement (:class:`LivePlacements`), so a
decision at a placement ranks only its own candidates.
"""

from __future__ import annotations

from collections.abc import Mapping

from proffer_stream.catalog.models import (
    CatalogDefinition,
    CollectionDefinition,
    IntegrationDefinition,
    PlacementFields,
)
from proffer_stream.decisions.engine import ByPriority
from proffer_stream.decisions.live import LiveCatalog


def named_offer_ids(
    placement: PlacementFields, collections: Mapping[int, CollectionDefinition]
) -> frozenset[int]:
    """The catalog offers the placement names: its own, and those its live collections
    order."""
    ids = set(placement.offer_ids)
    for collection_id in placement.collection_ids:
        collection = collections.get(collection_id)
        if collection is not None and collection.archived_at is None:
            ids.update(collection.offers_order)
    return frozenset(ids)


def shows(offer: CatalogDefinition, placement: PlacementFields, named: frozenset[int]) -> bool:
    """Whether the placement may show the catalog offer."""
    return (
        placement.all_catalog_offers
        or offer.id in named
        or not set(placement.collection_ids).isdisjoint(offer.collection_ids)
    )


def placement_catalog(
    live: ByPriority,
    placement: PlacementFields,
    collections: Mapping[int, CollectionDefinition],
) -> ByPriority:
    """The live catalog offers, by priority, that the placement may show."""
    if placement.all_catalog_offers:
        return live
    named = named_offer_ids(placement, collections)
    kept = [
        (priority, [o for o in offers if shows(o, placement, named)]) for priority, offers in live
    ]
    return [(priority, offers) for priority, offers in kept if offers]


class LivePlacements:
    """Each placement's catalog offers, as of the catalog's last change."""

    def __init__(self, catalog: LiveCatalog) -> None:
        self.catalog = catalog
        self._made: dict[tuple[str, int, str], tuple[int, ByPriority]] = {}

    def of(self, integration: IntegrationDefinition, name: str) -> ByPriority:
        """The catalog offers the integration's placement ``name`` may show."""
        store = self.catalog.store
        key = (integration.tenant_id, integration.id, name)
        made = self._made.get(key)
        if made is not None and made[0] == store.changes:
            return made[1]
        live = self.catalog.of(integration.tenant_id).by_priority
        offers = placement_catalog(
            live, integration.placements[name], store.collections(integration.tenant_id)
        )
        self._made[key] = (store.changes, offers)
        return offers

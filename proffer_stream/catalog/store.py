"""Every tenant's catalog definitions in memory, as a follower of ``proffer.catalog`` keeps them.

The topic is compacted and keyed by item, so a reader from the beginning sees each
offer, collection and integration at its latest version (and maybe older ones first); the store
keeps the highest version of each, whatever the order it is given them in.
"""

from __future__ import annotations

from collections.abc import Mapping

from proffer_stream.catalog.models import (
    CatalogDefinition,
    CollectionDefinition,
    Definition,
    DefinitionTarget,
    IntegrationDefinition,
)

__all__ = ["CatalogStore", "Definition"]


class CatalogStore:
    """The latest version of every tenant's catalog offers, collections and integrations."""

    def __init__(self) -> None:
        self._offers: dict[str, dict[int, CatalogDefinition]] = {}
        self._collections: dict[str, dict[int, CollectionDefinition]] = {}
        self._integrations: dict[str, dict[int, IntegrationDefinition]] = {}
        self.changes = 0
        """How many definitions were kept: what a view made of the store goes stale by."""

    def _held(self, target: DefinitionTarget, tenant_id: str) -> dict[int, Definition]:
        kinds: dict[str, dict[str, dict[int, Definition]]] = {
            "offer": self._offers,  # type: ignore[dict-item]
            "collection": self._collections,  # type: ignore[dict-item]
            "integration": self._integrations,  # type: ignore[dict-item]
        }
        return kinds[target].setdefault(tenant_id, {})

    def apply(self, item: Definition) -> bool:
        """Keep ``item`` if newer than the version held; whether it was kept."""
        held = self._held(target_of(item), item.tenant_id)
        current = held.get(item.id)
        if current is not None and current.version >= item.version:
            return False
        held[item.id] = item
        self.changes += 1
        return True

    def offers(self, tenant_id: str) -> Mapping[int, CatalogDefinition]:
        """The tenant's catalog offers by id (archived ones included)."""
        return self._offers.get(tenant_id, {})

    def collections(self, tenant_id: str) -> Mapping[int, CollectionDefinition]:
        """The tenant's collections by id (archived ones included)."""
        return self._collections.get(tenant_id, {})

    def integrations(self, tenant_id: str) -> Mapping[int, IntegrationDefinition]:
        """The tenant's integrations by id (archived ones included)."""
        return self._integrations.get(tenant_id, {})

    def version(self, tenant_id: str, target: DefinitionTarget, item_id: int) -> int:
        """The version held of an offer, collection or integration (``target``); 0 if none."""
        item = self._held(target, tenant_id).get(item_id)
        return item.version if item is not None else 0


def target_of(item: Definition) -> DefinitionTarget:
    """Which kind of definition ``item`` is."""
    if isinstance(item, CatalogDefinition):
        return "offer"
    if isinstance(item, CollectionDefinition):
        return "collection"
    return "integration"

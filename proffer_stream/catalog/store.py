"""Every tenant's catalog definitions in memory, as a follower of ``proffer.catalog`` keeps them.

The topic is compacted and keyed by item, so a reader from the beginning sees each
offer and collection at its latest version (and maybe older ones first); the store
keeps the highest version of each, whatever the order it is given them in.
"""

from __future__ import annotations

from collections.abc import Mapping

from proffer_stream.catalog.models import CatalogDefinition, CollectionDefinition

Definition = CatalogDefinition | CollectionDefinition


class CatalogStore:
    """The latest version of every tenant's catalog offers and collections."""

    def __init__(self) -> None:
        self._offers: dict[str, dict[int, CatalogDefinition]] = {}
        self._collections: dict[str, dict[int, CollectionDefinition]] = {}
        self.changes = 0
        """How many definitions were kept: what a view made of the store goes stale by."""

    def apply(self, item: Definition) -> bool:
        """Keep ``item`` if newer than the version held; whether it was kept."""
        held: dict[int, Definition] = (
            self._offers.setdefault(item.tenant_id, {})  # type: ignore[assignment]
            if isinstance(item, CatalogDefinition)
            else self._collections.setdefault(item.tenant_id, {})
        )
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

    def version(self, tenant_id: str, target: str, item_id: int) -> int:
        """The version held of an offer or collection (``target``); 0 if none."""
        held: Mapping[int, Definition] = (
            self.offers(tenant_id) if target == "offer" else self.collections(tenant_id)
        )
        item = held.get(item_id)
        return item.version if item is not None else 0

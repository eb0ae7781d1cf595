"""Each tenant's catalog as decisions take it: the live offers (published, not archived)
grouped by priority, remade only when the catalog changed."""

from __future__ import annotations

from dataclasses import dataclass

from proffer_stream.catalog.store import CatalogStore
from proffer_stream.decisions.engine import ByPriority, by_priority


@dataclass(frozen=True)
class LiveOffers:
    """A tenant's live catalog offers, by priority, and those whose stock is counted."""

    by_priority: ByPriority
    stocked_ids: list[int]


class LiveCatalog:
    """The live offers of each tenant, as of the store's last change."""

    def __init__(self, store: CatalogStore) -> None:
        self.store = store
        self._made: dict[str, tuple[int, LiveOffers]] = {}

    def of(self, tenant_id: str) -> LiveOffers:
        """The tenant's live offers (made again if the store changed since)."""
        made = self._made.get(tenant_id)
        if made is not None and made[0] == self.store.changes:
            return made[1]
        live = [
            o
            for o in self.store.offers(tenant_id).values()
            if o.status == "published" and o.archived_at is None
        ]
        offers = LiveOffers(by_priority(live), [o.id for o in live if o.stock is not None])
        self._made[tenant_id] = (self.store.changes, offers)
        return offers

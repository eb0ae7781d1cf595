"""Each tenant's catalog offers in name order, per list of languages, made again only
when the catalog changed: a member list sorts by name by default, and an offer's name in
a language does not depend on the member."""

from __future__ import annotations

from proffer_stream.catalog.models import CatalogDefinition
from proffer_stream.catalog.store import CatalogStore
from proffer_stream.catalog.views import name_key, ordered

MOST_KEPT = 256
"""Orders kept at once (tenant and languages: the languages come from requests, so the
cache is bounded; past it, it starts again)."""


class NameOrders:
    """Positions of each tenant's offers sorted by name ascending (ties by id), as
    :func:`~proffer_stream.catalog.views.ordered` sorts them."""

    def __init__(self, store: CatalogStore) -> None:
        self.store = store
        self._made: dict[tuple[str, tuple[str, ...], str], tuple[int, dict[int, int]]] = {}

    def positions(self, tenant_id: str, languages: list[str], default: str) -> dict[int, int]:
        """Each offer id's place in the tenant's name order in ``languages``."""
        key = (tenant_id, tuple(languages), default)
        made = self._made.get(key)
        if made is not None and made[0] == self.store.changes:
            return made[1]
        changes = self.store.changes
        offers = list(self.store.offers(tenant_id).values())
        by_name = ordered(
            offers, [("name", False)], lambda offer, _: name_key(offer, languages, default)
        )
        positions = {offer.id: place for place, offer in enumerate(by_name)}
        if len(self._made) >= MOST_KEPT:
            self._made.clear()
        self._made[key] = (changes, positions)
        return positions


def in_name_order(
    offers: list[CatalogDefinition], positions: dict[int, int]
) -> list[CatalogDefinition]:
    """``offers`` in the name order of ``positions`` (from :meth:`NameOrders.positions`
    of the same catalog the offers were taken from: a rename since would reorder by
    names the answer does not show)."""
    last = len(positions)
    return sorted(offers, key=lambda offer: (positions.get(offer.id, last), offer.id))

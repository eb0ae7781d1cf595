"""Catalog offers for the catalog's unit tests: an owner's state with one published
offer defined, and a definition as the store holds it."""

from datetime import datetime, timedelta

from proffer_stream.catalog.limits import OfferState, decide_definition
from proffer_stream.catalog.models import CatalogDefinition, CatalogOfferFields, DefinitionCommand


def defined_offer(issued_at: datetime, **fields: object) -> OfferState:
    """The owner's state once it created catalog offer 1 of tenant acme, published,
    with ``fields``, at ``issued_at``."""
    command = DefinitionCommand(
        command_id="create",
        tenant_id="acme",
        target="offer",
        id=1,
        action="create",
        offer=CatalogOfferFields(status="published", **fields),  # type: ignore[arg-type]
        issued_at=issued_at,
    )
    return decide_definition(OfferState(), command)[0]


def definition(
    offer_id: int, now: datetime, version: int = 1, **fields: object
) -> CatalogDefinition:
    """Published catalog offer ``offer_id`` of tenant acme, created ``offer_id`` days
    before ``now``, at ``version``, with ``fields``."""
    return CatalogDefinition.model_validate(
        {
            "id": offer_id,
            "tenant_id": "acme",
            "version": version,
            "created_at": now - timedelta(days=offer_id),
            "updated_at": now,
            "command_id": f"c{offer_id}-{version}",
            "status": "published",
            **fields,
        }
    )

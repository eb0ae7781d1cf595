"""Generated offers bound to the catalog: which catalog offer a rule's hints give, and the
messages between a customer's offers agent and the catalog offer's owner. Pure.

A rule's hints may name catalog offers and collections; the first of them the customer
may have now (:func:`choose`) becomes the writer's brief, and policy holds the draft to
its terms. The offer is issued once the catalog offer's owner grants it
(:func:`grant_command`), whose answer goes back to the offers agent
(:func:`answer_to_grant`); a redemption of the offer is a use of the catalog offer, and
its expiry unredeemed a release of the stock its grant held (:func:`catalog_follow_up`).
Command ids follow from the offer's id (or the event's), so a replay asks the owner once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from proffer_stream.catalog.models import (
    UNUSABLE_TYPES,
    CatalogDefinition,
    CatalogEvent,
    CollectionDefinition,
    MemberAction,
    MemberCommand,
    localized,
    within,
)
from proffer_stream.catalog.views import in_audience
from proffer_stream.offers.models import CatalogBrief, Offer, OfferCommand, OfferEvent
from proffer_stream.offers.rules import WriterHints
from proffer_stream.signals.models import CustomerProfile

MAX_PASSED_OVER = 10
"""Most catalog offers a suppression names with why each was passed over."""


@dataclass(frozen=True)
class Choice:
    """The catalog offer chosen (None: none may be given now), and why others were not."""

    brief: CatalogBrief | None
    passed_over: list[str] = field(default_factory=list)

    def suppression(self) -> list[str]:
        """Why no offer is made, when none could be chosen."""
        if self.brief is not None:
            return []
        why = "; ".join(self.passed_over[:MAX_PASSED_OVER]) or "the rule names none"
        return [f"no catalog offer to give: {why}"]


def choose(
    offers: Mapping[int, CatalogDefinition],
    collections: Mapping[int, CollectionDefinition],
    hints: WriterHints,
    profile: CustomerProfile,
    now: datetime,
    language: str,
) -> Choice:
    """The first catalog offer the hints name (offers, then each collection's) that the
    customer may have now: published, not archived, visible and usable now, a type that
    is used, and the customer in its audience. Stock and per-customer limits are the
    owner's to decide (the grant)."""
    passed_over: list[str] = []
    for offer_id in candidates(offers, collections, hints):
        offer = offers.get(offer_id)
        why = "not in the catalog" if offer is None else unavailable(offer, profile, now)
        if why is None and offer is not None:
            return Choice(brief_of(offer, language), passed_over)
        passed_over.append(f"{offer_id} {why}")
    return Choice(None, passed_over)


def candidates(
    offers: Mapping[int, CatalogDefinition],
    collections: Mapping[int, CollectionDefinition],
    hints: WriterHints,
) -> list[int]:
    """The catalog offers the hints name, in order, each once: the offers named, then each
    collection's in its ``offers_order``, then its other offers by id."""
    return list(dict.fromkeys(_named(offers, collections, hints)))


def _named(
    offers: Mapping[int, CatalogDefinition],
    collections: Mapping[int, CollectionDefinition],
    hints: WriterHints,
) -> Iterator[int]:
    yield from hints.catalog_offer_ids
    for collection_id in hints.catalog_collection_ids:
        collection = collections.get(collection_id)
        if collection is None or collection.archived_at is not None:
            continue
        yield from collection.offers_order
        yield from sorted(o.id for o in offers.values() if collection_id in o.collection_ids)


def unavailable(offer: CatalogDefinition, profile: CustomerProfile, now: datetime) -> str | None:
    """Why the customer may not have the catalog offer now; None: they may."""
    if offer.archived_at is not None:
        return "is archived"
    if offer.status != "published":
        return f"is {offer.status}"
    if not within(now, offer.visible_since, offer.visible_until):
        return "is outside its visible window"
    if offer.type in UNUSABLE_TYPES:
        return f"is {offer.type}, never used"
    if not within(now, offer.usable_since, offer.usable_until):
        return "is outside its usable window"
    if not in_audience(offer, profile, now):
        return "has an audience the customer is not in"
    return None


def brief_of(offer: CatalogDefinition, language: str) -> CatalogBrief:
    """What the writer is told of the catalog offer, in ``language`` (else any)."""
    terms = offer.terms
    return CatalogBrief(
        catalog_offer_id=offer.id,
        name=localized(offer.name, [], language),
        description=localized(offer.description, [], language),
        discount_percent=terms.discount_percent if terms else None,
        discount_amount=terms.discount_amount if terms else None,
        code_pattern=terms.code_pattern if terms else None,
        valid_days=terms.valid_days if terms else None,
        conditions=terms.conditions if terms else None,
        channels=list(offer.channels),
    )


def grant_command(offer: Offer) -> MemberCommand:
    """The grant that issues ``offer`` (written for a catalog offer), decided at its
    generation; its id follows from the offer's. It holds a unit of the catalog offer's
    stock until the offer is redeemed or expires (:func:`catalog_follow_up`)."""
    assert offer.catalog_offer_id is not None
    return MemberCommand(
        command_id=f"offer-{offer.id}:grant",
        tenant_id=offer.tenant_id,
        offer_id=offer.catalog_offer_id,
        external_customer_id=offer.external_customer_id,
        action="grant",
        issued_at=offer.generated_at,
        for_offer_id=offer.id,
        source=f"offer {offer.id}",
    )


def catalog_follow_up(event: OfferEvent, timezone: str) -> MemberCommand | None:
    """What an offer written for a catalog offer tells that offer's owner when it ends:
    its redemption is a use of the catalog offer, its expiry unredeemed releases the
    stock its grant held (None for other events and other offers). The id follows from
    the event's, so an event handled again asks once. ``timezone`` is the customer's
    (a use's periodic limits count in it)."""
    offer = event.offer
    action = _FOLLOW_UPS.get(event.event_type)
    if action is None or offer is None or offer.catalog_offer_id is None:
        return None
    return MemberCommand(
        command_id=f"{event.event_id}:{action}",
        tenant_id=offer.tenant_id,
        offer_id=offer.catalog_offer_id,
        external_customer_id=offer.external_customer_id,
        action=action,
        issued_at=event.occurred_at,
        timezone=timezone,
        for_offer_id=offer.id,
        source=f"offer {offer.id}",
    )


_FOLLOW_UPS: dict[str, MemberAction] = {"offer.redeemed": "use", "offer.expired": "release"}


def answer_to_grant(command: MemberCommand, event: CatalogEvent) -> OfferCommand | None:
    """What the owner tells the offers agent of its decision on an offer's grant: granted
    (the offer is issued) or refused (it is not, and why). None for other commands."""
    if command.action != "grant" or command.for_offer_id is None:
        return None
    granted = event.kind == "granted"
    return OfferCommand(
        command_id=f"{command.command_id}:{'granted' if granted else 'refused'}",
        tenant_id=command.tenant_id,
        external_customer_id=command.external_customer_id,
        action="catalog_granted" if granted else "catalog_refused",
        offer_id=command.for_offer_id,
        cause=f"catalog offer {command.offer_id}",
        reason=None if granted else f"{event.reason}: {event.message}"[:500],
        issued_at=event.at,
    )

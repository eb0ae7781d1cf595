"""Why a candidate may not be chosen now: each reason in words, for the trace.

A catalog offer must be visible to the customer (the member's view), usable by them as
last known (windows, grants, per-customer limits, stock) and fit the request's context;
an open offer must be approved or sent and not expired.
"""

from __future__ import annotations

from datetime import datetime

from proffer_stream.catalog.models import (
    GRANTED_TYPES,
    UNUSABLE_TYPES,
    CatalogDefinition,
    MemberCounts,
    OfferCounts,
)
from proffer_stream.catalog.views import (
    grant_usable_until,
    hidden_because,
    holds_grant,
    in_audience,
    in_stock,
    member_zone,
    periodic_spent,
    sees,
    usable,
)
from proffer_stream.decisions.context import DecisionContext, context_fits, context_misses
from proffer_stream.offers.models import Offer
from proffer_stream.signals.models import CustomerProfile

OPEN_STATUSES = frozenset({"approved", "sent"})
"""Statuses of an offer the customer may still take up."""


def unusable_because(
    offer: CatalogDefinition,
    standing: MemberCounts,
    counts: OfferCounts,
    now: datetime,
    tz: str = "UTC",
) -> list[str]:
    """Why a use now would fail as far as the member's view can tell (empty: it would
    not; the reasons of :func:`~proffer_stream.catalog.views.usable`)."""
    reasons = []
    if offer.type in UNUSABLE_TYPES:
        reasons.append(f"{offer.type} offers are not used")
    if offer.usable_since is not None and now < offer.usable_since:
        reasons.append(f"usable from {offer.usable_since.isoformat()}")
    if offer.usable_until is not None and now >= offer.usable_until:
        reasons.append(f"usable until {offer.usable_until.isoformat()}")
    if offer.type in GRANTED_TYPES and standing.grants == 0:
        reasons.append(f"{offer.type} offers are used once granted")
    until = grant_usable_until(offer, standing)
    if until is not None and now >= until and not holds_grant(offer, standing, now):
        reasons.append(f"the grant was usable until {until.isoformat()}")
    most = offer.maximum_uses_per_user
    if most is not None and standing.uses >= most:
        reasons.append(f"used {standing.uses} of at most {most} times")
    if periodic_spent(offer, standing, now, tz):
        usage = offer.periodic_usage
        assert usage is not None
        reasons.append(f"no use left this {usage.timespan} (at most {usage.limit})")
    if not holds_grant(offer, standing, now) and not in_stock(offer, counts, now):
        reasons.append("out of stock")
    return reasons


def catalog_misses(
    offer: CatalogDefinition,
    standing: MemberCounts,
    counts: OfferCounts,
    profile: CustomerProfile | None,
    context: DecisionContext,
    now: datetime,
) -> list[str]:
    """Why the catalog offer may not be chosen for this customer in this context."""
    audience_ok = in_audience(offer, profile, now)
    return [
        *hidden_because(offer, standing, audience_ok, now),
        *unusable_because(offer, standing, counts, now, _zone(offer, profile, context)),
        *context_misses(offer.context, context),
    ]


def catalog_miss(
    offer: CatalogDefinition,
    standing: MemberCounts,
    counts: OfferCounts,
    profile: CustomerProfile | None,
    context: DecisionContext,
    now: datetime,
) -> str | None:
    """The first reason, in a word, that :func:`catalog_misses` would give (None: it
    gives none): the fast check of the hot path, the cheapest tests first."""
    if not context_fits(offer.context, context):
        return "not in this context"
    if not usable(offer, standing, counts, now, _zone(offer, profile, context)):
        return "not usable"
    if not sees(offer, standing, profile, now):
        return "not visible to the customer"
    return None


def _zone(
    offer: CatalogDefinition, profile: CustomerProfile | None, context: DecisionContext
) -> str:
    """The customer's time zone, for a periodic limit: the request's, else the profile's
    (looked up only for an offer that has one)."""
    if offer.periodic_usage is None:
        return "UTC"
    return context.timezone or member_zone(profile)


def open_offer_misses(offer: Offer, now: datetime) -> list[str]:
    """Why the customer's own offer may not be chosen now."""
    reasons = []
    if offer.status not in OPEN_STATUSES:
        reasons.append(f"{offer.status}, not approved or sent")
    if offer.expires_at <= now:
        reasons.append(f"expired at {offer.expires_at.isoformat()}")
    return reasons

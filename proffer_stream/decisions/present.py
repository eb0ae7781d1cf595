"""What an answer shows of a chosen candidate: its text in the request's language, and
the options to take it up."""

from __future__ import annotations

from typing import Any

from proffer_stream.catalog.models import CatalogDefinition, OfferOption, localized
from proffer_stream.decisions.engine import Candidate
from proffer_stream.decisions.models import Choice
from proffer_stream.offers.models import Offer

DEFAULT_LABELS = {"en": "Accept"}


def languages_of(locale: str | None) -> list[str]:
    """The languages to show text in for a request's locale (none: the default)."""
    return [locale] if locale else []


def content(
    candidate: Candidate, languages: list[str], default: str
) -> tuple[str | None, str | None]:
    """The candidate's title and description in the first language it has."""
    item = candidate.item
    if isinstance(item, Offer):
        return item.headline, item.body_copy
    return (
        localized(item.name, languages, default),
        localized(item.description, languages, default),
    )


def options(candidate: Candidate) -> list[OfferOption]:
    """The candidate's options: a catalog offer's own, else one from its external URL (a
    redirect) or a checkout."""
    item = candidate.item
    if isinstance(item, CatalogDefinition) and item.options:
        return item.options
    url = item.external_url if isinstance(item, CatalogDefinition) else None
    if url is not None:
        return [
            OfferOption(
                id="accept", label=DEFAULT_LABELS, processing_type="url_redirect", redirect_url=url
            )
        ]
    return [OfferOption(id="accept", label=DEFAULT_LABELS, processing_type="checkout")]


def option_view(option: OfferOption, languages: list[str], default: str) -> dict[str, Any]:
    """An option as the billing platform's answer shows it."""
    return {
        "id": option.id,
        "label": localized(option.label, languages, default) or option.id,
        "processing_type": option.processing_type,
        "processing_layout": option.processing_layout,
        "redirect_url": option.redirect_url,
    }


def addressed(title: str | None, first_name: str) -> str | None:
    """The title addressed to the customer by their first name (``Ann, Spring sale``)."""
    return f"{first_name}, {title}" if title else title


def choice_of(candidate: Candidate, languages: list[str], default: str) -> Choice:
    """What the decision event records of the chosen candidate."""
    title, description = content(candidate, languages, default)
    code = candidate.item.offer_terms.code if isinstance(candidate.item, Offer) else None
    return Choice(
        ref=candidate.ref,
        kind=candidate.kind,
        id=candidate.item.id,
        title=title,
        description=description,
        code=code,
        options=options(candidate),
    )


def personalized_offer(
    decision_id: str, candidate: Candidate, languages: list[str], default: str
) -> dict[str, Any]:
    """One entry of ``personalized_offers``: the decision's id, the offer, its content in
    the request's language, and its options."""
    title, description = content(candidate, languages, default)
    return {
        "id": decision_id,
        "offer_id": candidate.ref,
        "content": {"title": title, "description": description},
        "options": [option_view(o, languages, default) for o in options(candidate)],
    }

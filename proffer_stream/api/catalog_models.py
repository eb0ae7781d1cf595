"""HTTP bodies of the catalog's API: definitions as managed, offers as a member sees
them, the answers of members' actions and their refusals."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from proffer_stream.api.models import ErrorBody
from proffer_stream.catalog.models import (
    ActivationTexts,
    CatalogDefinition,
    CatalogFile,
    CatalogOfferFields,
    CatalogTerms,
    CollectionDefinition,
    CollectionFields,
    MemberAction,
    MemberCounts,
    OfferCounts,
    OfferTotals,
    PeriodicUsage,
    ReadMore,
    ShortText,
    Use,
)
from proffer_stream.core.types import StrictModel
from proffer_stream.offers.models import Channel


class PaginationInfo(BaseModel):
    total_count: int
    per_page: int
    total_pages: int
    current_page: int
    next_page: int | None
    prev_page: int | None
    is_first_page: bool
    is_last_page: bool
    is_out_of_range: bool


class CatalogOfferView(CatalogOfferFields):
    """A catalog offer as managed: what a business wrote, and what is read-only."""

    id: int
    version: int
    url: str = Field(description="The offer's page, relative to the site: offers/{id}.")
    files: list[CatalogFile] = Field(
        default_factory=list, description="The offer's images: none (no files API here)."
    )
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    uses_count: int = 0
    grants_count: int = 0
    likes_count: int = 0
    seen_count: int = 0
    clicked_count: int = 0
    refusals_count: int = 0

    @classmethod
    def of(cls, offer: CatalogDefinition, counts: OfferCounts) -> CatalogOfferView:
        fields = offer.model_dump(exclude={"tenant_id", "command_id"})
        return cls.model_construct(
            **fields,
            url=f"offers/{offer.id}",
            files=[],
            **counts.model_dump(exclude={"reserved_count", "released_count", "ending"}),
        )


class CatalogOfferResponse(BaseModel):
    success: Literal[True] = True
    offer: CatalogOfferView


class CatalogOffersResponse(BaseModel):
    success: Literal[True] = True
    offers: list[CatalogOfferView]
    pagination_info: PaginationInfo


class CollectionView(CollectionFields):
    """A collection as managed, with counts computed over its offers."""

    id: int
    version: int
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    offers_count: int = Field(0, description="Offers in the collection (not archived).")
    offers_visible_count: int = Field(0, description="Of those, visible now.")
    offers_upcoming_count: int = Field(0, description="Of those, not visible yet.")
    offers_uses_count: int = Field(0, description="Uses of the collection's offers.")
    visible_since: datetime | None = Field(None, description="The first of its offers'.")
    visible_until: datetime | None = Field(None, description="The last of its offers'.")
    usable_since: datetime | None = Field(None, description="The first of its offers'.")
    usable_until: datetime | None = Field(None, description="The last of its offers'.")

    @classmethod
    def of(cls, collection: CollectionDefinition, computed: dict[str, Any]) -> CollectionView:
        fields = collection.model_dump(exclude={"tenant_id", "command_id"})
        return cls.model_construct(**fields, **computed)


class CollectionResponse(BaseModel):
    success: Literal[True] = True
    collection: CollectionView


class CollectionsResponse(BaseModel):
    success: Literal[True] = True
    collections: list[CollectionView]
    pagination_info: PaginationInfo


class CatalogCommandPending(BaseModel):
    """The command is on its way to the offer's owner; poll ``poll_url`` for its outcome."""

    success: Literal[True] = True
    status: Literal["pending"] = "pending"
    command_id: str
    poll_url: str


class CatalogCommandView(BaseModel):
    """What the owner decided of a catalog command."""

    success: Literal[True] = True
    command_id: str
    kind: str = Field(description="defined, granted, used, refused, liked, ...")
    action: str
    offer_id: int
    version: int | None = None
    reason: str | None = None
    message: str | None = None
    resets_at: datetime | None = None
    use: Use | None = None
    counts: OfferTotals = Field(description="The offer's counts after the command.")


class MemberOfferView(BaseModel):
    """A catalog offer as a member sees it: text in their language, their standing."""

    id: int
    type: str
    name: str | None
    description: str | None
    visible_since: datetime | None
    visible_until: datetime | None
    usable_since: datetime | None
    usable_until: datetime | None
    collection_ids: list[int]
    external_url: str | None
    maximum_uses_per_user: int | None
    maximum_grants_per_user: int | None
    periodic_usage: PeriodicUsage | None
    stock: int | None
    usable_in_seconds_after_granting: int | None
    usage_authorization_token_required: bool
    read_more: ReadMore | None
    activation_texts: ActivationTexts | None
    extras: dict[str, Any]
    terms: CatalogTerms | None
    channels: list[Channel]
    created_at: datetime
    updated_at: datetime
    uses_count: int
    grants_count: int
    likes_count: int
    liked: bool = Field(description="Whether this member likes it.")
    usable: bool = Field(
        description="Whether a use now would likely succeed (the owner decides; periodic"
        " limits are not counted here)."
    )
    member_uses_count: int
    member_grants_count: int
    granted_at: datetime | None = Field(description="When this member was last granted it.")
    grant_usable_until: datetime | None = Field(
        description="Until when the last grant may be used (usable_in_seconds_after_granting)."
    )


class MemberOffersResponse(BaseModel):
    success: Literal[True] = True
    offers: list[MemberOfferView]
    pagination_info: PaginationInfo | None = Field(
        None, description="Only with include_pagination_info=true."
    )


class MemberOfferResponse(BaseModel):
    success: Literal[True] = True
    offer: MemberOfferView


class MemberOffersMeta(BaseModel):
    """How many offers the member sees now, per type and per collection id."""

    success: Literal[True] = True
    total_count: int
    types: dict[str, int]
    collections: dict[str, int]


class PreviewOfferResponse(BaseModel):
    """An offer as the member would see it, and whether (and why not) they see it."""

    success: Literal[True] = True
    offer: MemberOfferView
    visible: bool
    hidden_because: list[str]


class MemberActionBody(StrictModel):
    """Optional details of a member's action."""

    timezone: ShortText | None = Field(
        None,
        description="The member's IANA time zone for periodic limits; else the profile's"
        " metadata.timezone, else PROFFER_DEFAULT_TIMEZONE.",
    )
    authorization_token: ShortText | None = Field(
        None, description="The offer's usage authorization token, where it requires one."
    )


class MemberActionResponse(BaseModel):
    """What a member's grant, use, like, unlike, seen or click did."""

    success: Literal[True] = True
    action: MemberAction
    offer_id: int
    external_customer_id: str
    command_id: str
    use: Use | None = Field(None, description="A use's id, code, terms and expiry.")
    counts: OfferTotals = Field(description="The offer's counts after the action.")
    member: MemberCounts | None


class RefusalError(ErrorBody):
    resets_at: datetime | None = Field(
        None, description="periodic_limit: when the member may use the offer again."
    )


class CatalogRefusal(BaseModel):
    """The owner refused (409): ``error.code`` says why (out_of_stock, per_user_limit,
    periodic_limit, not_usable_yet, usable_window_closed, not_granted, grant_expired,
    bad_authorization_token, token_used, not_in_audience, not_usable_type)."""

    success: Literal[False] = False
    error: RefusalError


class EncodedOfferResponse(BaseModel):
    """A signed token a point of sale verifies and uses once (POST /api/catalog/encoded/use)."""

    success: Literal[True] = True
    token: str
    token_id: str
    offer_id: int
    expires_at: datetime


class EncodedUse(StrictModel):
    """Use an encoded offer: the token a member showed."""

    token: str = Field(min_length=3, max_length=2_000)
    timezone: ShortText | None = None

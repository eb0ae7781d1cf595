"""The catalog's messages: offers a business defines, collections, and what happens to them.

A catalog offer's definition is tenant config: a :class:`CatalogDefinition` at a version
on the compacted topic ``proffer.catalog`` (keyed by tenant and offer), which every
process follows and PostgreSQL projects. Its limits are facts with one writer: every
:class:`MemberCommand` (grant, use, like, unlike, seen, clicked) and every definition
change of one catalog offer travels on ``proffer.catalog-commands`` keyed by tenant and
catalog offer, so one owner decides them in order. The owner's decisions are
:class:`CatalogEvent` s on ``proffer.catalog-events``, each carrying the counts it left,
which the sink projects.

Field names and types follow the loyalty platform's offer model (reference/
offers-catalog-api.txt); what the engine adds (``terms``, ``channels``, a structured
``audience``) is optional, so an offer with only the reference's fields is valid.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    Field,
    RootModel,
    ValidationInfo,
    field_validator,
    model_validator,
)

from proffer_stream.core.limits import check_json, no_nul
from proffer_stream.core.types import (
    WHOLE,
    ExternalId,
    IsoDatetime,
    StrictModel,
    TenantId,
    Text,
    UtcDatetime,
)
from proffer_stream.offers.models import Channel
from proffer_stream.offers.rules import RuleConditions

CatalogOfferType = Literal[
    "regular",
    "exclusive",
    "welcome",
    "birthday",
    "competition",
    "informational",
    "carbon_offset_item",
    "parking",
    "parking_exclusive",
    "game_prize",
]
CATALOG_OFFER_TYPES: tuple[CatalogOfferType, ...] = get_args(CatalogOfferType)
GRANTED_TYPES: frozenset[str] = frozenset(
    {"exclusive", "welcome", "game_prize", "parking_exclusive", "birthday"}
)
"""Types a member must be granted before using (and, but for birthday, before seeing)."""
HIDDEN_UNTIL_GRANTED: frozenset[str] = frozenset(
    {"exclusive", "welcome", "game_prize", "parking_exclusive"}
)
"""Types a member sees only once granted."""
UNUSABLE_TYPES: frozenset[str] = frozenset({"informational"})
"""Types that are shown but never used."""
CatalogStatus = Literal["draft", "published", "unpublished"]
Timespan = Literal["hour", "day", "week", "month", "year"]
MAX_LIMIT = 2**31 - 1

LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$"
_LANGUAGE = re.compile(LANGUAGE_PATTERN)
"""A language code: ISO 639 (``en``, ``pl``), optionally with a region (``pt-BR``)."""


def is_language(code: str) -> bool:
    """Whether ``code`` is a language code: ISO 639 (``en``), optionally with a region."""
    return _LANGUAGE.match(code) is not None


def language_code(code: str) -> str:
    """``code`` if it is a language code, else ValueError saying what one looks like."""
    if not is_language(code):
        raise ValueError(f"{code!r} is not a language code (ISO 639, e.g. 'en', 'pl' or 'pt-BR')")
    return code


def _languages(value: dict[str, str]) -> dict[str, str]:
    for code in value:
        language_code(code)
    return value


LocalizedText = Annotated[
    dict[str, Annotated[str, Field(max_length=10_000), AfterValidator(no_nul)]],
    Field(max_length=50, json_schema_extra={"propertyNames": {"pattern": LANGUAGE_PATTERN}}),
    AfterValidator(_languages),
]
"""Text per language: ``{"en": "Great offer", "pl": "Super oferta"}``."""
Limit = Annotated[int, Field(ge=0, le=MAX_LIMIT, strict=True), WHOLE]
ShortText = Annotated[str, Field(max_length=1_000), AfterValidator(no_nul)]
Url = Annotated[str, Field(max_length=2_000, pattern=r"^https?://\S+$")]
CatalogId = Annotated[int, Field(ge=1, le=2**53 - 1, strict=True), WHOLE]


ForeignId = Annotated[int, Field(ge=0, le=2**63 - 1, strict=True), WHOLE]
"""An id in another system (a store, a campaign, a CMS tag): kept and shown, not read."""


def _storable_json(value: dict[str, Any]) -> dict[str, Any]:
    check_json(value)
    return value


def _no_dmp_audience(value: int | None) -> int | None:
    if value is not None:
        raise ValueError(
            "audiences of a data management platform are not supported here: give the"
            " offer an `audience` (conditions over the member's signals) instead"
        )
    return value


class CatalogFile(StrictModel):
    """A file of a collection (its cover): where it is and what it is."""

    url: Url
    width: Annotated[int, Field(ge=0, le=100_000, strict=True), WHOLE] | None = None
    height: Annotated[int, Field(ge=0, le=100_000, strict=True), WHOLE] | None = None
    kind: ShortText | None = Field(None, description="e.g. collection_cover_default")
    size_type: ShortText | None = Field(None, description="e.g. base")


MAX_PERIODIC_LIMIT = 400
"""The highest ``periodic_usage.limit``: the owner keeps a member's last 400 use times
(a year of daily uses) to count a period's, so a higher limit could not be reached."""


class PeriodicUsage(StrictModel):
    """At most ``limit`` uses per member in each calendar ``timespan`` (member's time zone)."""

    timespan: Timespan
    limit: Annotated[int, Field(ge=0, le=MAX_PERIODIC_LIMIT, strict=True), WHOLE] = Field(
        description="Uses per member in a period, at most 400 (a higher one is 422: it"
        " would not be enforced); `maximum_uses_per_user` bounds uses over all time."
    )


class ReadMore(StrictModel):
    button_title: ShortText | None = None
    url: Url | None = None
    title: ShortText | None = None
    text: Annotated[str, Field(max_length=10_000), AfterValidator(no_nul)] | None = None
    enabled: bool | None = Field(None, strict=True)


class ActivationTexts(StrictModel):
    button: ShortText | None = None
    modal: ShortText | None = None
    description: ShortText | None = None


class CatalogTerms(StrictModel):
    """What a use gives the member (the engine's addition; all optional)."""

    discount_percent: Annotated[int, Field(ge=0, le=100), WHOLE] | None = Field(None, strict=True)
    discount_amount: Decimal | None = Field(None, ge=0, le=10**9, decimal_places=2)
    code_pattern: str | None = Field(
        None,
        max_length=40,
        pattern=r"^[A-Z0-9#-]{1,40}$",
        description="The code a use gives: '#' is replaced by a character of the use's id"
        " (e.g. 'SPRING-####').",
    )
    valid_days: Annotated[int, Field(ge=0, le=365), WHOLE] | None = Field(None, strict=True)
    conditions: Text | None = Field(None, max_length=500)

    @model_validator(mode="after")
    def _one_discount(self) -> CatalogTerms:
        if self.discount_percent is not None and self.discount_amount is not None:
            raise ValueError("give discount_percent or discount_amount, not both")
        return self


Device = Literal["desktop", "mobile", "tablet", "bot"]
ProcessingType = Literal["billing_update", "checkout", "url_redirect", "webhook", "email"]
ProcessingLayout = Literal["in_app", "full_page"]
CustomValue = (
    Annotated[str, AfterValidator(no_nul)]
    | int
    | Annotated[float, Field(allow_inf_nan=False)]
    | bool
)
ContextText = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(no_nul)]


class ContextConditions(StrictModel):
    """Where and to whom a decision may show the offer: conditions over the request's
    context (every condition given must hold; an empty list is no condition)."""

    url_patterns: list[ContextText] = Field(
        default_factory=list,
        max_length=50,
        description="The page's URL matches one of these shell patterns"
        " ('https://shop.example/pricing*', '*/checkout/*').",
    )
    locales: list[Annotated[str, AfterValidator(language_code)]] = Field(
        default_factory=list,
        max_length=50,
        description="The request's locale is one of these ('pl' takes 'pl-PL' too).",
    )
    devices: list[Device] = Field(
        default_factory=list, description="The device (from the user agent) is one of these."
    )
    roles: list[ContextText] = Field(
        default_factory=list, max_length=50, description="The user has one of these roles."
    )
    custom_equals: dict[ContextText, CustomValue] = Field(
        default_factory=dict,
        max_length=50,
        description="The request's custom fields have these values (true is not 1).",
    )


class OfferOption(StrictModel):
    """A way to take up the offer that a decision shows (the billing platform's option)."""

    id: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
    label: LocalizedText = Field(default_factory=dict)
    processing_type: ProcessingType = "checkout"
    processing_layout: ProcessingLayout = "in_app"
    redirect_url: Url | None = None


class CatalogOfferFields(StrictModel):
    """What a business writes of a catalog offer (everything else is read-only)."""

    type: CatalogOfferType = "regular"
    status: CatalogStatus = "draft"
    name: LocalizedText = Field(default_factory=dict)
    description: LocalizedText = Field(default_factory=dict)
    internal_name: ShortText | None = None
    notes: Annotated[str, Field(max_length=10_000), AfterValidator(no_nul)] | None = None
    visible_since: IsoDatetime | None = None
    visible_until: IsoDatetime | None = None
    usable_since: IsoDatetime | None = None
    usable_until: IsoDatetime | None = None
    collection_ids: list[CatalogId] = Field(default_factory=list, max_length=100)
    audience: RuleConditions | None = Field(
        None,
        description="Who may see and use the offer: a condition over the member's signals,"
        " in the trigger rules' language. Null: everyone.",
    )
    store_id: ForeignId | None = Field(None, description="The store the offer belongs to.")
    audience_id: Annotated[int | None, AfterValidator(_no_dmp_audience)] = Field(
        None,
        description="A data management platform's audience: not supported, must be null"
        " (a 422 otherwise, rather than an offer shown to everyone); `audience` says who"
        " may see the offer.",
    )
    campaign_id: ForeignId | None = Field(None, description="The marketing campaign's id.")
    external_url: Url | None = None
    external_source: ShortText | None = Field(
        None, description="Where the record is synced from, when it is."
    )
    image_template: Annotated[dict[str, Any], AfterValidator(_storable_json)] | None = Field(
        None, description="How the offer's image is rendered (kept as given)."
    )
    cms_tag_ids: list[ForeignId] = Field(default_factory=list, max_length=100)
    maximum_uses_per_user: Limit | None = None
    maximum_grants_per_user: Limit | None = None
    periodic_usage: PeriodicUsage | None = None
    stock: Limit | None = Field(None, description="Uses of all members together, at most.")
    usable_in_seconds_after_granting: Limit | None = None
    usage_authorization_token: ShortText | None = None
    usage_authorization_token_required: bool = Field(False, strict=True)
    read_more: ReadMore | None = None
    activation_texts: ActivationTexts | None = None
    extras: Annotated[dict[str, Any], AfterValidator(_storable_json)] = Field(default_factory=dict)
    terms: CatalogTerms | None = None
    channels: list[Channel] = Field(
        default_factory=list, description="Channels the offer may go out on; empty: any."
    )
    context: ContextConditions | None = Field(
        None, description="Conditions over a decision's request context; null: any context."
    )
    priority: int = Field(
        0,
        ge=-1_000_000,
        le=1_000_000,
        strict=True,
        description="Decisions rank by priority first, then by expected value.",
    )
    options: list[OfferOption] = Field(
        default_factory=list,
        max_length=10,
        description="How a decision's answer offers to take it up; empty: one option from"
        " external_url (a redirect) or a checkout.",
    )

    # Field validators, not a model validator, so that an error names its field
    # (``body.visible_until``); each runs after the fields declared before it.
    @field_validator("visible_until", "usable_until")
    @classmethod
    def _after_since(cls, until: datetime | None, info: ValidationInfo) -> datetime | None:
        since_field = info.field_name.replace("_until", "_since") if info.field_name else ""
        since = info.data.get(since_field)
        if since is not None and until is not None and until <= since:
            raise ValueError(f"{info.field_name} must be after {since_field}")
        return until

    @field_validator("usage_authorization_token_required")
    @classmethod
    def _token_given(cls, required: bool, info: ValidationInfo) -> bool:
        if required and not info.data.get("usage_authorization_token"):
            raise ValueError("usage_authorization_token_required needs a usage_authorization_token")
        return required


class CatalogDefinition(CatalogOfferFields):
    """A catalog offer at one version, as ``proffer.catalog`` carries it."""

    id: CatalogId
    tenant_id: TenantId
    version: int = Field(ge=1)
    created_at: UtcDatetime
    updated_at: UtcDatetime
    archived_at: UtcDatetime | None = None
    command_id: str = Field(description="The command that made this version.")


class CollectionFields(StrictModel):
    """What a business writes of a collection."""

    scope: Literal["standard", "informational", "carbon_offset", "parking"] | None = None
    title: LocalizedText = Field(default_factory=dict)
    description: LocalizedText = Field(default_factory=dict)
    offers_order: list[CatalogId] = Field(default_factory=list, max_length=10_000)
    position: Annotated[int, Field(ge=0, le=MAX_LIMIT), WHOLE] | None = Field(None, strict=True)
    files: list[CatalogFile] = Field(default_factory=list, max_length=20)


class CollectionDefinition(CollectionFields):
    """A collection at one version, as ``proffer.catalog`` carries it."""

    id: CatalogId
    tenant_id: TenantId
    version: int = Field(ge=1)
    created_at: UtcDatetime
    updated_at: UtcDatetime
    archived_at: UtcDatetime | None = None
    command_id: str


PLACEMENT_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
SITE_PATTERN = (
    r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?$"
)
"""A host (``shop.example``, with a port if it matters), or every subdomain of one
(``*.shop.example``, which takes ``shop.example`` too)."""
SitePattern = Annotated[str, Field(max_length=260, pattern=SITE_PATTERN)]


class PlacementFields(StrictModel):
    """What may show at one placement of an integration: catalog offers (named, of named
    collections, or all) and the customer's own open offers."""

    collection_ids: list[CatalogId] = Field(default_factory=list, max_length=100)
    offer_ids: list[CatalogId] = Field(default_factory=list, max_length=1_000)
    all_catalog_offers: bool = Field(False, strict=True, description="Every catalog offer.")
    open_offers: bool = Field(
        False, strict=True, description="The customer's own offers, approved or sent."
    )


class IntegrationFields(StrictModel):
    """What a business writes of an integration: the sites it runs on and its placements."""

    name: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(no_nul)]
    allowed_sites: list[SitePattern] = Field(
        default_factory=list, max_length=100, description="Empty: any site not blocked."
    )
    blocked_sites: list[SitePattern] = Field(default_factory=list, max_length=100)
    placements: dict[Annotated[str, Field(pattern=PLACEMENT_PATTERN)], PlacementFields] = Field(
        default_factory=dict,
        max_length=50,
        description="By name (``order_confirmation``, ``order_status``): what may show there.",
        json_schema_extra={"propertyNames": {"pattern": PLACEMENT_PATTERN}},
    )

    @field_validator("allowed_sites", "blocked_sites", mode="before")
    @classmethod
    def _lower(cls, sites: Any) -> Any:
        return (
            [s.lower() if isinstance(s, str) else s for s in sites]
            if isinstance(sites, list)
            else sites
        )


class IntegrationDefinition(IntegrationFields):
    """An integration at one version, as ``proffer.catalog`` carries it."""

    id: CatalogId
    tenant_id: TenantId
    version: int = Field(ge=1)
    created_at: UtcDatetime
    updated_at: UtcDatetime
    archived_at: UtcDatetime | None = None
    command_id: str


DefinitionTarget = Literal["offer", "collection", "integration"]
DefinitionAction = Literal["create", "update", "archive"]


class DefinitionCommand(StrictModel):
    """Create, update or archive a catalog offer or a collection, decided by its owner.

    The gateway validates the whole new definition (``offer`` or ``collection``) against
    the version it read (``base_version``); the owner applies it only if that version
    is still in force, else refuses with ``version_conflict``.
    """

    command_id: Annotated[str, Field(min_length=1, max_length=200)]
    tenant_id: TenantId
    target: DefinitionTarget
    id: CatalogId
    action: DefinitionAction
    base_version: int = Field(0, ge=0, description="0: the command creates it.")
    offer: CatalogOfferFields | None = None
    collection: CollectionFields | None = None
    integration: IntegrationFields | None = None
    issued_at: UtcDatetime
    source: str = Field("api", max_length=200)

    @model_validator(mode="after")
    def _body_matches_target(self) -> DefinitionCommand:
        bodies: dict[str, StrictModel | None] = {
            "offer": self.offer,
            "collection": self.collection,
            "integration": self.integration,
        }
        body = bodies.pop(self.target)
        if any(b is not None for b in bodies.values()) or (
            body is None and self.action != "archive"
        ):
            raise ValueError(f"a {self.target} command carries the {self.target} only")
        return self

    @property
    def key(self) -> bytes:
        """The Kafka key of the command's item: its one owner."""
        return definition_key(self.tenant_id, self.target, self.id)


MemberAction = Literal["grant", "use", "like", "unlike", "seen", "clicked", "release"]
"""What a member (or, for ``release``, the offers agent) asks of a catalog offer's owner.
A ``release`` gives back the unit of stock held by the grant that issued the generated
offer ``for_offer_id``, which expired unredeemed (the offers domain decides that)."""


class MemberCommand(StrictModel):
    """A member's (or an operator's on their behalf) action on one catalog offer.

    ``issued_at`` is the time the owner decides at (windows, periods, post-grant
    periods), so that a command decided again after a crash is decided the same way.
    ``timezone`` is the member's (the request's, else the profile's, else the tenant's).
    """

    command_id: Annotated[str, Field(min_length=1, max_length=200)]
    tenant_id: TenantId
    offer_id: CatalogId
    external_customer_id: ExternalId
    action: MemberAction
    issued_at: UtcDatetime
    timezone: str = "UTC"
    authorization_token: ShortText | None = None
    in_audience: bool = Field(
        True,
        description="Whether the member's signals matched the offer's audience"
        " when the gateway sent the command (the owner does not hold profiles).",
    )
    encoded_token_id: str | None = Field(
        None, max_length=64, description="The id of the encoded token a point of sale used."
    )
    source: str = Field("api", max_length=200, description="Who asked: an API key, a rule.")
    for_offer_id: int | None = Field(
        None,
        ge=1,
        lt=2**53,
        description="The generated offer this grant issues (the owner answers it on"
        " proffer.offer-requests), or whose redemption this use is.",
    )


RefusalReason = Literal[
    "version_conflict",
    "unknown_offer",
    "not_published",
    "archived",
    "not_usable_type",
    "out_of_stock",
    "not_in_audience",
    "per_user_limit",
    "periodic_limit",
    "not_usable_yet",
    "usable_window_closed",
    "not_granted",
    "grant_expired",
    "bad_authorization_token",
    "token_used",
]
REFUSAL_REASONS: tuple[RefusalReason, ...] = get_args(RefusalReason)


class Reservation(StrictModel):
    """Units of stock held by grants that all end by ``holds_until`` (a bucket)."""

    holds_until: UtcDatetime
    count: int = Field(ge=1)


class OfferTotals(StrictModel):
    """A catalog offer's counts as answers show them: the numbers, not the owner's
    bookkeeping."""

    uses_count: int = 0
    grants_count: int = 0
    reserved_count: int = Field(
        0, description="Grants not used yet: each holds a unit of stock for its member."
    )
    likes_count: int = 0
    seen_count: int = 0
    clicked_count: int = 0
    refusals_count: int = 0
    released_count: int = Field(
        0,
        description="Grants whose time to be used ran out unused: the units of stock they"
        " held were released (by the owner, at its first command for the offer after).",
    )


class OfferCounts(OfferTotals):
    """A catalog offer's counts after an event (the owner's, so they never race), with
    the reservations that can end."""

    ending: list[Reservation] = Field(
        default_factory=list,
        description="The units of reserved_count whose grants can end, in buckets by when"
        " they are released if unused (holds_until), earliest first; the rest are held"
        " until used. Readers count a bucket as released from its holds_until on"
        " (reserved_as_of), before the owner's next command releases it.",
    )


def reserved_as_of(counts: OfferCounts, now: datetime) -> int:
    """``counts.reserved_count`` less the units of the buckets that ended by ``now``: what
    the owner will have released when it decides its next command, if issued at ``now``.
    A bucket is never counted released before its ``holds_until`` (its grants may still
    be used until then), so a view using this never shows stock the owner would refuse."""
    ended = sum(r.count for r in counts.ending if r.holds_until <= now)
    return max(counts.reserved_count - ended, 0)


class HeldGrant(StrictModel):
    """A grant of the member's not used yet: it holds a unit of stock for them."""

    granted_at: UtcDatetime
    usable_until: UtcDatetime | None = Field(
        None,
        description="The earlier of granted_at + usable_in_seconds_after_granting and the"
        " generated offer's expiry (the grant's valid_until); from then on a use of it is"
        " refused (grant_expired). None: held until used.",
    )
    holds_until: UtcDatetime | None = Field(
        None,
        description="When its unit of stock is released if still unused: usable_until"
        " rounded up to the end of the owner's release bucket (a few % of the grant's"
        " time later at most). None: held until used.",
    )
    for_offer_id: int | None = Field(
        None, description="The generated offer the grant issued, if it did."
    )


class MemberCounts(StrictModel):
    """One member's standing with one catalog offer after an event."""

    uses: int = 0
    grants: int = 0
    liked: bool = False
    last_granted_at: UtcDatetime | None = None
    last_used_at: UtcDatetime | None = None
    held: list[HeldGrant] | None = Field(
        None,
        description="The member's grants not used yet that still hold a unit of stock;"
        " None: a standing recorded before held grants were kept (then grants > uses"
        " holds one unit).",
    )


def held_grants(standing: MemberCounts, seconds: int | None) -> list[HeldGrant]:
    """The member's held grants; for a standing kept before they were (``held`` None),
    as the owner counted then: one unit per grant not used (grants - uses of them),
    each usable for ``seconds`` (the offer's usable_in_seconds_after_granting) after
    the last grant. Distinct objects: a use takes one out by identity."""
    if standing.held is not None:
        return standing.held
    granted = standing.last_granted_at or datetime(1970, 1, 1, tzinfo=UTC)
    until = None if seconds is None else granted + timedelta(seconds=seconds)
    unused = max(standing.grants - standing.uses, 0)
    return [HeldGrant(granted_at=granted, usable_until=until) for _ in range(unused)]


class Use(StrictModel):
    """What a successful use gives: its id, the code, and the terms."""

    use_id: str
    code: str | None = None
    terms: CatalogTerms | None = None
    expires_at: UtcDatetime | None = None


CatalogEventKind = Literal[
    "defined", "granted", "used", "refused", "liked", "unliked", "seen", "clicked", "released"
]


class CatalogEvent(StrictModel):
    """The owner's decision on one :class:`MemberCommand`, on ``proffer.catalog-events``.

    ``event_id`` is the command's id: a command decided again publishes the same event.
    ``seq`` numbers the offer's events, so the projection keeps the newest counts.
    """

    schema_version: Literal[1] = 1
    event_id: str
    kind: CatalogEventKind
    action: MemberAction | DefinitionAction
    tenant_id: TenantId
    target: DefinitionTarget = Field(
        "offer",
        description="What ``offer_id`` names: a collection's or an integration's only for"
        " their definitions.",
    )
    offer_id: int = Field(
        description="The catalog offer's (or the collection's, the integration's) id."
    )
    external_customer_id: str | None = Field(None, description="None for definitions.")
    version: int | None = Field(None, description="The definition's version, once defined.")
    at: UtcDatetime
    seq: int = Field(ge=1)
    reason: RefusalReason | None = None
    message: str | None = None
    resets_at: UtcDatetime | None = Field(
        None, description="When a periodic limit allows the next use."
    )
    use: Use | None = None
    encoded_token_id: str | None = Field(
        None,
        description="The encoded offer's token a use was of: an owner restored from"
        " PostgreSQL knows it used, so the token is not used twice.",
    )
    counts: OfferCounts
    member: MemberCounts | None = Field(None, description="None for definitions.")
    source: str = "api"


def catalog_key(tenant_id: str, offer_id: int) -> bytes:
    """Kafka key of every command and event of one catalog offer: its one owner."""
    return f"{tenant_id}\x00catalog\x00{offer_id}".encode()


def collection_key(tenant_id: str, collection_id: int) -> bytes:
    """Kafka key of a collection's commands and definitions."""
    return f"{tenant_id}\x00collection\x00{collection_id}".encode()


def integration_key(tenant_id: str, integration_id: int) -> bytes:
    """Kafka key of an integration's commands and definitions."""
    return f"{tenant_id}\x00integration\x00{integration_id}".encode()


def definition_key(tenant_id: str, target: DefinitionTarget, item_id: int) -> bytes:
    """Kafka key of a definition's commands and versions, by its target."""
    if target == "offer":
        return catalog_key(tenant_id, item_id)
    if target == "collection":
        return collection_key(tenant_id, item_id)
    return integration_key(tenant_id, item_id)


def localized(text: dict[str, str], languages: list[str], default: str) -> str | None:
    """``text`` in the first of ``languages`` it has (a region falls back to its
    language: ``pt-BR`` to ``pt``), else in ``default``, else in any language."""
    for language in [*languages, default]:
        if language in text:
            return text[language]
        base = language.split("-", 1)[0]
        if base in text:
            return text[base]
    return next(iter(text.values()), None)


def within(now: datetime, since: datetime | None, until: datetime | None) -> bool:
    """``since <= now < until``, an open end being no bound."""
    return (since is None or since <= now) and (until is None or now < until)


Definition = CatalogDefinition | CollectionDefinition | IntegrationDefinition
"""What ``proffer.catalog`` carries: a catalog offer, a collection or an integration."""


class CatalogRecord(RootModel[Definition]):
    """A record of ``proffer.catalog``: an offer's, a collection's or an integration's
    definition at a version (which one, the record's key says: :func:`definition_key`)."""


class CatalogCommandRecord(RootModel[DefinitionCommand | MemberCommand]):
    """A record of ``proffer.catalog-commands``: a definition change (it has ``target``)
    or a member's action (it has ``external_customer_id``)."""

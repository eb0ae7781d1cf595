"""Trigger rules as data: when a customer's profile asks for an offer, and which one.

Rules are pure data (JSON), checked on load; :func:`firing_rule` runs after every
profile update, so :func:`matches` short-circuits and allocates next to nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, TypedDict

from pydantic import AfterValidator, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from proffer_stream.core.errors import ProfferError
from proffer_stream.core.limits import no_nul
from proffer_stream.core.types import WHOLE, Money, StrictModel, Text, WholeNumber
from proffer_stream.offers.models import Channel, OfferType
from proffer_stream.signals.fold import HOUR_SECONDS
from proffer_stream.signals.models import CustomerProfile
from proffer_stream.signals.views import hours_within

MAX_HOURS = 10 * 366 * 24
"""The longest span a rule may name: ten years, so that every time sum stays in range."""
Count = Annotated[int, Field(ge=0, le=2**53, strict=True), WHOLE]
Hours = Annotated[float, Field(ge=0, le=MAX_HOURS, allow_inf_nan=False, strict=True)]
MAX_PRIORITY = 1_000_000
"""Rule priorities lie within +-this: room for any ordering, and no 10^400."""
Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(no_nul)]
MetadataValue = (
    Text
    | Annotated[int, Field(ge=-(2**53), le=2**53)]
    | Annotated[float, Field(allow_inf_nan=False)]
    | bool
)

DAY_SECONDS = 24 * HOUR_SECONDS
CatalogRef = Annotated[int, Field(ge=1, le=2**53 - 1, strict=True)]
"""The id of a catalog offer or collection."""


class RuleConditions(StrictModel):
    """What a profile must show for a rule to fire: every condition given must hold."""

    min_counts: dict[Name, Count] = Field(
        default_factory=dict, description="Events of each type, at least."
    )
    min_page_views: dict[Name, Count] = Field(
        default_factory=dict, description="Views of each page, at least."
    )
    min_purchase_count: Count | None = None
    max_purchase_count: Count | None = Field(None, description="0: never bought.")
    min_purchase_total: Money | None = Field(None, ge=0, le=10**12)
    min_cart_abandon_count: Count | None = None
    min_cart_abandon_total: Money | None = Field(None, ge=0, le=10**12)
    min_features_used: dict[Name, Count] = Field(
        default_factory=dict, description="Uses of each feature, at least."
    )
    min_distinct_features: Count | None = None
    min_events_last_24h: Count | None = None
    min_events_last_7d: Count | None = None
    min_hours_since_last_seen: Hours | None = Field(None, description="Needs an event seen.")
    min_days_since_last_purchase: Hours | None = Field(None, description="Needs a purchase.")
    max_days_since_last_purchase: Hours | None = Field(None, description="Needs a purchase.")
    metadata_equals: dict[Name, MetadataValue] = Field(
        default_factory=dict, description="Customer metadata values, equal (true is not 1)."
    )


class WriterHints(StrictModel):
    """What a rule asks of the writer; policy holds every draft to them."""

    offer_types: list[OfferType] = Field(
        default_factory=list, description="Offer types allowed; empty: any."
    )
    max_discount_percent: Annotated[int, Field(ge=0, le=100), WHOLE] | None = Field(
        None, strict=True
    )
    channel: Channel | None = Field(None, description="The preferred channel, when reachable.")
    catalog_offer_ids: list[CatalogRef] = Field(
        default_factory=list,
        max_length=100,
        description="Catalog offers to give, in order of preference: the writer writes copy"
        " for the first one the customer may have now, within its terms.",
    )
    catalog_collection_ids: list[CatalogRef] = Field(
        default_factory=list,
        max_length=100,
        description="Collections whose offers (in their offers_order) come after"
        " catalog_offer_ids.",
    )

    @property
    def names_catalog(self) -> bool:
        """Whether the rule's offers come from the catalog."""
        return bool(self.catalog_offer_ids or self.catalog_collection_ids)


class TriggerRule(StrictModel):
    """A rule: when its conditions hold (and its cooldown has passed), request an offer."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    version: WholeNumber = Field(1, ge=1, le=2**31 - 1, strict=True)
    name: Name
    enabled: bool = Field(True, strict=True)
    conditions: RuleConditions
    priority: WholeNumber = Field(
        0,
        ge=-MAX_PRIORITY,
        le=MAX_PRIORITY,
        strict=True,
        description="When several rules match, the highest wins.",
    )
    cooldown_hours: Hours = Field(
        168, description="Least time between two firings for one customer."
    )
    hints: WriterHints = Field(default_factory=WriterHints)


class RuleSet(StrictModel):
    """A tenant's (or the deployment's) trigger rules, ids unique."""

    version: WholeNumber = Field(1, ge=0, le=2**31 - 1, strict=True)
    rules: list[TriggerRule]

    _unique_ids = field_validator("rules")(lambda rules: unique_rule_ids(rules))


def unique_rule_ids(rules: list[TriggerRule]) -> list[TriggerRule]:
    """``rules`` when no two share an id (a validator: the error names both places)."""
    seen: dict[str, int] = {}
    for index, rule in enumerate(rules):
        if rule.id in seen:
            raise PydanticCustomError(
                "duplicate_rule_id",
                'duplicate rule id "{id}" (rules[{first}] and rules[{second}])',
                {"id": rule.id, "first": seen[rule.id], "second": index},
            )
        seen[rule.id] = index
    return rules


DEFAULT_RULES = RuleSet(
    rules=[
        TriggerRule(
            id="cart-abandoned",
            name="Abandoned a cart worth 50 or more",
            conditions=RuleConditions(min_cart_abandon_count=1, min_cart_abandon_total=Decimal(50)),
            priority=30,
            cooldown_hours=72,
            hints=WriterHints(offer_types=["free_shipping", "discount"], max_discount_percent=15),
        ),
        TriggerRule(
            id="power-user-free-plan",
            name="Uses features a lot on the free plan",
            conditions=RuleConditions(
                metadata_equals={"plan": "free"}, min_counts={"feature_use": 5}
            ),
            priority=20,
            cooldown_hours=336,
            hints=WriterHints(offer_types=["upgrade", "free_trial"]),
        ),
        TriggerRule(
            id="pricing-interest",
            name="Looked at pricing twice, never bought",
            conditions=RuleConditions(min_page_views={"/pricing": 2}, max_purchase_count=0),
            priority=10,
            cooldown_hours=168,
            hints=WriterHints(offer_types=["upgrade", "discount"], max_discount_percent=20),
        ),
        TriggerRule(
            id="lapsed-buyer",
            name="Bought before, not in the last 30 days",
            conditions=RuleConditions(min_purchase_count=1, min_days_since_last_purchase=30),
            priority=5,
            cooldown_hours=720,
            hints=WriterHints(offer_types=["discount", "loyalty_points"], max_discount_percent=25),
        ),
    ]
)
"""The reference's example rules, used when no rules file is given."""


# --- Loading: errors name the file, the rule and the field.


class RulesError(ProfferError):
    """A rules file that cannot be used; ``errors`` lists each problem."""

    def __init__(self, message: str, errors: list[RuleErrorDetail] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class RuleErrorDetail(TypedDict):
    """One problem of a rule set, as the HTTP API reports it."""

    rule: str | None
    index: int | None
    field: str
    message: str


def load_rules(text: str, source: str) -> RuleSet:
    """Parse and check a rule set in JSON; raise :class:`RulesError` naming what is wrong."""
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except ValueError as exc:
        raise RulesError(f"{source}: not valid JSON: {exc}") from None
    try:
        return RuleSet.model_validate(data)
    except ValidationError as exc:
        errors = describe_rule_errors(exc, data)
        message = "\n".join(f"{source}: {_where(error)}{error['message']}" for error in errors)
        raise RulesError(message, errors) from None


def rules_file_or_default(path: Path | None) -> RuleSet:
    """The rules the file at ``path`` holds, else :data:`DEFAULT_RULES`: every tenant's
    default. A bad file raises :class:`RulesError` naming the rule and the field."""
    if path is None:
        return DEFAULT_RULES
    return load_rules(path.read_text(), str(path))


def describe_rule_errors(exc: ValidationError, data: object) -> list[RuleErrorDetail]:
    """Each error of validating ``data`` as a :class:`RuleSet`: its rule, index and field."""
    details: list[RuleErrorDetail] = []
    for error in exc.errors():
        loc = error["loc"]
        index = loc[1] if len(loc) > 1 and loc[0] == "rules" and isinstance(loc[1], int) else None
        field = _path(loc[2:] if index is not None else loc)
        details.append(
            RuleErrorDetail(
                rule=_rule_id(data, index), index=index, field=field, message=error["msg"]
            )
        )
    return details


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _where(error: RuleErrorDetail) -> str:
    parts = []
    if error["index"] is not None:
        at = f"rules[{error['index']}]"
        parts.append(f'rule "{error["rule"]}" ({at})' if error["rule"] is not None else at)
    if error["field"]:
        parts.append(error["field"])
    return "".join(f"{part}: " for part in parts)


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.isidentifier():
            path += f".{part}" if path else part
        else:
            path += json.dumps([part])
    return path


def _rule_id(data: object, index: int | None) -> str | None:
    if index is None or not isinstance(data, dict):
        return None
    rules = data.get("rules")
    if not isinstance(rules, list) or index >= len(rules) or not isinstance(rules[index], dict):
        return None
    rule_id = rules[index].get("id")
    return rule_id if isinstance(rule_id, str) else None


# --- Matching: on the hot path, after every profile update.


def matches(rule: TriggerRule, signals: CustomerProfile, now: datetime) -> bool:
    """Whether every condition of ``rule`` holds for ``signals`` at ``now`` (enabled or not)."""
    return conditions_hold(rule.conditions, signals, now)


def conditions_hold(conditions: RuleConditions, signals: CustomerProfile, now: datetime) -> bool:
    """Whether every condition given holds for ``signals`` at ``now``: a rule's, or a
    catalog offer's audience."""
    return (
        _counts_hold(conditions, signals)
        and _money_holds(conditions, signals)
        and _activity_holds(conditions, signals, now)
        and _purchase_recency_holds(conditions, signals, now)
        and _metadata_holds(conditions.metadata_equals, signals.metadata)
    )


def firing_rule(
    rules: RuleSet,
    signals: CustomerProfile,
    now: datetime,
    *,
    fired_at: Mapping[str, datetime],
    last_offer_at: datetime | None,
    offer_cooldown: timedelta,
) -> TriggerRule | None:
    """The rule that fires now: enabled, matching, out of its cooldown, highest priority.

    None while an offer was requested within ``offer_cooldown``; ties go to the rule
    listed first.
    """
    if last_offer_at is not None and now - last_offer_at < offer_cooldown:
        return None
    best: TriggerRule | None = None
    for rule in rules.rules:
        if not rule.enabled or (best is not None and rule.priority <= best.priority):
            continue
        if _cooled_down(rule, fired_at.get(rule.id), now) and matches(rule, signals, now):
            best = rule
    return best


def _cooled_down(rule: TriggerRule, fired: datetime | None, now: datetime) -> bool:
    return fired is None or (now - fired).total_seconds() >= rule.cooldown_hours * HOUR_SECONDS


def _at_least(required: dict[str, int], have: dict[str, int]) -> bool:
    for name, least in required.items():
        if have.get(name, 0) < least:
            return False
    return True


def _within(least: int | None, most: int | None, value: int) -> bool:
    return (least is None or value >= least) and (most is None or value <= most)


def _counts_hold(c: RuleConditions, s: CustomerProfile) -> bool:
    return (
        _at_least(c.min_counts, s.counts_by_type)
        and _at_least(c.min_page_views, s.page_views)
        and _at_least(c.min_features_used, s.features_used)
        and _within(c.min_purchase_count, c.max_purchase_count, s.purchase_count)
        and _within(c.min_cart_abandon_count, None, s.cart_abandon_count)
        and (c.min_distinct_features is None or _distinct_features(s) >= c.min_distinct_features)
    )


def _distinct_features(s: CustomerProfile) -> int:
    return sum(1 for uses in s.features_used.values() if uses > 0)


def _money_holds(c: RuleConditions, s: CustomerProfile) -> bool:
    return (c.min_purchase_total is None or s.purchase_total >= c.min_purchase_total) and (
        c.min_cart_abandon_total is None or s.cart_abandon_total >= c.min_cart_abandon_total
    )


def _activity_holds(c: RuleConditions, s: CustomerProfile, now: datetime) -> bool:
    return (
        (c.min_events_last_24h is None or _events_within(s, now, 24) >= c.min_events_last_24h)
        and (c.min_events_last_7d is None or _events_within(s, now, 168) >= c.min_events_last_7d)
        and (
            c.min_hours_since_last_seen is None
            or (
                s.last_seen_at is not None
                and _seconds_since(s.last_seen_at, now)
                >= c.min_hours_since_last_seen * HOUR_SECONDS
            )
        )
    )


def _events_within(s: CustomerProfile, now: datetime, hours: int) -> int:
    """Events in the last ``hours`` hours, counted as the signals views count them."""
    return sum(sum(counts.values()) for counts in hours_within(s, now, hours))


def _purchase_recency_holds(c: RuleConditions, s: CustomerProfile, now: datetime) -> bool:
    least, most = c.min_days_since_last_purchase, c.max_days_since_last_purchase
    if least is None and most is None:
        return True
    if s.last_purchase_at is None:
        return False
    days = _seconds_since(s.last_purchase_at, now) / DAY_SECONDS
    return (least is None or days >= least) and (most is None or days <= most)


def _seconds_since(at: datetime, now: datetime) -> float:
    return (now - at).total_seconds()


def _metadata_holds(required: dict[str, MetadataValue], metadata: dict[str, Any]) -> bool:
    for key, wanted in required.items():
        if key not in metadata or not _same(metadata[key], wanted):
            return False
    return True


def _same(value: object, wanted: MetadataValue) -> bool:
    """Equal, and a boolean only equals a boolean (``True == 1`` in Python)."""
    if isinstance(value, bool) or isinstance(wanted, bool):
        return type(value) is type(wanted) and value == wanted
    return value == wanted

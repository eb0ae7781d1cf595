"""What a writer is (:class:`Writer`), and the built-in one: a deterministic draft from
the signals, with no model. Pure.

Same input, same draft. It names what matters in the signals (the cart total, the page
viewed most, the feature used most, the purchases and how long ago the last one was)
and the customer's first name, and keeps within the rule's hints and the policy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from proffer_stream.offers.models import (
    CatalogBrief,
    Channel,
    OfferDraft,
    OfferTerms,
    OfferType,
    WriterTrace,
)
from proffer_stream.offers.policy import (
    MAX_CONDITIONS_CHARS,
    MAX_REASONING_CHARS,
    Policy,
    clean_text,
    code_prefix,
    reachable_channels,
)
from proffer_stream.offers.rules import TriggerRule
from proffer_stream.offers.wording import days_since, money, most_counted
from proffer_stream.signals.models import CustomerProfile

VALID_DAYS = 7
LAPSED_DAYS = 30
MAX_NAME_CHARS = 40


@dataclass(frozen=True)
class _Facts:
    """What the copy can mention, read once from the signals."""

    first_name: str | None
    top_page: tuple[str, int] | None
    top_feature: tuple[str, int] | None
    pricing_views: int
    cart_count: int
    cart_total: Decimal
    purchase_count: int
    purchase_total: Decimal
    days_since_purchase: int | None
    last_product: str | None
    free_plan: bool

    @property
    def lapsed(self) -> bool:
        return self.days_since_purchase is not None and self.days_since_purchase >= LAPSED_DAYS


class Writer(Protocol):
    """Turns a profile, the rule that fired and the policy into a draft, with its trace;
    with a ``brief``, copy for that catalog offer within its terms."""

    async def write(
        self,
        signals: CustomerProfile,
        rule: TriggerRule | None,
        policy: Policy,
        now: datetime,
        brief: CatalogBrief | None = None,
    ) -> tuple[OfferDraft, WriterTrace]: ...


class BuiltinWriter:
    """The deterministic writer: same input, same draft; no model needed."""

    async def write(
        self,
        signals: CustomerProfile,
        rule: TriggerRule | None,
        policy: Policy,
        now: datetime,
        brief: CatalogBrief | None = None,
    ) -> tuple[OfferDraft, WriterTrace]:
        started = time.perf_counter()
        draft = write_builtin(signals, rule, policy, now, brief)
        latency = (time.perf_counter() - started) * 1000
        return draft, WriterTrace(kind="built-in", latency_ms=round(latency, 3))


def write_builtin(
    signals: CustomerProfile,
    rule: TriggerRule | None,
    policy: Policy,
    now: datetime,
    brief: CatalogBrief | None = None,
) -> OfferDraft:
    """A draft for this customer from their signals, the rule that fired and the policy;
    with a ``brief``, for that catalog offer."""
    if brief is not None:
        return _catalog_draft(signals, rule, policy, now, brief)
    facts = _facts(signals, now)
    limit = _discount_limit(rule, policy)
    offer_type = _offer_type(facts, rule, policy, limit)
    percent = _percent(offer_type, facts, limit)
    days = min(max(VALID_DAYS, policy.min_valid_days), policy.max_valid_days)
    channel = _channel(signals, rule, policy)
    seen = _seen(facts)
    pitch = _pitch(offer_type, facts, percent, days)
    return OfferDraft(
        headline=clean_text(_headline(offer_type, facts, percent, days), policy.max_headline_chars),
        body_copy=clean_text(" ".join([*seen, pitch, _validity(days)]), policy.max_body_chars),
        offer_type=offer_type,
        offer_terms=OfferTerms(
            discount_percent=percent,
            code=code_prefix(facts.first_name or "") or code_prefix(offer_type),
            valid_days=days,
            conditions="One use per customer.",
        ),
        channel=channel,
        reasoning=clean_text(
            _reasoning(rule, seen, offer_type, percent, limit, channel), MAX_REASONING_CHARS
        ),
    )


def _catalog_draft(
    signals: CustomerProfile,
    rule: TriggerRule | None,
    policy: Policy,
    now: datetime,
    brief: CatalogBrief,
) -> OfferDraft:
    """Copy for the catalog offer: its name and description, personalised with the
    customer's first name and the signals that matter; its terms as they are."""
    facts = _facts(signals, now)
    limit = min(_discount_limit(rule, policy), brief.discount_percent or 0)
    offer_type = _catalog_offer_type(facts, rule, policy, limit)
    percent = limit if offer_type in ("discount", "upgrade") and limit else None
    longest = policy.max_valid_days if brief.valid_days is None else brief.valid_days
    days = min(max(VALID_DAYS, policy.min_valid_days), policy.max_valid_days, longest)
    name = brief.name or _headline(offer_type, facts, percent, days)
    headline = f"{facts.first_name}, {name}" if facts.first_name else name
    seen = _seen(facts)
    told = [brief.description] if brief.description else [_pitch(offer_type, facts, percent, days)]
    conditions = [brief.conditions or "One use per customer."]
    if brief.discount_amount is not None:
        conditions.insert(0, f"{money(brief.discount_amount)} off.")
    channel = _channel(signals, rule, policy, brief.channels)
    why = _reasoning(rule, seen, offer_type, percent, limit, channel)
    return OfferDraft(
        headline=clean_text(headline, policy.max_headline_chars),
        body_copy=clean_text(" ".join([*seen, *told, _validity(days)]), policy.max_body_chars),
        offer_type=offer_type,
        offer_terms=OfferTerms(
            discount_percent=percent,
            code=brief.code_pattern,
            valid_days=days,
            conditions=clean_text(" ".join(conditions), MAX_CONDITIONS_CHARS),
        ),
        channel=channel,
        reasoning=clean_text(
            f"Catalog offer {brief.catalog_offer_id} ({brief.name or 'unnamed'}). {why}",
            MAX_REASONING_CHARS,
        ),
    )


def _catalog_offer_type(
    facts: _Facts, rule: TriggerRule | None, policy: Policy, percent: int
) -> OfferType:
    """A discount when the catalog offer gives a percent, else the first type the rule
    asks for (or the signals suggest) that carries none."""
    hinted = list(rule.hints.offer_types) if rule is not None else []
    ordered: list[OfferType] = ["discount"] if percent else []
    for offer_type in [*ordered, *hinted, *_from_signals(facts)]:
        if offer_type in policy.offer_types and (offer_type != "discount" or percent):
            return offer_type
    return policy.offer_types[0]


def _facts(signals: CustomerProfile, now: datetime) -> _Facts:
    plan = signals.metadata.get("plan", signals.signup_plan)
    return _Facts(
        first_name=_first_name(signals.name),
        top_page=_top(signals.page_views),
        top_feature=_top(signals.features_used),
        pricing_views=signals.page_views.get("/pricing", 0),
        cart_count=signals.cart_abandon_count,
        cart_total=signals.cart_abandon_total,
        purchase_count=signals.purchase_count,
        purchase_total=signals.purchase_total,
        days_since_purchase=days_since(signals.last_purchase_at, now),
        last_product=_plain_name(signals.metadata.get("last_product")),
        free_plan=plan == "free",
    )


def _first_name(name: str | None) -> str | None:
    words = name.split() if name else []
    return _plain_name(words[0]) if words else None


def _plain_name(value: object) -> str | None:
    """A name fit for copy: plain text, not too long; None when there is none."""
    return (clean_text(value, MAX_NAME_CHARS) or None) if isinstance(value, str) else None


def _top(counts: dict[str, int]) -> tuple[str, int] | None:
    """The most counted name (ties: the first in alphabetical order), if any count."""
    top = most_counted(counts, 1)
    return top[0] if top else None


def _discount_limit(rule: TriggerRule | None, policy: Policy) -> int:
    most = policy.max_discount_percent
    if rule is not None and rule.hints.max_discount_percent is not None:
        most = min(most, rule.hints.max_discount_percent)
    return most


def _offer_type(facts: _Facts, rule: TriggerRule | None, policy: Policy, limit: int) -> OfferType:
    """The first offer type the rule's hints ask for and policy allows, else from signals."""
    hinted = list(rule.hints.offer_types) if rule is not None else []
    for offer_type in [*hinted, *_from_signals(facts)]:
        if offer_type in policy.offer_types and (offer_type != "discount" or limit > 0):
            return offer_type
    return policy.offer_types[0]


def _from_signals(facts: _Facts) -> list[OfferType]:
    """Offer types the signals suggest, the strongest signal first."""
    types: list[OfferType] = []
    if facts.cart_count:
        types += ["free_shipping", "discount"]
    if facts.free_plan and facts.top_feature:
        types.append("upgrade")
    if facts.lapsed or facts.pricing_views:
        types.append("discount")
    types.append("content")
    return types


def _percent(offer_type: OfferType, facts: _Facts, limit: int) -> int | None:
    """10, 15 or 20 percent by the strength of the signals, within ``limit``."""
    if offer_type not in ("discount", "upgrade"):
        return None
    days = facts.days_since_purchase or 0
    strong = facts.cart_total >= 100 or facts.pricing_views >= 5 or days >= 90
    medium = facts.cart_total >= 50 or facts.pricing_views >= 3 or days >= 60
    percent = min(20 if strong else 15 if medium else 10, limit)
    return percent or None


def _channel(
    signals: CustomerProfile,
    rule: TriggerRule | None,
    policy: Policy,
    only: list[Channel] | None = None,
) -> Channel:
    """The rule's channel if it reaches the customer, else email when known, else in-app
    (among ``only``, when given and not empty)."""
    reachable = [
        c for c in reachable_channels(signals) if c in policy.channels and (not only or c in only)
    ]
    preferred: list[Channel] = [rule.hints.channel] if rule and rule.hints.channel else []
    for channel in [*preferred, "email", "in_app", *reachable]:
        if channel in reachable:
            return channel
    return "in_app"


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def _seen(facts: _Facts) -> list[str]:
    """Sentences naming the signals that matter, the strongest first."""
    seen = []
    if facts.cart_count:
        carts = "a cart" if facts.cart_count == 1 else f"{facts.cart_count} carts"
        seen.append(f"You left {carts} worth {money(facts.cart_total)}.")
    if facts.top_page:
        seen.append(f"You viewed {facts.top_page[0]} {_times(facts.top_page[1])}.")
    if facts.top_feature:
        seen.append(f"You used {facts.top_feature[0]} {_times(facts.top_feature[1])}.")
    if facts.purchase_count:
        orders = "1 order" if facts.purchase_count == 1 else f"{facts.purchase_count} orders"
        seen.append(f"You have placed {orders} worth {money(facts.purchase_total)} in all.")
    if facts.days_since_purchase is not None and facts.days_since_purchase >= 1:
        product = f" ({facts.last_product})" if facts.last_product else ""
        seen.append(f"Your last order{product} was {_days(facts.days_since_purchase)} ago.")
    return seen


def _headline(offer_type: OfferType, facts: _Facts, percent: int | None, days: int) -> str:
    feature = facts.top_feature[0] if facts.top_feature else None
    off = f" and save {percent}%" if percent else ""
    headlines: dict[OfferType, str] = {
        "discount": f"{percent}% off your next order",
        "free_trial": f"Try the full plan free for {_days(days)}",
        "upgrade": f"Get more from {feature}: upgrade{off}" if feature else f"Upgrade{off}",
        "bundle": "A bundle picked for you",
        "free_shipping": (
            f"Free shipping on your {money(facts.cart_total)} cart"
            if facts.cart_count
            else "Free shipping on your next order"
        ),
        "loyalty_points": "Double points on your next order",
        "content": "Something picked for you",
    }
    headline = headlines[offer_type]
    if facts.first_name:
        return f"{facts.first_name}, {headline[0].lower()}{headline[1:]}"
    return headline


def _pitch(offer_type: OfferType, facts: _Facts, percent: int | None, days: int) -> str:
    product = f" on {facts.last_product}" if facts.last_product else ""
    off = f" with {percent}% off" if percent else ""
    pitches: dict[OfferType, str] = {
        "discount": f"Here is {percent}% off your next order{product}.",
        "free_trial": f"Try every paid feature free for {_days(days)}.",
        "upgrade": f"Upgrade your plan{off} to do more.",
        "bundle": "Get the things you use together, for less.",
        "free_shipping": "Complete your order and shipping is on us.",
        "loyalty_points": "Your next order earns double loyalty points.",
        "content": "We picked a few things you might like.",
    }
    return pitches[offer_type]


def _validity(days: int) -> str:
    return "The offer is valid today." if days == 0 else f"The offer is valid for {_days(days)}."


def _reasoning(
    rule: TriggerRule | None,
    seen: list[str],
    offer_type: OfferType,
    percent: int | None,
    limit: int,
    channel: Channel,
) -> str:
    why = [f"Rule {rule.id} ({rule.name}) fired." if rule else "No rule fired."]
    why.append("Signals: " + " ".join(seen) if seen else "No strong signals yet.")
    hinted = rule is not None and offer_type in rule.hints.offer_types
    source = "the rule's hints and the policy" if hinted else "the signals and the policy"
    why.append(f"Offer type {offer_type}, chosen from {source}.")
    if percent:
        why.append(f"Discount {percent}%, by the strength of the signals (at most {limit}%).")
    why.append(f"Channel {channel}.")
    return " ".join(why)

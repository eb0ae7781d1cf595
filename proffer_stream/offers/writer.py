"""The built-in writer: a deterministic draft from the signals, with no model. Pure.

Same input, same draft. It names what matters in the signals (the page viewed most,
the feature used most, the cart total, the purchases) and the customer's first name.
"""

from __future__ import annotations

from datetime import datetime

from proffer_stream.offers.models import Channel, OfferDraft, OfferTerms, OfferType
from proffer_stream.offers.policy import Policy, reachable_channels
from proffer_stream.offers.rules import TriggerRule
from proffer_stream.signals.models import CustomerSignals

_HEADLINES: dict[OfferType, str] = {
    "discount": "{name}{percent}% off, just for you",
    "free_trial": "{name}try the full plan free for {days} days",
    "upgrade": "{name}unlock more with an upgrade: {percent}% off",
    "bundle": "{name}a bundle picked for you",
    "free_shipping": "{name}free shipping on your cart",
    "loyalty_points": "{name}bonus points on your next order",
    "content": "{name}something we think you will like",
}


def write_builtin(
    signals: CustomerSignals, rule: TriggerRule | None, policy: Policy, now: datetime
) -> OfferDraft:
    """A draft for this customer from their signals, the rule that fired and the policy."""
    facts = _facts(signals, now)
    offer_type = _offer_type(signals, rule, policy)
    percent = _discount(offer_type, rule, policy, strength=len(facts))
    days = min(max(7, policy.min_valid_days), policy.max_valid_days)
    first = signals.name.split()[0] if signals.name and signals.name.split() else None
    name = f"{first}, " if first else ""
    headline = _HEADLINES[offer_type].format(name=name, percent=percent or 0, days=days)
    headline = headline[0].upper() + headline[1:]
    seen = "; ".join(facts) if facts else "your recent visits"
    body = (
        f"We noticed {seen}. "
        + _pitch(offer_type, percent, days)
        + f" Use your code within {days} days."
    )
    why = f"Rule {rule.id} ({rule.name}) fired. " if rule else "Requested through the API. "
    return OfferDraft(
        headline=headline[: policy.max_headline_chars],
        body_copy=body[: policy.max_body_chars],
        offer_type=offer_type,
        offer_terms=OfferTerms(
            discount_percent=percent,
            code=(first or offer_type).upper(),
            valid_days=days,
            conditions="One use per customer.",
        ),
        channel=_channel(signals, rule),
        reasoning=why + f"Signals: {seen}. Offer type {offer_type} fits them best.",
    )


def _facts(signals: CustomerSignals, now: datetime) -> list[str]:
    facts = []
    if signals.page_views:
        page, views = max(sorted(signals.page_views.items()), key=lambda item: item[1])
        facts.append(f"you viewed {page} {_times(views)}")
    if signals.features_used:
        feature, uses = max(sorted(signals.features_used.items()), key=lambda item: item[1])
        facts.append(f"you used {feature} {_times(uses)}")
    if signals.cart_abandon_count:
        facts.append(f"you left a cart worth {signals.cart_abandon_total:.2f}")
    if signals.purchase_count:
        facts.append(
            f"you made {signals.purchase_count} purchase(s) totalling {signals.purchase_total:.2f}"
        )
        if signals.last_purchase_at is not None:
            days = (now - signals.last_purchase_at).days
            if days >= 1:
                facts.append(f"your last purchase was {days} days ago")
    return facts


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _offer_type(signals: CustomerSignals, rule: TriggerRule | None, policy: Policy) -> OfferType:
    wanted: list[OfferType] = list(rule.hints.offer_types) if rule else []
    if not wanted:
        wanted = _from_signals(signals)
    for offer_type in wanted:
        if offer_type in policy.offer_types:
            return offer_type
    return policy.offer_types[0]


def _from_signals(signals: CustomerSignals) -> list[OfferType]:
    if signals.cart_abandon_count:
        return ["free_shipping", "discount"]
    if signals.metadata.get("plan") == "free" and signals.features_used:
        return ["upgrade", "free_trial"]
    if signals.purchase_count or signals.page_views.get("/pricing"):
        return ["discount"]
    if signals.features_used:
        return ["upgrade", "discount"]
    return ["content", "discount"]


def _discount(
    offer_type: OfferType, rule: TriggerRule | None, policy: Policy, *, strength: int
) -> int | None:
    if offer_type not in ("discount", "upgrade"):
        return None
    most = policy.max_discount_percent
    if rule and rule.hints.max_discount_percent is not None:
        most = min(most, rule.hints.max_discount_percent)
    return max(1, min(most, 10 + 5 * min(strength, 2)))


def _pitch(offer_type: OfferType, percent: int | None, days: int) -> str:
    pitches: dict[OfferType, str] = {
        "discount": f"Here is {percent}% off your next order.",
        "free_trial": f"Try everything free for {days} days.",
        "upgrade": f"Upgrade now and get {percent}% off.",
        "bundle": "Get the things you use together, for less.",
        "free_shipping": "Complete your order and shipping is on us.",
        "loyalty_points": "Your next order earns double points.",
        "content": "We picked a few things you might like.",
    }
    return pitches[offer_type]


def _channel(signals: CustomerSignals, rule: TriggerRule | None) -> Channel:
    reachable = reachable_channels(signals)
    if rule and rule.hints.channel in reachable:
        return rule.hints.channel
    return "email" if "email" in reachable else "in_app"

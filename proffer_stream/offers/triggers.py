"""When a customer's updated profile asks for an offer. Pure; runs after every update."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from proffer_stream.core.identity import rule_request_id
from proffer_stream.offers.models import OfferRequest
from proffer_stream.offers.policy import Policy
from proffer_stream.offers.rules import RuleSet, firing_rule
from proffer_stream.signals.models import CustomerSignals


def triggered_request(
    state: CustomerSignals,
    rules: RuleSet,
    policy: Policy,
    now: datetime,
    fired_by: str = "",
) -> OfferRequest | None:
    """The request a rule makes for this profile, if one fires; ``state`` records it.

    The request id follows from the record that fired the rule (its offset) and the last
    event the update counted (``fired_by``), so a replay of that record makes the same
    request, which the offers agent decides once. The event id keeps it apart from an
    earlier firing at the same offset when a broker that lost its topics numbers records
    from 0 again (the offers restored from PostgreSQL remember the earlier one as decided).
    """
    rule = firing_rule(
        rules,
        state,
        now,
        fired_at=state.rules_fired_at,
        last_offer_at=state.last_offer_requested_at,
        offer_cooldown=timedelta(hours=policy.offer_cooldown_hours),
    )
    if rule is None:
        return None
    state.rules_fired_at[rule.id] = now
    state.last_offer_requested_at = now
    return OfferRequest(
        request_id=rule_request_id(
            state.tenant_id, state.external_id, rule.id, state.source_offset, fired_by
        ),
        tenant_id=state.tenant_id,
        external_customer_id=state.external_id,
        source="rule",
        rule_id=rule.id,
        rule_version=rule.version,
        requested_at=now,
        signals=state.profile(),
    )


def unmark_undecided(state: CustomerSignals, decided: Collection[str]) -> list[str]:
    """Forget the firings of the rules not in ``decided`` (those whose request reached no
    decision); return those rules.

    For a profile restored from PostgreSQL after the broker lost its topics: a rule
    marked as fired whose request was lost with the broker would hold the rule's cooldown,
    and the offer cooldown, with no offer and no decision to show for it. Unmarked, it
    fires again on the customer's next event that meets it. The time of the last offer
    asked for becomes that of the latest firing kept.
    """
    undecided = [rule for rule in state.rules_fired_at if rule not in decided]
    if not undecided:
        return []
    for rule in undecided:
        del state.rules_fired_at[rule]
    kept = list(state.rules_fired_at.values())
    state.last_offer_requested_at = max(kept) if kept else None
    return undecided

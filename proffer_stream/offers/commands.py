"""Applying a command to a customer's offers: from (their offers, a command) to events. Pure.

The offers agent owns each customer's offers, so every change is decided here, one at a
time, never by racing database updates. A command changes its offer (one event, the
offer one version on), or changes nothing: a transition the state machine refuses is a
rejected :class:`CommandOutcome`; a redemption that cannot be honoured is an
``offer.redemption_rejected`` event saying why. Times come from the command, so a replay
of it makes the very same events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from proffer_stream.core.identity import customer_id
from proffer_stream.offers.decide import CustomerOffers, remember
from proffer_stream.offers.lifecycle import TransitionRejected, engage, may_move_to, transition
from proffer_stream.offers.models import (
    CommandOutcome,
    Offer,
    OfferCommand,
    OfferEvent,
    OfferEventType,
    Redemption,
)
from proffer_stream.offers.policy import Policy


@dataclass
class Applied:
    """What a command did: its events, and for a command from the API its outcome."""

    events: list[OfferEvent] = field(default_factory=list)
    outcome: CommandOutcome | None = None


def apply_command(
    state: CustomerOffers, command: OfferCommand, offset: int, policy: Policy
) -> Applied:
    """Apply ``command`` to ``state`` (in place) and say what it did."""
    remember(state, command.command_id, offset)
    if command.action in ("catalog_granted", "catalog_refused"):
        return _settle_grant(state, command, policy)
    offer = find_offer(state, command)
    if command.action == "transition":
        return _transition(state, command, offer, policy)
    if command.action == "redeem":
        return _redeem(state, command, offer, policy)
    if offer is None:  # seen, clicked or expire of an offer this customer does not have
        return Applied()
    if command.action == "expire":
        return _expire(state, command, offer)
    assert command.action in ("seen", "clicked")
    engaged = engage(offer, command.action, command.issued_at)
    return Applied([_change(state, command, offer, engaged, f"offer.{command.action}")])


def find_offer(state: CustomerOffers, command: OfferCommand) -> Offer | None:
    """The customer's offer the command names: by its code when it gives one that an
    offer has (what the customer typed at the checkout), else by id.

    Offers can share a code (a catalog offer's ``code_pattern`` without ``#``): the
    newest that may still be redeemed then, else the newest.
    """
    code = (command.code or "").strip().casefold()
    if code:
        matches = [
            o for o in state.offers.values() if (o.offer_terms.code or "").casefold() == code
        ]
        if matches:
            open_ = [o for o in matches if _redeemable(o, command.issued_at)]
            return max(open_ or matches, key=lambda o: o.generated_at)
    if command.offer_id is not None:
        return state.offers.get(command.offer_id)
    return None


def _redeemable(offer: Offer, at: datetime) -> bool:
    return "redeemed" in may_move_to(offer, redeem_approved=True) and at < offer.expires_at


def auto_approval(
    state: CustomerOffers, generated: OfferEvent, policy: Policy
) -> OfferEvent | None:
    """With the tenant's ``auto_approve``, the approval of an offer just generated (none
    for an offer valid for no time at all: it is due to expire)."""
    offer = generated.offer
    if not policy.auto_approve or offer is None or generated.event_type != "offer.generated":
        return None
    try:
        approved = transition(offer, "approved", generated.occurred_at)
    except TransitionRejected:
        return None
    state.offers[offer.id] = approved
    return _event(
        state,
        f"{generated.request_id}:approved",
        "offer.approved",
        before=offer,
        after=approved,
        at=generated.occurred_at,
        cause="policy: auto_approve",
    )


def _settle_grant(state: CustomerOffers, command: OfferCommand, policy: Policy) -> Applied:
    """The catalog owner's answer to the grant of an offer held for it: granted, the
    decision is issued (and auto-approved with the policy's ``auto_approve``); refused,
    it is a suppression saying why. An answer to no held decision (answered already)
    changes nothing."""
    assert command.offer_id is not None
    held = state.awaiting_grant.pop(command.offer_id, None)
    if held is None or held.offer is None or held.trace is None:
        return Applied()
    if command.action == "catalog_granted":
        state.offers[held.offer.id] = held.offer
        approval = auto_approval(state, held, policy)
        return Applied([held] if approval is None else [held, approval])
    trace = held.trace.model_copy(
        update={"suppressed": [f"catalog grant refused: {command.reason}"]}
    )
    suppressed = held.model_copy(
        update={
            "event_type": "offer.suppressed",
            "offer_id": None,
            "status": None,
            "version": 0,
            "offer": None,
            "trace": trace,
        }
    )
    return Applied([suppressed])


def _transition(
    state: CustomerOffers, command: OfferCommand, offer: Offer | None, policy: Policy
) -> Applied:
    assert command.status is not None and command.offer_id is not None
    if offer is None:
        return Applied(outcome=_rejected(command, command.offer_id, "the offer is not known"))
    redemption = Redemption(cause=command.cause) if command.status == "redeemed" else None
    try:
        changed = transition(
            offer,
            command.status,
            command.issued_at,
            redemption=redemption,
            redeem_approved=policy.redeem_approved,
        )
    except TransitionRejected as refused:
        return Applied(outcome=_rejected(command, offer.id, refused.reason, offer, refused))
    event = _change(state, command, offer, changed, f"offer.{command.status}")
    outcome = CommandOutcome(
        command_id=command.command_id,
        tenant_id=command.tenant_id,
        offer_id=offer.id,
        outcome="applied",
        status=changed.status,
        version=changed.version,
        allowed=list(may_move_to(changed, redeem_approved=policy.redeem_approved)),
        occurred_at=command.issued_at,
    )
    return Applied([event], outcome)


def _redeem(
    state: CustomerOffers, command: OfferCommand, offer: Offer | None, policy: Policy
) -> Applied:
    if offer is None:
        which = f"id {command.offer_id}" if command.offer_id else f"code {command.code!r}"
        reason = f"no offer with {which} was issued to this customer"
        return Applied([_redemption_rejected(state, command, None, reason)])
    redemption = Redemption(cause=command.cause, amount=command.amount, code=command.code)
    try:
        changed = transition(
            offer,
            "redeemed",
            command.issued_at,
            redemption=redemption,
            redeem_approved=policy.redeem_approved,
        )
    except TransitionRejected as refused:
        return Applied([_redemption_rejected(state, command, offer, refused.reason)])
    return Applied([_change(state, command, offer, changed, "offer.redeemed")])


def _after_redemption(state: CustomerOffers, offer: Offer) -> None:
    """A redemption starts the customer's cooldown before the next automatic offer."""
    if offer.status == "redeemed" and offer.redeemed_at is not None:
        state.last_redeemed_at = max(state.last_redeemed_at or offer.redeemed_at, offer.redeemed_at)


def _expire(state: CustomerOffers, command: OfferCommand, offer: Offer) -> Applied:
    """The timer's expiry: only of an offer still open whose time has come."""
    if "expired" not in may_move_to(offer) or command.issued_at < offer.expires_at:
        return Applied()
    changed = transition(offer, "expired", command.issued_at)
    return Applied([_change(state, command, offer, changed, "offer.expired")])


def _change(
    state: CustomerOffers,
    command: OfferCommand,
    before: Offer,
    after: Offer,
    event_type: str,
) -> OfferEvent:
    state.offers[after.id] = after
    _after_redemption(state, after)
    return _event(
        state,
        command.command_id,
        _event_type(event_type),
        before=before,
        after=after,
        at=command.issued_at,
        cause=command.cause,
        command_id=command.command_id,
        reason=command.reason,
    )


def _redemption_rejected(
    state: CustomerOffers, command: OfferCommand, offer: Offer | None, reason: str
) -> OfferEvent:
    """The buyer's record of a refused redemption. An offer that is not the buyer's (its
    id is in the reason) is not named as the event's offer: the refusal belongs to the
    buyer's history, never to another customer's offer."""
    return _event(
        state,
        command.command_id,
        "offer.redemption_rejected",
        before=offer,
        after=offer,
        at=command.issued_at,
        cause=command.cause,
        command_id=command.command_id,
        reason=reason,
        offer_id=offer.id if offer else None,
    )


def _event(
    state: CustomerOffers,
    event_id: str,
    event_type: OfferEventType,
    *,
    before: Offer | None,
    after: Offer | None,
    at: datetime,
    cause: str,
    command_id: str | None = None,
    reason: str | None = None,
    offer_id: int | None = None,
) -> OfferEvent:
    return OfferEvent(
        event_id=event_id,
        event_type=event_type,
        tenant_id=state.tenant_id,
        customer_id=customer_id(state.tenant_id, state.external_customer_id),
        external_customer_id=state.external_customer_id,
        request_id=after.request_id if after else None,
        command_id=command_id,
        offer_id=after.id if after else offer_id,
        previous_status=before.status if before else None,
        status=after.status if after else None,
        version=after.version if after else 0,
        occurred_at=at,
        cause=cause,
        reason=reason,
        offer=after,
    )


def _rejected(
    command: OfferCommand,
    offer_id: int,
    reason: str,
    offer: Offer | None = None,
    refused: TransitionRejected | None = None,
) -> CommandOutcome:
    return CommandOutcome(
        command_id=command.command_id,
        tenant_id=command.tenant_id,
        offer_id=offer_id,
        outcome="rejected",
        status=offer.status if offer else None,
        version=offer.version if offer else 0,
        reason=reason,
        allowed=refused.allowed if refused else [],
        occurred_at=command.issued_at,
    )


_EVENT_TYPES: dict[str, OfferEventType] = {
    "offer.approved": "offer.approved",
    "offer.sent": "offer.sent",
    "offer.redeemed": "offer.redeemed",
    "offer.expired": "offer.expired",
    "offer.seen": "offer.seen",
    "offer.clicked": "offer.clicked",
}


def _event_type(name: str) -> OfferEventType:
    """The event type of a change; ``offer.generated`` is never one (no command makes it)."""
    return _EVENT_TYPES[name]

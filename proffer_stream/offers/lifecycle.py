"""An offer's lifecycle: its statuses, the moves between them, and engagement. Pure.

generated -> approved -> sent -> redeemed, and expired from any of the first three.
Every change returns a new :class:`Offer` one version on; a move the state machine does
not allow raises :class:`TransitionRejected` saying what the offer may move to instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from proffer_stream.core.errors import ProfferError
from proffer_stream.offers.models import Offer, OfferStatus, Redemption

NEXT_STATUSES: dict[OfferStatus, tuple[OfferStatus, ...]] = {
    "generated": ("approved", "expired"),
    "approved": ("sent", "expired"),
    "sent": ("redeemed", "expired"),
    "redeemed": (),
    "expired": (),
}
"""Where each status may go next: the reference's transition table."""

Engagement = Literal["seen", "clicked"]


class TransitionRejected(ProfferError):
    """A move the offer cannot make; ``allowed`` is where it may go from its status."""

    def __init__(
        self, offer: Offer, to: OfferStatus, allowed: tuple[OfferStatus, ...], reason: str
    ) -> None:
        super().__init__(reason)
        self.status = offer.status
        self.to = to
        self.allowed = list(allowed)
        self.reason = reason


def may_move_to(offer: Offer, *, redeem_approved: bool = False) -> tuple[OfferStatus, ...]:
    """The statuses ``offer`` may move to now; ``redeem_approved``: a tenant's policy
    that lets an approved offer be redeemed before it is sent."""
    allowed = NEXT_STATUSES[offer.status]
    if redeem_approved and offer.status == "approved":
        allowed = ("sent", "redeemed", "expired")
    return allowed


def transition(
    offer: Offer,
    to: OfferStatus,
    at: datetime,
    *,
    redemption: Redemption | None = None,
    redeem_approved: bool = False,
) -> Offer:
    """``offer`` moved to ``to`` at ``at``, or :class:`TransitionRejected`.

    An offer past its ``expires_at`` can only expire.
    """
    allowed = may_move_to(offer, redeem_approved=redeem_approved)
    if to not in allowed:
        raise TransitionRejected(offer, to, allowed, _why_not(offer, to, allowed))
    if to != "expired" and at >= offer.expires_at:
        expired = f"offer {offer.id} expired at {offer.expires_at.isoformat()}"
        raise TransitionRejected(offer, to, ("expired",), expired)
    changes: dict[str, object] = {"status": to, "version": offer.version + 1, f"{to}_at": at}
    if to == "redeemed":
        changes["redemption"] = redemption
    return offer.model_copy(update=changes)


def engage(offer: Offer, engagement: Engagement, at: datetime) -> Offer:
    """``offer`` seen or clicked at ``at``: the first time is kept, the version moves on."""
    first = getattr(offer, f"{engagement}_at")
    changes: dict[str, object] = {"version": offer.version + 1}
    if first is None or at < first:
        changes[f"{engagement}_at"] = at
    return offer.model_copy(update=changes)


def _why_not(offer: Offer, to: OfferStatus, allowed: tuple[OfferStatus, ...]) -> str:
    if to == offer.status:
        return f"offer {offer.id} is already {to}"
    if not allowed:
        return f"offer {offer.id} is {offer.status}: it cannot change any more"
    if to == "redeemed" and offer.status in ("generated", "approved"):
        return f"offer {offer.id} is {offer.status}: only a sent offer can be redeemed"
    return (
        f"offer {offer.id} cannot move from {offer.status} to {to};"
        f" it may move to {' or '.join(allowed)}"
    )

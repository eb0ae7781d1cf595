"""The offer lifecycle: which status may follow which. Pure.

generated -> approved -> sent -> redeemed, and expired from any status that is not yet
redeemed or expired. Redeemed and expired are final.
"""

from __future__ import annotations

from proffer_stream.offers.models import OfferStatus

NEXT: dict[OfferStatus, tuple[OfferStatus, ...]] = {
    "generated": ("approved", "expired"),
    "approved": ("sent", "expired"),
    "sent": ("redeemed", "expired"),
    "redeemed": (),
    "expired": (),
}
"""Each status and the statuses an offer may move to from it."""


def allowed(current: OfferStatus, new: OfferStatus) -> bool:
    """Whether an offer in ``current`` may move to ``new``."""
    return new in NEXT[current]


def is_final(status: OfferStatus) -> bool:
    """Redeemed or expired: nothing follows."""
    return not NEXT[status]

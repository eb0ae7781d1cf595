"""Expiry timers: each open offer this worker holds, due when its ``expires_at`` passes.

The timers are kept in memory, in time order, and rebuilt from the ``offers`` table
whenever the worker's partitions change (a start, a rebalance), so a restart neither
loses nor doubles an expiry. A due timer does not change the offer itself: it sends an
``expire`` command, keyed like the customer, to the offers agent that owns the offer,
whose id is the offer's, so the agent applies it once however often it is sent.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from datetime import datetime

from proffer_stream.core.types import CustomerKey
from proffer_stream.offers.decide import CustomerOffers
from proffer_stream.offers.lifecycle import may_move_to
from proffer_stream.offers.models import OfferCommand

_Timer = tuple[datetime, int, CustomerKey]
"""When, which offer, whose: a plain tuple, which the heap compares fastest."""


class ExpiryTimers:
    """The expiries of the open offers this worker holds, soonest first."""

    def __init__(self) -> None:
        self._heap: list[_Timer] = []
        self._set: set[tuple[int, datetime]] = set()

    def __len__(self) -> int:
        return len(self._heap)

    def schedule(self, states: Iterable[CustomerOffers]) -> None:
        """Set a timer for every open offer of these customers not timed yet."""
        for state in states:
            customer = (state.tenant_id, state.external_customer_id)
            for offer in state.offers.values():
                timed = (offer.id, offer.expires_at)
                if timed not in self._set and "expired" in may_move_to(offer):
                    self._set.add(timed)
                    heapq.heappush(self._heap, (offer.expires_at, offer.id, customer))

    def reload(self, states: Iterable[CustomerOffers]) -> None:
        """Forget every timer and set those of ``states`` (the table after a rebalance)."""
        self._heap.clear()
        self._set.clear()
        self.schedule(states)

    def due(self, now: datetime) -> list[OfferCommand]:
        """The expire commands of the timers due by ``now``, which are then forgotten."""
        commands = []
        while self._heap and self._heap[0][0] <= now:
            due, offer_id, customer = heapq.heappop(self._heap)
            self._set.discard((offer_id, due))
            commands.append(expire_command(customer, offer_id, now))
        return commands


def expire_command(customer: CustomerKey, offer_id: int, now: datetime) -> OfferCommand:
    """The command that expires an offer; its id is the offer's, so it applies once."""
    tenant_id, external_id = customer
    return OfferCommand(
        command_id=f"expire:{offer_id}",
        tenant_id=tenant_id,
        external_customer_id=external_id,
        action="expire",
        offer_id=offer_id,
        cause="timer: expires_at passed",
        issued_at=now,
    )

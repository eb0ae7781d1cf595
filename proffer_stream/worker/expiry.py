"""Expiry timers: each open offer this worker holds, due when its ``expires_at`` passes.

The timers are kept in memory, in time order, and rebuilt from the ``offers`` table
whenever the worker's partitions change (a start, a rebalance), so a restart neither
loses nor doubles an expiry; the open offers of customers the table does not have
(the broker lost its log) are timed from PostgreSQL's (:class:`LostTimers`). A
due timer does not change the offer itself: it sends an ``expire`` command, keyed like
the customer, to the offers agent that owns the offer, whose id is the offer's, so the
agent applies it once however often it is sent. A sent command is not awaited (the
agent's send is queued): the timer stays, due again :data:`RESEND_AFTER` later (doubling
to :data:`RESEND_AT_MOST`), until the table says the offer is no longer open, so a send
lost in a broker outage is sent again.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta

from proffer_stream.core.types import CustomerKey
from proffer_stream.offers.decide import CustomerOffers
from proffer_stream.offers.lifecycle import may_move_to
from proffer_stream.offers.models import OfferCommand
from proffer_stream.worker.offers_agent import OffersStore

log = logging.getLogger(__name__)

_Timer = tuple[datetime, int, CustomerKey, int]
"""When, which offer, whose, how many times sent: a plain tuple, which the heap compares
fastest."""
RESEND_AFTER = timedelta(seconds=30)
"""When a due timer whose offer is still open is due again, after its first send."""
RESEND_AT_MOST = timedelta(hours=1)
"""The longest wait between two sends of one offer's expire command."""


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
                if "expired" in may_move_to(offer):
                    self.add(customer, offer.id, offer.expires_at)

    def add(self, customer: CustomerKey, offer_id: int, expires_at: datetime) -> None:
        """Set a timer for one open offer, unless it has one for that time."""
        timed = (offer_id, expires_at)
        if timed not in self._set:
            self._set.add(timed)
            heapq.heappush(self._heap, (expires_at, offer_id, customer, 0))

    def reload(self, states: Iterable[CustomerOffers]) -> None:
        """Forget every timer and set those of ``states`` (the table after a rebalance)."""
        self._heap.clear()
        self._set.clear()
        self.schedule(states)

    def due(
        self, now: datetime, still_open: Callable[[CustomerKey, int], bool]
    ) -> list[OfferCommand]:
        """The expire commands of the timers due by ``now`` whose offers are
        ``still_open``; each is due again later (until its offer is not), the others
        are forgotten."""
        commands = []
        while self._heap and self._heap[0][0] <= now:
            due, offer_id, customer, sent = heapq.heappop(self._heap)
            self._set.discard((offer_id, due))
            if not still_open(customer, offer_id):
                continue
            commands.append(expire_command(customer, offer_id, now))
            again = now + min(RESEND_AFTER * 2 ** min(sent, 10), RESEND_AT_MOST)
            self._set.add((offer_id, again))
            heapq.heappush(self._heap, (again, offer_id, customer, sent + 1))
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


class LostTimers:
    """Finds which of this worker's partitions are restoring
    (:meth:`OffersStore.find_restoring`), then times the open offers PostgreSQL has of
    their customers that the ``offers`` table does not have.

    After the broker lost the table's changelog (the local broker keeps nothing across
    restarts), the table starts empty, and the timers rebuilt from it would leave every
    offer made before to never expire. The customers themselves are restored from
    PostgreSQL when a message (such as a due timer's expire command) reaches them. In
    a task, so that a rebalance does not wait for PostgreSQL (an outage is waited out);
    cancelled when partitions are revoked.
    """

    def __init__(
        self,
        offers: OffersStore,
        timers: ExpiryTimers,
        changelog_ends: Callable[[list[int]], Awaitable[dict[int, int]]],
    ) -> None:
        self.offers = offers
        self.timers = timers
        self.changelog_ends = changelog_ends
        self._task: asyncio.Task[None] | None = None

    def start(self, partitions: set[int]) -> None:
        self.cancel()
        self._task = asyncio.create_task(self._time(partitions))
        self._task.add_done_callback(_report_failure)

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _time(self, partitions: set[int]) -> None:
        await self.offers.find_restoring(partitions, self.changelog_ends)
        lost = await self.offers.open_offers(partitions)
        for offer in lost:
            customer = (offer.tenant_id, offer.external_customer_id)
            self.timers.add(customer, offer.offer_id, offer.expires_at)
        if lost:
            log.warning(
                "expiry timers: %d open offers of customers the offers table lacked,"
                " restored from PostgreSQL",
                len(lost),
            )


def _report_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("expiry timers: restoring open offers from PostgreSQL failed", exc_info=error)

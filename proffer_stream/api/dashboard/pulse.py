"""The dashboard's live numbers and feed: ONE task per gateway, whatever the number of
browsers watching.

Every second it asks PostgreSQL what the sink stored since the last look (two queries,
each over the newest blocks of a BRIN index): the events per tenant, for the events/s
rate, and the offer events, for the offers/s rate and each tenant's live feed. It starts
with the first dashboard page that needs it, so a gateway nobody watches costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict, deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from proffer_stream.db import dashboard
from proffer_stream.db.pool import TRANSIENT_ERRORS

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
RATE_TICKS = 10
"""Rates are the mean over this many ticks."""
OVERLAP = timedelta(seconds=5)
"""How far back each look starts again: a sink transaction that commits late stamped its
rows earlier (ids already seen are skipped)."""
FEED_ROWS = 2_000
SUBSCRIBER_QUEUE = 200
"""Feed items a slow browser may lag behind before it misses some."""


@dataclass(frozen=True)
class Rates:
    """A tenant's events and offer events stored per second, lately."""

    events_per_second: float
    offers_per_second: float


class Pulse:
    """The gateway's one watcher of what the sink stores, shared by every browser."""

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self._subscribers: dict[str, set[asyncio.Queue[dashboard.FeedItem]]] = defaultdict(set)
        self._ticks: dict[str, deque[tuple[int, int]]] = {}
        self._seen: dict[tuple[str, str], datetime] = {}

    def ensure_running(self, pool: asyncpg.Pool) -> None:
        """Start watching, unless it already is."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(pool))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def rates(self, tenant_id: str) -> Rates:
        ticks = self._ticks.get(tenant_id, ())
        window = max(len(ticks), 1) * TICK_SECONDS
        return Rates(
            events_per_second=round(sum(t[0] for t in ticks) / window, 1),
            offers_per_second=round(sum(t[1] for t in ticks) / window, 1),
        )

    @contextlib.contextmanager
    def subscribe(self, tenant_id: str) -> Iterator[asyncio.Queue[dashboard.FeedItem]]:
        """A queue of the tenant's offer events from now on, while the block runs."""
        queue: asyncio.Queue[dashboard.FeedItem] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self._subscribers[tenant_id].add(queue)
        try:
            yield queue
        finally:
            self._subscribers[tenant_id].discard(queue)
            if not self._subscribers[tenant_id]:
                del self._subscribers[tenant_id]

    async def _run(self, pool: asyncpg.Pool) -> None:
        last = await dashboard.database_now(pool)
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                last = await self._tick(pool, last)
            except TRANSIENT_ERRORS as exc:
                log.debug("dashboard pulse skipped a tick: %r", exc)

    async def _tick(self, pool: asyncpg.Pool, last: datetime) -> datetime:
        now = await dashboard.database_now(pool)
        events = await dashboard.events_stored_since(pool, last)
        fresh = self._unseen(await dashboard.offer_events_since(pool, last - OVERLAP, FEED_ROWS))
        offers: dict[str, int] = defaultdict(int)
        for item in fresh:
            if item.event_type == "offer.generated":
                offers[item.tenant_id] += 1
            self._publish(item)
        for tenant_id in {*events, *offers, *self._ticks}:
            ticks = self._ticks.setdefault(tenant_id, deque(maxlen=RATE_TICKS))
            ticks.append((events.get(tenant_id, 0), offers.get(tenant_id, 0)))
            if not any(map(any, ticks)):
                del self._ticks[tenant_id]
        self._forget(now - 2 * OVERLAP)
        return now

    def _unseen(self, items: list[dashboard.FeedItem]) -> list[dashboard.FeedItem]:
        fresh = [i for i in items if (i.tenant_id, i.event_id) not in self._seen]
        for item in fresh:
            self._seen[(item.tenant_id, item.event_id)] = item.stored_at
        return fresh

    def _forget(self, before: datetime) -> None:
        self._seen = {k: at for k, at in self._seen.items() if at >= before}

    def _publish(self, item: dashboard.FeedItem) -> None:
        for queue in self._subscribers.get(item.tenant_id, ()):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(item)

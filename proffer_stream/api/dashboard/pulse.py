"""The dashboard's live numbers and feed: what the sink stores, as it commits, for every
browser of a gateway at once.

The sink's transaction notifies, beside its reply keys, a key per offer event it stored
and a count per tenant of the events it stored (:func:`~proffer_stream.db.replies.feed_key`,
:func:`~proffer_stream.db.replies.events_key`). The gateway's one ``LISTEN`` connection
hands them to the :class:`Pulse` (:meth:`ReplyListener.tap`): no query, no polling, one
reader whatever the number of browsers. A tick a second rolls the rates' window.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass

from proffer_stream.db.replies import EVENTS_PREFIX, FEED_PREFIX, ReplyListener

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
RATE_TICKS = 10
"""Rates are the mean over this many ticks."""
SUBSCRIBER_QUEUE = 200
"""Feed items a slow browser may lag behind before it misses some."""
KEPT_PER_TENANT = 200
"""Feed items kept per tenant, for a browser that reconnects (``Last-Event-ID``)."""


@dataclass(frozen=True)
class FeedItem:
    """One offer event the sink stored."""

    tenant_id: str
    event_type: str
    offer_id: int | None
    status: str | None
    external_customer_id: str
    cause: str


@dataclass(frozen=True)
class Rates:
    """A tenant's events and new offers stored per second, lately."""

    events_per_second: float
    offers_per_second: float


def read_keys(keys: list[str]) -> tuple[list[FeedItem], Counter[str]]:
    """The offer events and the events per tenant that notified keys say were stored;
    other keys (replies) and malformed ones are left out."""
    items: list[FeedItem] = []
    events: Counter[str] = Counter()
    for key in keys:
        try:
            if key.startswith(FEED_PREFIX):
                items.append(FeedItem(*json.loads(key.removeprefix(FEED_PREFIX))))
            elif key.startswith(EVENTS_PREFIX):
                tenant_id, count = json.loads(key.removeprefix(EVENTS_PREFIX))
                events[str(tenant_id)] += int(count)
        except (ValueError, TypeError):
            log.debug("not a dashboard key: %r", key[:200])
    return items, events


class Pulse:
    """The gateway's live rates and feed, shared by every browser."""

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self._subscribers: dict[str, set[asyncio.Queue[tuple[int, FeedItem]]]] = {}
        self._recent: dict[str, deque[tuple[int, FeedItem]]] = {}
        self._sequence = 0
        self._current: dict[str, list[int]] = {}
        self._ticks: dict[str, deque[tuple[int, int]]] = {}

    def ensure_running(self, replies: ReplyListener) -> None:
        """Start following the notifications, unless it already does."""
        if self._task is None:
            replies.tap(self.on_keys)
            self._task = asyncio.get_running_loop().create_task(self._tick_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def rates(self, tenant_id: str) -> Rates:
        ticks = self._ticks.get(tenant_id, ())
        window = RATE_TICKS * TICK_SECONDS
        return Rates(
            events_per_second=round(sum(t[0] for t in ticks) / window, 1),
            offers_per_second=round(sum(t[1] for t in ticks) / window, 1),
        )

    @contextlib.contextmanager
    def subscribe(
        self, tenant_id: str, after: int | None = None
    ) -> Iterator[asyncio.Queue[tuple[int, FeedItem]]]:
        """A queue of the tenant's offer events, each with its sequence number, from now
        on while the block runs; with ``after``, those kept since that number first (a
        browser that reconnects misses nothing this gateway still holds)."""
        queue: asyncio.Queue[tuple[int, FeedItem]] = asyncio.Queue(SUBSCRIBER_QUEUE)
        if after is not None:
            for kept in self._recent.get(tenant_id, ()):
                if kept[0] > after and not queue.full():
                    queue.put_nowait(kept)
        self._subscribers.setdefault(tenant_id, set()).add(queue)
        try:
            yield queue
        finally:
            self._subscribers[tenant_id].discard(queue)
            if not self._subscribers[tenant_id]:
                del self._subscribers[tenant_id]

    def on_keys(self, keys: list[str]) -> None:
        """Count and hand out what one notification says was stored."""
        items, events = read_keys(keys)
        for tenant_id, count in events.items():
            self._current.setdefault(tenant_id, [0, 0])[0] += count
        for item in items:
            if item.event_type == "offer.generated":
                self._current.setdefault(item.tenant_id, [0, 0])[1] += 1
            self._sequence += 1
            numbered = (self._sequence, item)
            kept = self._recent.setdefault(item.tenant_id, deque(maxlen=KEPT_PER_TENANT))
            kept.append(numbered)
            for queue in self._subscribers.get(item.tenant_id, ()):
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(numbered)

    def tick(self) -> None:
        """Close this second's counts into each tenant's window."""
        current, self._current = self._current, {}
        for tenant_id in {*current, *self._ticks}:
            ticks = self._ticks.setdefault(tenant_id, deque(maxlen=RATE_TICKS))
            events, offers = current.get(tenant_id, (0, 0))
            ticks.append((events, offers))
            if not any(map(any, ticks)):
                del self._ticks[tenant_id]

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            self.tick()

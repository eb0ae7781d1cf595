"""A short-lived cache of what a page computes, shared by every browser on a gateway."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class TtlCache(Generic[V]):
    """Values computed at most once per ``ttl`` seconds per key; browsers that ask while
    one is being computed wait for that one (no stampede). At most ``max_keys`` kept."""

    def __init__(
        self, ttl: float, max_keys: int = 1_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_keys = max_keys
        self.clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, asyncio.Future[V]]] = OrderedDict()

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[V]]) -> V:
        now = self.clock()
        entry = self._entries.get(key)
        if entry is None or entry[0] <= now or _failed(entry[1]):
            entry = (now + self.ttl, asyncio.ensure_future(compute()))
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_keys:
                self._entries.popitem(last=False)
        return await asyncio.shield(entry[1])


def _failed(future: asyncio.Future[V]) -> bool:
    return future.done() and (future.cancelled() or future.exception() is not None)

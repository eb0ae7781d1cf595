"""Restoring what a worker's table lost from PostgreSQL, a batch of keys at a time.

A table misses a customer's state when the customer is new, or when the broker lost the
table's changelog (the local broker keeps nothing across restarts): then PostgreSQL's
projection is all that is left of it. The offers agent decides each customer in a task
of its own; the customers of one batch that miss from the table ask for their state in
the same turn of the event loop, and :class:`BatchedRestore` asks PostgreSQL for all of
them in one query (one per customer cost a round trip each for every new customer).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BatchedRestore(Generic[K, V]):
    """Gathers the keys asked for in one turn of the event loop, and queries them at once.

    ``query`` returns what it found of the keys it is given (a key it leaves out has
    nothing stored) and waits out an outage itself (``retry_transient``). An error that
    is not an outage fails only the keys it concerns: the batch is asked again key by
    key, and the keys whose query fails get its error.
    """

    def __init__(self, query: Callable[[list[K]], Awaitable[dict[K, V]]], what: str) -> None:
        self.query = query
        self.what = what
        self._wanted: dict[K, asyncio.Future[V | None]] = {}

    async def get(self, key: K) -> V | None:
        """What PostgreSQL holds for ``key``, if anything (raises the error of its query)."""
        wanted = self._wanted.get(key)
        if wanted is None:
            if not self._wanted:
                asyncio.get_running_loop().call_soon(self._start)
            wanted = self._wanted[key] = asyncio.get_running_loop().create_future()
        return await asyncio.shield(wanted)  # one waiter cancelled leaves the others

    def _start(self) -> None:
        wanted, self._wanted = self._wanted, {}
        task = asyncio.create_task(self._restore(wanted))
        task.add_done_callback(_report_escaped)

    async def _restore(self, wanted: dict[K, asyncio.Future[V | None]]) -> None:
        keys = list(wanted)
        try:
            found = await self.query(keys)
        except Exception:  # not an outage: find the keys it concerns
            found = {}
            for key in keys:
                try:
                    found.update(await self.query([key]))
                except Exception as exc:  # this key's only
                    _settle(wanted.pop(key), error=exc)
        except BaseException:  # cancelled (the worker stops): the waiters must not hang
            for future in wanted.values():
                future.cancel()
            raise
        if found:
            log.info("restored %d %s from PostgreSQL", len(found), self.what)
        for key, future in wanted.items():
            _settle(future, value=found.get(key))


def _settle(
    future: asyncio.Future[V | None], value: V | None = None, error: Exception | None = None
) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def _report_escaped(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("restoring from PostgreSQL failed", exc_info=error)

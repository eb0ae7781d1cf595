"""One backoff helper: retry an awaitable on an explicit set of transient errors only."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: ``first`` seconds, doubling, at most ``most``; with ``jitter``
    each wait is drawn down to half of that (so that many callers do not retry in step)."""

    first: float = 0.5
    most: float = 10.0
    jitter: bool = False

    def delay(self, retry: int) -> float:
        """The wait before retry number ``retry`` (1 for the second attempt)."""
        ceiling = min(self.most, self.first * 2.0 ** (retry - 1))
        return ceiling * random.uniform(0.5, 1.0) if self.jitter else ceiling


async def retry_transient(
    call: Callable[[], Awaitable[T]],
    *,
    transient: tuple[type[BaseException], ...],
    what: str,
    backoff: Backoff = Backoff(),
    attempts: int | None = None,
) -> T:
    """Await ``call()``, retrying with ``backoff`` while it raises ``transient``.

    Anything else propagates at once: a query bug or bad data is not an outage and must
    never loop. ``attempts`` bounds the tries (``None``: until it succeeds). The outage
    is logged once when it starts and once when it ends, not on every try.
    """
    tries = 0
    while True:
        tries += 1
        try:
            result = await call()
        except transient as exc:
            if attempts is not None and tries >= attempts:
                raise
            if tries == 1:
                log.warning("%s unavailable (%s); retrying with backoff", what, _short(exc))
            await asyncio.sleep(backoff.delay(tries))
            continue
        if tries > 1:
            log.warning("%s available again after %d tries", what, tries)
        return result


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]

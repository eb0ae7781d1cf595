"""One backoff helper: retry an awaitable on an explicit set of transient errors only."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


async def retry_transient(
    call: Callable[[], Awaitable[T]],
    *,
    transient: tuple[type[BaseException], ...],
    what: str,
    first_delay: float = 0.5,
    max_delay: float = 10.0,
    attempts: int | None = None,
) -> T:
    """Await ``call()``, retrying with exponential backoff while it raises ``transient``.

    Anything else propagates at once: a query bug or bad data is not an outage and must
    never loop. ``attempts`` bounds the tries (``None``: until it succeeds). The outage
    is logged once when it starts and once when it ends, not on every try.
    """
    delay = first_delay
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
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
            continue
        if tries > 1:
            log.warning("%s available again after %d tries", what, tries)
        return result


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]

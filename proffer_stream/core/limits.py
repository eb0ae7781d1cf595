"""What PostgreSQL, JSON and a Kafka record can hold, checked once at the edge.

The gateway and the signals agent parse the same models, so a value refused here is a
422 over HTTP and a dead letter when it comes straight from Kafka, never a crash later.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
LARGEST_NUMBER = 1e15
"""Largest magnitude of a number in event data or metadata (money sums stay exact)."""
MAX_NESTING = 20


def no_nul(value: str) -> str:
    """A string PostgreSQL can store: no NUL characters, and valid UTF-8."""
    problem = _unstorable(value)
    if problem:
        raise ValueError(problem)
    return value


def _unstorable(value: str) -> str | None:
    if "\x00" in value:
        return "must not contain NUL characters (\\u0000)"
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            return "must be valid UTF-8 (no lone surrogates such as \\ud800)"
    return None


def in_range(value: datetime) -> datetime:
    """A timestamp between 1970 and 2100, in UTC."""
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    return value


def check_json(value: Any, where: str = "", depth: int = 0) -> None:
    """Raise ``ValueError`` naming the place of the first value PostgreSQL cannot store.

    NUL characters in keys or strings, numbers that are not finite or larger than
    :data:`LARGEST_NUMBER`, and nesting deeper than :data:`MAX_NESTING`.
    """
    if isinstance(value, str):
        problem = _unstorable(value)
        if problem:
            raise ValueError(f"{where or 'value'}: {problem}")
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        if not math.isfinite(value) or abs(value) > LARGEST_NUMBER:
            raise ValueError(
                f"{where or 'value'}: numbers must be finite and at most {LARGEST_NUMBER:.0e}"
            )
    elif depth >= MAX_NESTING:
        raise ValueError(f"{where or 'value'}: nested deeper than {MAX_NESTING} levels")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_json(key, f"{where}.{key}" if where else str(key), depth + 1)
            check_json(item, f"{where}.{key}" if where else str(key), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json(item, f"{where}[{index}]", depth + 1)

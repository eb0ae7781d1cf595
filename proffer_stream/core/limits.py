"""What PostgreSQL, JSON and a Kafka record can hold, checked once at the edge.

The gateway and the signals agent parse the same models, so a value refused here is a
422 over HTTP and a dead letter when it comes straight from Kafka, never a crash later.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
LARGEST_NUMBER = 1e15
"""Largest magnitude of a number in event data or metadata (money sums stay exact)."""
LARGEST_WHOLE_NUMBER = 2**53 - 1
"""Largest magnitude of a whole number there: ids (an offer's id) are exact up to it."""
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
    """A timestamp between 1970 and 2100 (aware)."""
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}")
    return value


def check_json(value: Any) -> None:
    """Raise ``ValueError`` naming the place of the first value PostgreSQL cannot store.

    NUL characters or invalid UTF-8 in keys or strings, numbers that are not finite or
    larger than :data:`LARGEST_NUMBER`, and nesting deeper than :data:`MAX_NESTING`.
    On the hot path (every event's data, at the gateway and in the agent): one loop
    per container, and the place is worked out only when something is wrong.
    """
    problem = _check(value, 0)
    if problem is not None:
        path, message = problem
        raise ValueError(f"{_place(path) or 'value'}: {message}")


def _check(value: Any, depth: int) -> tuple[list[str | int], str] | None:
    """``None`` when storable, else (path to the bad value, innermost first; the reason).

    Plain keys and scalars pass inline, without a call each (event data is mostly a few
    of them); anything else gets a call that also says what is wrong.
    """
    kind = type(value)
    if kind is not dict and kind is not list:
        message = _check_scalar(value)
        return None if message is None else ([], message)
    if depth >= MAX_NESTING:
        return [], f"nested deeper than {MAX_NESTING} levels"
    is_dict = kind is dict
    for place, item in value.items() if is_dict else enumerate(value):
        if is_dict and (type(place) is not str or "\x00" in place or not place.isascii()):
            message = _check_scalar(place)
            if message is not None:
                return [place], message
        item_kind = type(item)
        if (
            (item_kind is str and "\x00" not in item and item.isascii())
            or (item_kind is float and -LARGEST_NUMBER <= item <= LARGEST_NUMBER)
            or (item_kind is int and -LARGEST_WHOLE_NUMBER <= item <= LARGEST_WHOLE_NUMBER)
            or item is None
            or item_kind is bool
        ):
            continue
        problem = _check(item, depth + 1)
        if problem is not None:
            return [*problem[0], place], problem[1]
    return None


def _check_scalar(value: Any) -> str | None:
    kind = type(value)
    if kind is str:
        return _unstorable(value)
    if kind is int:
        if not -LARGEST_WHOLE_NUMBER <= value <= LARGEST_WHOLE_NUMBER:
            return "whole numbers must be at most 2^53 - 1"
    elif kind is float:
        # NaN fails both comparisons, infinities the bound.
        if not -LARGEST_NUMBER <= value <= LARGEST_NUMBER:
            return f"numbers must be finite and at most {LARGEST_NUMBER:.0e}"
    return None


def _place(innermost_first: list[str | int]) -> str:
    text = ""
    for part in reversed(innermost_first):
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text

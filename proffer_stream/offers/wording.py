"""How the writers (the built-in writer and the model's prompt) read signals out. Pure."""

from __future__ import annotations

import heapq
from datetime import datetime
from decimal import Decimal


def most_counted(counts: dict[str, int], most: int) -> list[tuple[str, int]]:
    """Up to ``most`` names that count more than zero, the most counted first (ties in
    alphabetical order), each with its count."""
    ranked = heapq.nsmallest(most, ((-n, name) for name, n in counts.items() if n > 0))
    return [(name, -negative) for negative, name in ranked]


def money(amount: Decimal) -> str:
    """An amount as copy shows it: two decimals, thousands grouped (``1,234.50``)."""
    return f"{amount:,.2f}"


def days_since(at: datetime | None, now: datetime) -> int | None:
    """Whole days from ``at`` to ``now`` (never negative); None without ``at``."""
    return None if at is None else max(0, (now - at).days)

"""A tenant's offer stats: counts by status and channel, the funnel, revenue, time to
redeem; over all its offers in a window and per rule, in one SQL statement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, get_args

import asyncpg

from proffer_stream.offers.models import CHANNELS, OFFER_STATUSES, Channel, OfferStatus

FunnelStageName = Literal["generated", "approved", "sent", "seen", "clicked", "redeemed"]
FUNNEL_STAGES: tuple[FunnelStageName, ...] = get_args(FunnelStageName)
RATE_DIGITS = 4


@dataclass(frozen=True)
class FunnelStage:
    """How many offers reached a stage, and which share of the previous stage's and of
    all generated offers that is (None when that denominator is 0)."""

    stage: FunnelStageName
    count: int
    rate_from_previous: float | None
    rate_from_generated: float | None


@dataclass(frozen=True)
class OfferStats:
    """The numbers of a set of offers (a tenant's in a window, or one rule's of those)."""

    offers: int
    by_status: dict[OfferStatus, int]
    by_channel: dict[Channel, int]
    funnel: list[FunnelStage]
    redeemed_revenue: Decimal
    median_seconds_sent_to_redeemed: float | None


@dataclass(frozen=True)
class RuleStats(OfferStats):
    """The numbers of the offers one rule made; rule_id None: offers made through the API."""

    rule_id: str | None


@dataclass(frozen=True)
class TenantStats:
    totals: OfferStats
    by_rule: list[RuleStats]


def rate(numerator: int, denominator: int) -> float | None:
    """``numerator / denominator`` to 4 decimals; None when the denominator is 0."""
    if denominator == 0:
        return None
    return round(numerator / denominator, RATE_DIGITS)


def funnel(counts: Sequence[int]) -> list[FunnelStage]:
    """The funnel of the counts of :data:`FUNNEL_STAGES`, in that order.

    ``generated`` has no previous stage: its ``rate_from_previous`` is None.
    """
    if len(counts) != len(FUNNEL_STAGES):
        raise ValueError(f"expected {len(FUNNEL_STAGES)} counts, got {len(counts)}")
    generated = counts[0]
    return [
        FunnelStage(
            stage=stage,
            count=count,
            rate_from_previous=rate(count, counts[i - 1]) if i else None,
            rate_from_generated=rate(count, generated),
        )
        for i, (stage, count) in enumerate(zip(FUNNEL_STAGES, counts, strict=True))
    ]


def _count_columns() -> str:
    statuses = (f"count(*) FILTER (WHERE status = '{s}') AS status_{s}" for s in OFFER_STATUSES)
    channels = (f"count(*) FILTER (WHERE channel = '{c}') AS channel_{c}" for c in CHANNELS)
    return ",\n       ".join((*statuses, *channels))


# One row for all the window's offers (GROUPING(rule_id) = 1), one per rule_id (NULL too).
_STATS_SQL = f"""
SELECT GROUPING(rule_id) = 1 AS is_total,
       rule_id,
       {_count_columns()},
       count(*) AS stage_generated,
       count(approved_at) AS stage_approved,
       count(sent_at) AS stage_sent,
       count(seen_at) AS stage_seen,
       count(clicked_at) AS stage_clicked,
       count(redeemed_at) AS stage_redeemed,
       round(coalesce(sum(redeemed_amount), 0), 2) AS redeemed_revenue,
       percentile_cont(0.5) WITHIN GROUP (
           ORDER BY extract(epoch FROM redeemed_at - sent_at)::double precision
       ) FILTER (WHERE sent_at IS NOT NULL AND redeemed_at IS NOT NULL) AS median_seconds
FROM offers
WHERE tenant_id = $1
  AND ($2::timestamptz IS NULL OR generated_at >= $2)
  AND ($3::timestamptz IS NULL OR generated_at < $3)
GROUP BY GROUPING SETS ((), (rule_id))
ORDER BY is_total DESC, redeemed_revenue DESC, stage_generated DESC, rule_id NULLS LAST
"""


async def offer_stats(
    db: asyncpg.Pool | asyncpg.Connection,
    tenant_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> TenantStats:
    """The tenant's offers generated in ``[since, until)`` (either end open when None):
    totals, and per rule by redeemed revenue, then offers, descending."""
    rows = await db.fetch(_STATS_SQL, tenant_id, since, until)
    totals = _stats(rows[0])
    by_rule = [RuleStats(rule_id=row["rule_id"], **vars(_stats(row))) for row in rows[1:]]
    return TenantStats(totals=totals, by_rule=by_rule)


def _stats(row: Any) -> OfferStats:
    median = row["median_seconds"]
    return OfferStats(
        offers=row["stage_generated"],
        by_status={s: row[f"status_{s}"] for s in OFFER_STATUSES},
        by_channel={c: row[f"channel_{c}"] for c in CHANNELS},
        funnel=funnel([row[f"stage_{stage}"] for stage in FUNNEL_STAGES]),
        redeemed_revenue=row["redeemed_revenue"],
        median_seconds_sent_to_redeemed=None if median is None else round(median, 3),
    )

"""``/api/stats``: how the caller's offers do, over all of them and per rule."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BeforeValidator

from proffer_stream.api.deps import Db, Tenant
from proffer_stream.api.errors import ApiError
from proffer_stream.api.models import (
    ErrorDetail,
    ErrorResponse,
    OfferStatsView,
    RuleStatsView,
    StatsResponse,
)
from proffer_stream.core.types import UtcDatetime, iso_8601_text
from proffer_stream.db import stats

router = APIRouter(prefix="/api/stats", tags=["stats"])


IsoUtcDatetime = Annotated[UtcDatetime, BeforeValidator(iso_8601_text)]
"""A window edge: ISO 8601 text only (naive: UTC)."""

From = Annotated[
    IsoUtcDatetime | None,
    Query(alias="from", description="Offers generated at or after this (ISO 8601; naive: UTC)."),
]
To = Annotated[
    IsoUtcDatetime | None,
    Query(alias="to", description="Offers generated before this (ISO 8601; naive: UTC)."),
]


@router.get(
    "",
    response_model=StatsResponse,
    summary="Offer stats: statuses, channels, funnel, revenue, per rule",
    responses={422: {"model": ErrorResponse, "description": "Invalid window: from after to"}},
)
async def get_stats(tenant_id: Tenant, db: Db, from_: From = None, to: To = None) -> StatsResponse:
    """The caller's offers generated in ``[from, to)`` (all of them without either end).

    - ``by_status``, ``by_channel``: offers by current status and by channel, every one
      listed (0 when none).
    - ``funnel``: generated -> approved -> sent -> seen -> clicked -> redeemed; a stage
      counts the offers whose timestamp for it is set (generated: all), so an offer now
      expired still counts in the stages it reached. ``rate_from_previous`` and
      ``rate_from_generated`` are to 4 decimals, null when their denominator is 0.
    - ``redeemed_revenue``: the sum of the redemption amounts, a number rounded to cents.
    - ``median_seconds_sent_to_redeemed``: over the offers both sent and redeemed; null
      when none.
    - ``by_rule``: the same per rule, the offers made through the API under
      ``rule_id: null``; the rules that earn the most first.
    """
    if from_ is not None and to is not None and from_ > to:
        raise ApiError(
            422,
            "invalid_window",
            f"'from' ({from_.isoformat()}) is after 'to' ({to.isoformat()}).",
            [ErrorDetail(loc="query.from", message="must not be after 'to'")],
        )
    found = await stats.offer_stats(db, tenant_id, since=from_, until=to)
    return StatsResponse(
        from_=from_,
        to=to,
        totals=OfferStatsView.model_validate(found.totals),
        by_rule=[RuleStatsView.model_validate(rule) for rule in found.by_rule],
    )

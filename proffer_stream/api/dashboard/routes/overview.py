"""The overview: live rates, offers by status and channel, the funnel, revenue, per rule,
over a day, a week or a month. A period's figures are read at most once per
:data:`OVERVIEW_SECONDS` per tenant and gateway, whatever the number of browsers (a month
of 100,000 offers is two queries of about 100 ms); the rates are live."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from proffer_stream.api.dashboard.cache import TtlCache
from proffer_stream.api.dashboard.charts import (
    PERIODS,
    Period,
    Window,
    counts_chart,
    percent,
    period_or_day,
    time_series,
    window,
)
from proffer_stream.api.dashboard.web import SignedIn, Viewer, pulse_of, render, services_of
from proffer_stream.db import dashboard, stats

router = APIRouter(include_in_schema=False)

OVERVIEW_SECONDS = 10.0


@router.get("/dashboard")
async def overview(request: Request, viewer: SignedIn, period: str | None = None) -> HTMLResponse:
    chosen = period_or_day(period)
    cache: TtlCache[Figures] = request.app.state.dashboard_overviews
    pool = services_of(request).pool
    figures = await cache.get((viewer.tenant_id, chosen), lambda: _figures(pool, viewer, chosen))
    found, buckets, span = figures.stats, figures.buckets, figures.window
    totals = found.totals
    rows = [(b.start, "generated", float(b.generated)) for b in buckets]
    rows += [(b.start, "redeemed", float(b.redeemed)) for b in buckets]
    revenue = [(b.start, "revenue", float(b.revenue)) for b in buckets]
    charts = {
        "over-time": time_series(span, rows, ["generated", "redeemed"]).as_json(),
        "revenue": time_series(span, revenue, ["revenue"]).as_json(),
        "by-status": counts_chart("offers", totals.by_status).as_json(),
        "by-channel": counts_chart("offers", totals.by_channel).as_json(),
        "funnel": counts_chart("offers", {s.stage: s.count for s in totals.funnel}).as_json(),
    }
    return render(
        request,
        viewer,
        "overview.html",
        page="overview",
        period=chosen,
        periods=PERIODS,
        stats=found,
        charts=charts,
        percent=percent,
        rates=pulse_of(request).rates(viewer.tenant_id),
        as_of=span.until,
    )


@dataclass(frozen=True)
class Figures:
    """What the overview shows of a period, as read at the end of its window."""

    window: Window
    stats: stats.TenantStats
    buckets: list[dashboard.Bucket]


async def _figures(pool: asyncpg.Pool, viewer: Viewer, period: Period) -> Figures:
    span = window(period, datetime.now(UTC))
    found, buckets = await asyncio.gather(  # two connections: the page waits for the longer
        stats.offer_stats(pool, viewer.tenant_id, since=span.since, until=span.until),
        dashboard.offers_over_time(pool, viewer.tenant_id, span.since, span.until, span.bucket),
    )
    return Figures(span, found, buckets)


@router.get("/dashboard/overview/live")
async def live_rates(request: Request, viewer: SignedIn) -> HTMLResponse:
    """The live rates alone, which the overview asks for every two seconds."""
    return render(request, viewer, "_rates.html", rates=pulse_of(request).rates(viewer.tenant_id))

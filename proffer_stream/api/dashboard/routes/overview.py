"""The overview: live rates, offers by status and channel, the funnel, revenue, per rule,
over a day, a week or a month."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from proffer_stream.api.dashboard.charts import (
    PERIODS,
    counts_chart,
    percent,
    period_or_day,
    time_series,
    window,
)
from proffer_stream.api.dashboard.web import SignedIn, pulse_of, render, services_of
from proffer_stream.db import dashboard, stats

router = APIRouter(include_in_schema=False)


@router.get("/dashboard")
async def overview(request: Request, viewer: SignedIn, period: str | None = None) -> HTMLResponse:
    chosen = period_or_day(period)
    span = window(chosen, datetime.now(UTC))
    pool = services_of(request).pool
    found = await stats.offer_stats(pool, viewer.tenant_id, since=span.since, until=span.until)
    buckets = await dashboard.offers_over_time(
        pool, viewer.tenant_id, span.since, span.until, span.bucket
    )
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
    )


@router.get("/dashboard/overview/live")
async def live_rates(request: Request, viewer: SignedIn) -> HTMLResponse:
    """The live rates alone, which the overview asks for every two seconds."""
    return render(request, viewer, "_rates.html", rates=pulse_of(request).rates(viewer.tenant_id))

"""Customers: search by external id; a customer's signals, events, offers and decisions
(those that made no offer included, with why)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from proffer_stream.api.dashboard.web import SignedIn, render, services_of
from proffer_stream.db import customers, dashboard, events, offers
from proffer_stream.signals.models import CustomerSignals
from proffer_stream.signals.views import customer_view

router = APIRouter(include_in_schema=False)

SHOWN = 50
LONGEST_ID = 256


@router.get("/dashboard/customers")
async def customers_page(request: Request, viewer: SignedIn, q: str = "") -> HTMLResponse:
    """The customer of external id ``q``, or the most recently active ones."""
    wanted = q.strip()
    pool = services_of(request).pool
    now = datetime.now(UTC)
    if not wanted or len(wanted) > LONGEST_ID or "\x00" in wanted:
        found = await dashboard.recent_customers(pool, viewer.tenant_id, SHOWN)
        recent = [customer_view(CustomerSignals.model_validate_json(s), now) for s in found]
        return render(
            request,
            viewer,
            "customers.html",
            page="customers",
            q=wanted,
            recent=recent,
            invalid=bool(wanted),
        )
    state = await customers.get_customer_by_external_id(pool, viewer.tenant_id, wanted)
    if state is None:
        return render(
            request, viewer, "customers.html", 404, page="customers", q=wanted, missing=True
        )
    tenant, customer_id = viewer.tenant_id, state.customer_id
    page = await offers.list_offers(
        pool, tenant, status=None, channel=None, customer_id=customer_id, limit=SHOWN, offset=0
    )
    return render(
        request,
        viewer,
        "customers.html",
        customer=customer_view(state, now),
        events=await events.list_events(pool, tenant, customer_id, limit=SHOWN, offset=0),
        offers=page.offers,
        decisions=await offers.list_decisions(pool, tenant, customer_id, limit=SHOWN, offset=0),
        page="customers",
        q=wanted,
    )

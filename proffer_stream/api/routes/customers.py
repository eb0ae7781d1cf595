"""``/api/customers``: customers with their live signals, and their stored events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path

from proffer_stream.api.deps import Db, Tenant
from proffer_stream.api.errors import ApiError
from proffer_stream.api.models import (
    CustomerResponse,
    CustomersResponse,
    DecisionsResponse,
    DecisionView,
    ErrorResponse,
    EventsResponse,
)
from proffer_stream.api.params import CustomerId, Limit, Offset
from proffer_stream.db import customers, events, offers
from proffer_stream.signals.models import CustomerSignals
from proffer_stream.signals.views import customer_view

router = APIRouter(prefix="/api/customers", tags=["customers"])

ExternalId = Annotated[
    str, Path(min_length=1, max_length=256, pattern=r"^[^\x00]*$", description="Your own id.")
]


@router.get("", response_model=CustomersResponse, summary="List customers")
async def list_customers(
    tenant_id: Tenant, db: Db, limit: Limit = 50, offset: Offset = 0
) -> CustomersResponse:
    """The tenant's customers with their signals, most recently active first."""
    found = await customers.list_customers(db, tenant_id, limit=limit, offset=offset)
    now = datetime.now(UTC)
    return CustomersResponse(
        customers=[customer_view(state, now) for state in found], limit=limit, offset=offset
    )


@router.get(
    "/external/{external_id:path}",
    response_model=CustomerResponse,
    summary="A customer and their signals, by your external id",
    responses={404: {"model": ErrorResponse}},
)
async def get_customer_by_external_id(
    external_id: ExternalId, tenant_id: Tenant, db: Db
) -> CustomerResponse:
    """Any external id reads back as it was sent, percent-encoded in the path: a ``/``
    (``a%2Fb``) or spaces only (``%20``) included."""
    state = await customers.get_customer_by_external_id(db, tenant_id, external_id)
    return _customer_response(state, f"external id {external_id!r}")


@router.get(
    "/{customer_id}",
    response_model=CustomerResponse,
    summary="A customer and their signals, by internal id",
    responses={404: {"model": ErrorResponse}},
)
async def get_customer(customer_id: CustomerId, tenant_id: Tenant, db: Db) -> CustomerResponse:
    state = await customers.get_customer(db, tenant_id, customer_id)
    return _customer_response(state, f"id {customer_id}")


@router.get(
    "/{customer_id}/events",
    response_model=EventsResponse,
    summary="A customer's stored events, newest first",
)
async def list_customer_events(
    customer_id: CustomerId, tenant_id: Tenant, db: Db, limit: Limit = 50, offset: Offset = 0
) -> EventsResponse:
    found = await events.list_events(db, tenant_id, customer_id, limit=limit, offset=offset)
    return EventsResponse(events=found, limit=limit, offset=offset)


@router.get(
    "/{customer_id}/decisions",
    response_model=DecisionsResponse,
    summary="A customer's offer decisions, newest first, with why no offer was made",
)
async def list_customer_decisions(
    customer_id: CustomerId, tenant_id: Tenant, db: Db, limit: Limit = 50, offset: Offset = 0
) -> DecisionsResponse:
    found = await offers.list_decisions(db, tenant_id, customer_id, limit=limit, offset=offset)
    return DecisionsResponse(
        decisions=[DecisionView.of(d) for d in found], limit=limit, offset=offset
    )


def _customer_response(state: CustomerSignals | None, what: str) -> CustomerResponse:
    if state is None:
        raise ApiError(404, "customer_not_found", f"No customer with {what} in your tenant.")
    return CustomerResponse(customer=customer_view(state, datetime.now(UTC)))

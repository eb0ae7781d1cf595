"""``/api/offers/generate``, ``/generate-batch`` and ``/requests``: ask for offers now.

Each request is decided by the offers agent that owns the customer (see
:mod:`proffer_stream.api.commands`); ``generate`` waits for the decision.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from proffer_stream.api.commands import (
    answer_decision,
    generate,
    offer_pending,
    offer_request,
    pending_or_unknown,
    requested_by,
    send_request,
)
from proffer_stream.api.deps import AppSettings, Db, KeyName, Publisher, Replies, Tenant
from proffer_stream.api.errors import ApiError
from proffer_stream.api.json_body import JsonBodyRoute
from proffer_stream.api.models import (
    NOT_JSON,
    BatchRequested,
    ErrorResponse,
    GenerateBatch,
    GenerateOffer,
    OfferPending,
    OfferResponse,
)
from proffer_stream.api.params import CommandId
from proffer_stream.db import customers, offers
from proffer_stream.db.issued import record_issued
from proffer_stream.db.tenant_config import latest_change
from proffer_stream.offers.policy import Policy

router = APIRouter(prefix="/api/offers", tags=["offers"], route_class=JsonBodyRoute)


@router.post(
    "/generate",
    response_model=OfferResponse,
    summary="Generate an offer for a customer now",
    responses={
        **NOT_JSON,
        202: {"model": OfferPending, "description": "Still being decided: poll poll_url"},
        404: {"model": ErrorResponse, "description": "Unknown internal customer id"},
        422: {"model": ErrorResponse, "description": "Invalid input, or no offer (why)"},
    },
)
async def generate_offer(
    body: GenerateOffer,
    tenant_id: Tenant,
    key_name: KeyName,
    db: Db,
    publisher: Publisher,
    replies: Replies,
    settings: AppSettings,
) -> OfferResponse | JSONResponse:
    """Ask the offers agent for an offer, and wait (``PROFFER_OFFER_WAIT_SECONDS``) for it."""
    external_id = await _external_id(db, tenant_id, body)
    request = offer_request(tenant_id, external_id, "api", requested_by(key_name), publisher)
    return await generate(publisher, replies, db, settings, request)


@router.get(
    "/requests/{request_id}",
    response_model=OfferResponse,
    summary="What became of an offer request",
    responses={
        202: {"model": OfferPending, "description": "Not decided yet"},
        404: {"model": ErrorResponse, "description": "No such request of this tenant's"},
        422: {"model": ErrorResponse, "description": "No offer was made (why)"},
    },
)
async def get_offer_request(
    request_id: CommandId, tenant_id: Tenant, db: Db
) -> OfferResponse | JSONResponse:
    decision = await offers.get_decision(db, tenant_id, request_id)
    if decision is None:
        await pending_or_unknown(db, tenant_id, "request", request_id)
        return offer_pending(request_id)
    return await answer_decision(db, tenant_id, decision)


@router.post(
    "/generate-batch",
    response_model=BatchRequested,
    summary="Request offers for the customers due one",
    responses=NOT_JSON,
)
async def generate_offer_batch(
    body: GenerateBatch,
    tenant_id: Tenant,
    key_name: KeyName,
    db: Db,
    publisher: Publisher,
    settings: AppSettings,
) -> BatchRequested:
    """Customers with at least ``min_events`` events and no offer within the tenant's
    offer cooldown (24 hours by default), most recently active first, up to ``limit``."""
    change = await latest_change(db, tenant_id, "policy")
    policy = change.policy if change and change.policy else Policy()
    since = datetime.now(UTC) - timedelta(hours=policy.offer_cooldown_hours)
    due = await offers.customers_due_an_offer(
        db, tenant_id, min_events=body.min_events, since=since, limit=body.limit
    )
    by = requested_by(key_name)
    requests = [offer_request(tenant_id, external_id, "batch", by) for external_id in due]
    request_ids = [request.request_id for request in requests]
    await record_issued(db, tenant_id, "request", request_ids)
    for request in requests:
        await send_request(publisher, settings, request)
    return BatchRequested(requested=len(request_ids), request_ids=request_ids)


async def _external_id(db: Db, tenant_id: str, body: GenerateOffer) -> str:
    """The customer's external id, which keys the request like the customer's events.

    Given, it is used as it is: PostgreSQL may not have projected the customer's events
    yet (right after they were accepted), but the offers agent that owns the customer
    decides on the profile it has, and answers "unknown customer" when it has none. An
    internal id can only be resolved through PostgreSQL: 404 when it knows none.
    """
    if body.external_customer_id is not None:
        return body.external_customer_id
    assert body.customer_id is not None
    found = await customers.get_customer(db, tenant_id, body.customer_id)
    if found is None:
        raise ApiError(
            404, "customer_not_found", f"No customer {body.customer_id!r} has sent events yet."
        )
    return found.external_id

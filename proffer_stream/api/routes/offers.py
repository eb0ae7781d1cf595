"""``/api/offers``: read offers, their history and their decision traces, and move them
along their lifecycle.

A status change is decided by the offers agent that owns the offer (see
:mod:`proffer_stream.api.commands`); ``PATCH`` waits for its outcome.
"""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import Response

from proffer_stream.api.commands import (
    OfferOf,
    answer_change,
    change_pending,
    change_status,
    pending_or_unknown,
    requested_by,
)
from proffer_stream.api.deps import AppSettings, Db, KeyName, Publisher, Replies, Tenant
from proffer_stream.api.errors import ApiError
from proffer_stream.api.json_body import JsonBodyRoute
from proffer_stream.api.models import (
    NOT_JSON,
    ChangePending,
    DecisionView,
    ErrorResponse,
    OfferEventsResponse,
    OfferEventView,
    OfferResponse,
    OffersResponse,
    StatusChange,
    TraceResponse,
    TransitionConflict,
)
from proffer_stream.api.params import CommandId, CustomerIdQuery, Limit, OfferId, Offset
from proffer_stream.db import offers
from proffer_stream.offers.models import Channel, OfferStatus

router = APIRouter(prefix="/api/offers", tags=["offers"], route_class=JsonBodyRoute)


@router.get(
    "/commands/{command_id}",
    response_model=OfferResponse,
    summary="What became of a status change",
    responses={
        202: {"model": ChangePending, "description": "Not applied yet"},
        404: {"model": ErrorResponse, "description": "No such change of this tenant's"},
        409: {"model": TransitionConflict, "description": "The offer cannot make this move"},
    },
)
async def get_offer_command(
    command_id: CommandId, tenant_id: Tenant, db: Db, replies: Replies
) -> Response:
    outcome = await offers.get_command_outcome(db, tenant_id, command_id)
    if outcome is None:
        await pending_or_unknown(db, tenant_id, "offer_command", command_id)
        return change_pending(command_id)
    return await answer_change(replies, db, tenant_id, outcome, deadline=time.monotonic())


@router.get("", response_model=OffersResponse, summary="List offers, newest first")
async def list_offers(
    tenant_id: Tenant,
    db: Db,
    status: OfferStatus | None = None,
    channel: Channel | None = None,
    customer_id: CustomerIdQuery = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> OffersResponse:
    page = await offers.list_offers(
        db,
        tenant_id,
        status=status,
        channel=channel,
        customer_id=customer_id,
        limit=limit,
        offset=offset,
    )
    return OffersResponse(offers=page.offers, total=page.total, limit=limit, offset=offset)


@router.get(
    "/{offer_id}",
    response_model=OfferResponse,
    summary="One offer",
    responses={404: {"model": ErrorResponse}},
)
async def get_offer(offer_id: OfferId, tenant_id: Tenant, db: Db) -> OfferResponse:
    offer = await offers.get_offer(db, tenant_id, offer_id)
    if offer is None:
        raise ApiError(404, "offer_not_found", f"No offer with id {offer_id}.")
    return OfferResponse(offer=offer)


@router.patch(
    "/{offer_id}",
    response_model=OfferResponse,
    summary="Move an offer along its lifecycle",
    responses={
        **NOT_JSON,
        202: {"model": ChangePending, "description": "Still being applied: poll poll_url"},
        404: {"model": ErrorResponse, "description": "Unknown offer"},
        409: {
            "model": TransitionConflict,
            "description": "The offer cannot make this move; allowed_statuses says where it may go",
        },
    },
)
async def update_offer(
    offer_id: OfferId,
    body: StatusChange,
    tenant_id: Tenant,
    key_name: KeyName,
    db: Db,
    publisher: Publisher,
    replies: Replies,
    settings: AppSettings,
) -> Response:
    """generated -> approved -> sent -> redeemed, or expired from any of those.

    The offers agent that owns the offer decides, one change at a time: of two
    conflicting changes one is applied and the other answers 409. Waits
    (``PROFFER_OFFER_WAIT_SECONDS``) for the outcome, then answers 202 with where to poll.
    """
    customer = await offers.offer_customer(db, tenant_id, offer_id)
    if customer is None:
        raise ApiError(404, "offer_not_found", f"No offer with id {offer_id}.")
    offer = OfferOf(tenant_id, offer_id, customer)
    change = (body.status, body.reason)
    return await change_status(
        publisher, replies, db, settings, offer, change, requested_by(key_name)
    )


@router.get(
    "/{offer_id}/events",
    response_model=OfferEventsResponse,
    summary="An offer's history: every change, who or what caused it",
    responses={404: {"model": ErrorResponse}},
)
async def get_offer_events(offer_id: OfferId, tenant_id: Tenant, db: Db) -> OfferEventsResponse:
    """404 like ``GET /api/offers/{id}`` for an offer that is not this tenant's, whatever
    events name its id."""
    events = await offers.list_offer_events(db, tenant_id, offer_id)
    if not events or await offers.get_offer(db, tenant_id, offer_id) is None:
        raise ApiError(404, "offer_not_found", f"No offer with id {offer_id}.")
    return OfferEventsResponse(
        offer_id=offer_id,
        events=[
            OfferEventView(
                event_id=e.event_id,
                event_type=e.event_type,
                previous_status=e.previous_status,
                status=e.status,
                version=e.version,
                occurred_at=e.occurred_at,
                cause=e.cause,
                reason=e.reason,
            )
            for e in events
        ],
    )


@router.get(
    "/{offer_id}/trace",
    response_model=TraceResponse,
    summary="Why this offer was made: request, signals, writer, policy verdicts",
    responses={404: {"model": ErrorResponse}},
)
async def get_offer_trace(offer_id: OfferId, tenant_id: Tenant, db: Db) -> TraceResponse:
    decision = await offers.get_offer_decision(db, tenant_id, offer_id)
    if decision is None:
        raise ApiError(404, "offer_not_found", f"No offer with id {offer_id}.")
    return TraceResponse(decision=DecisionView.of(decision))

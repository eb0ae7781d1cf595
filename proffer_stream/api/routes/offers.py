"""``/api/offers``: generate offers (one, or a batch), move them along their lifecycle,
read them, their history and their decision traces.

The gateway decides nothing: it puts a request or a command on
``proffer.offer-requests`` and the offers agent that owns the customer decides.
``generate`` and ``PATCH`` then wait, bounded, for the outcome to reach PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from proffer_stream.api.deps import AppSettings, Db, KeyName, Publisher, Tenant
from proffer_stream.api.errors import ApiError
from proffer_stream.api.models import (
    NOT_JSON,
    BatchRequested,
    ChangePending,
    DecisionView,
    ErrorDetail,
    ErrorResponse,
    GenerateBatch,
    GenerateOffer,
    OfferEventsResponse,
    OfferEventView,
    OfferPending,
    OfferResponse,
    OffersResponse,
    StatusChange,
    TraceResponse,
    TransitionConflict,
    TransitionError,
)
from proffer_stream.core.identity import new_request_id, partition_key
from proffer_stream.core.settings import Settings
from proffer_stream.db import customers, offers
from proffer_stream.db.offers import Decision
from proffer_stream.db.tenant_config import latest_change
from proffer_stream.kafka.topics import topics_for
from proffer_stream.offers.models import CommandOutcome, OfferCommand, OfferRequest, RequestSource
from proffer_stream.offers.policy import Policy

router = APIRouter(prefix="/api/offers", tags=["offers"])

POLL_SECONDS = 0.05
T = TypeVar("T")
OfferId = Annotated[int, Path(ge=1, lt=2**53, description="The offer's id.")]
RequestId = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")]
Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


@router.post(
    "/generate",
    response_model=OfferResponse,
    summary="Generate an offer for a customer now",
    responses={
        **NOT_JSON,
        202: {"model": OfferPending, "description": "Still being decided: poll poll_url"},
        404: {"model": ErrorResponse, "description": "Unknown customer"},
        422: {"model": ErrorResponse, "description": "Invalid input, or no offer (why)"},
    },
)
async def generate(
    body: GenerateOffer,
    tenant_id: Tenant,
    key_name: KeyName,
    db: Db,
    publisher: Publisher,
    settings: AppSettings,
) -> OfferResponse | JSONResponse:
    """Ask the offers agent for an offer, and wait (``PROFFER_OFFER_WAIT_SECONDS``) for it."""
    external_id = await _external_id(db, tenant_id, body)
    request_id = await _request(
        publisher, settings, tenant_id, external_id, source="api", by=_by(key_name)
    )
    deadline = time.monotonic() + settings.offer_wait_seconds
    decision = await _poll(lambda: offers.get_decision(db, tenant_id, request_id), deadline)
    if decision is None:
        return _pending(request_id)
    return await _outcome(db, tenant_id, decision)


@router.get(
    "/requests/{request_id}",
    response_model=OfferResponse,
    summary="What became of an offer request",
    responses={
        202: {"model": OfferPending, "description": "Not decided yet"},
        422: {"model": ErrorResponse, "description": "No offer was made (why)"},
    },
)
async def get_request(
    request_id: RequestId, tenant_id: Tenant, db: Db
) -> OfferResponse | JSONResponse:
    decision = await offers.get_decision(db, tenant_id, request_id)
    if decision is None:
        return _pending(request_id)
    return await _outcome(db, tenant_id, decision)


@router.post(
    "/generate-batch",
    response_model=BatchRequested,
    summary="Request offers for the customers due one",
    responses=NOT_JSON,
)
async def generate_batch(
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
    request_ids = [
        await _request(
            publisher, settings, tenant_id, external_id, source="batch", by=_by(key_name)
        )
        for external_id in due
    ]
    return BatchRequested(requested=len(request_ids), request_ids=request_ids)


@router.get(
    "/commands/{command_id}",
    response_model=OfferResponse,
    summary="What became of a status change",
    responses={
        202: {"model": ChangePending, "description": "Not applied yet"},
        409: {"model": TransitionConflict, "description": "The offer cannot make this move"},
    },
)
async def get_command(
    command_id: RequestId, tenant_id: Tenant, db: Db
) -> OfferResponse | JSONResponse:
    outcome = await offers.get_command_outcome(db, tenant_id, command_id)
    if outcome is None:
        return _change_pending(command_id)
    return await _answer_change(db, tenant_id, outcome, deadline=time.monotonic())


@router.get("", response_model=OffersResponse, summary="List offers, newest first")
async def list_offers(
    tenant_id: Tenant,
    db: Db,
    status: Literal["generated", "approved", "sent", "redeemed", "expired"] | None = None,
    channel: Literal["email", "sms", "push", "in_app"] | None = None,
    customer_id: Annotated[int | None, Query(ge=1, lt=2**53)] = None,
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
async def change_status(
    offer_id: OfferId,
    body: StatusChange,
    tenant_id: Tenant,
    key_name: KeyName,
    db: Db,
    publisher: Publisher,
    settings: AppSettings,
) -> OfferResponse | JSONResponse:
    """generated -> approved -> sent -> redeemed, or expired from any of those.

    The offers agent that owns the offer decides, one change at a time: of two
    conflicting changes one is applied and the other answers 409. Waits
    (``PROFFER_OFFER_WAIT_SECONDS``) for the outcome, then answers 202 with where to poll.
    """
    offer = await offers.get_offer(db, tenant_id, offer_id)
    if offer is None:
        raise ApiError(404, "offer_not_found", f"No offer with id {offer_id}.")
    command = OfferCommand(
        command_id=new_request_id(),
        tenant_id=tenant_id,
        external_customer_id=offer.external_customer_id,
        action="transition",
        offer_id=offer_id,
        status=body.status,
        cause=_by(key_name),
        reason=body.reason,
        issued_at=datetime.now(UTC),
    )
    await publisher.publish(
        partition_key(tenant_id, offer.external_customer_id),
        command.model_dump_json().encode(),
        topics_for(settings).offer_requests.name,
    )
    deadline = time.monotonic() + settings.offer_wait_seconds
    outcome = await _poll(
        lambda: offers.get_command_outcome(db, tenant_id, command.command_id), deadline
    )
    if outcome is None:
        return _change_pending(command.command_id)
    return await _answer_change(db, tenant_id, outcome, deadline)


@router.get(
    "/{offer_id}/events",
    response_model=OfferEventsResponse,
    summary="An offer's history: every change, who or what caused it",
    responses={404: {"model": ErrorResponse}},
)
async def get_offer_events(offer_id: OfferId, tenant_id: Tenant, db: Db) -> OfferEventsResponse:
    events = await offers.list_offer_events(db, tenant_id, offer_id)
    if not events:
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
async def get_trace(offer_id: OfferId, tenant_id: Tenant, db: Db) -> TraceResponse:
    decision = await offers.get_offer_decision(db, tenant_id, offer_id)
    if decision is None:
        raise ApiError(404, "offer_not_found", f"No offer with id {offer_id}.")
    return TraceResponse(decision=decision_view(decision))


def decision_view(decision: Decision) -> DecisionView:
    return DecisionView(
        request_id=decision.request_id,
        outcome="offer" if decision.outcome == "offer" else "suppressed",
        offer_id=decision.offer_id,
        decided_at=decision.decided_at,
        trace=decision.trace,
    )


async def _external_id(db: Db, tenant_id: str, body: GenerateOffer) -> str:
    if body.external_customer_id is not None:
        found = await customers.get_customer_by_external_id(
            db, tenant_id, body.external_customer_id
        )
    else:
        assert body.customer_id is not None
        found = await customers.get_customer(db, tenant_id, body.customer_id)
    if found is None:
        which = body.external_customer_id or body.customer_id
        raise ApiError(404, "customer_not_found", f"No customer {which!r} has sent events yet.")
    return found.external_id


async def _request(
    publisher: Publisher,
    settings: Settings,
    tenant_id: str,
    external_id: str,
    *,
    source: RequestSource,
    by: str,
) -> str:
    request = OfferRequest(
        request_id=new_request_id(),
        tenant_id=tenant_id,
        external_customer_id=external_id,
        source=source,
        requested_at=datetime.now(UTC),
        requested_by=by,
    )
    await publisher.publish(
        partition_key(tenant_id, external_id),
        request.model_dump_json().encode(),
        topics_for(settings).offer_requests.name,
    )
    return request.request_id


async def _outcome(db: Db, tenant_id: str, decision: Decision) -> OfferResponse:
    if decision.offer_id is not None:
        offer = await offers.get_offer(db, tenant_id, decision.offer_id)
        if offer is not None:
            return OfferResponse(offer=offer)
    reasons = decision.trace.suppressed or ["no offer was made"]
    raise ApiError(
        422,
        "no_offer",
        "No offer was made: " + "; ".join(reasons),
        [ErrorDetail(loc=v.check, message=v.detail) for v in decision.trace.verdicts],
    )


def _by(key_name: str) -> str:
    """Who asked, as offer events record it."""
    return f"api key {key_name!r}"


async def _answer_change(
    db: Db, tenant_id: str, outcome: CommandOutcome, deadline: float
) -> OfferResponse | JSONResponse:
    """The offer as the change left it (once the sink has it), or the 409 saying why not."""
    if outcome.outcome == "rejected":
        conflict = TransitionConflict(
            error=TransitionError(
                code="invalid_transition",
                message=outcome.reason or "the offer cannot make this move",
                details=[ErrorDetail(loc="body.status", message=outcome.reason or "")],
                current_status=outcome.status,
                allowed_statuses=outcome.allowed,
            )
        )
        return JSONResponse(conflict.model_dump(mode="json"), status_code=409)
    offer = await _poll(
        lambda: offers.get_offer_at(db, tenant_id, outcome.offer_id, outcome.version), deadline
    )
    if offer is None:
        return _change_pending(outcome.command_id)
    return OfferResponse(offer=offer)


async def _poll(find: Callable[[], Awaitable[T | None]], deadline: float) -> T | None:
    """What ``find`` finds in PostgreSQL (the sink's projection of an outcome), asked every
    ``POLL_SECONDS`` until ``deadline``; None if nothing by then."""
    while True:
        found = await find()
        if found is not None or time.monotonic() >= deadline:
            return found
        await asyncio.sleep(POLL_SECONDS)


def _change_pending(command_id: str) -> JSONResponse:
    pending = ChangePending(command_id=command_id, poll_url=f"/api/offers/commands/{command_id}")
    return JSONResponse(pending.model_dump(), status_code=202)


def _pending(request_id: str) -> JSONResponse:
    pending = OfferPending(request_id=request_id, poll_url=f"/api/offers/requests/{request_id}")
    return JSONResponse(pending.model_dump(), status_code=202)

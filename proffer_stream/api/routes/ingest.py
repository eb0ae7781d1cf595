"""``POST /api/webhook/events``: a customer's events onto ``proffer.events``, all or nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from proffer_stream.api.deps import ServicesDep, Tenant
from proffer_stream.api.errors import ApiError, error_details
from proffer_stream.api.json_body import read_body
from proffer_stream.api.models import ErrorDetail, ErrorResponse, IngestResponse
from proffer_stream.core import metrics
from proffer_stream.core.identity import customer_id, new_request_id, partition_key
from proffer_stream.ingest.models import EventBatch, EventIn, WebhookEventsRequest

router = APIRouter(prefix="/api/webhook", tags=["ingest"])


@router.post(
    "/events",
    response_model=IngestResponse,
    summary="Send a customer's behavioural events",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/WebhookEventsRequest"}
                }
            },
        }
    },
    responses={
        400: {"model": ErrorResponse},
        413: {"model": ErrorResponse},
        503: {"model": ErrorResponse},
    },
)
async def ingest_events(request: Request, tenant_id: Tenant, services: ServicesDep) -> Response:
    """Creates or updates the customer and ingests the events, all or nothing.

    Any event type is accepted; an event with an `id` is counted once however often
    it is sent. Answered once the events are durably on Kafka.
    """
    settings = services.settings
    body = await read_body(request, settings.max_body_bytes, hint="send fewer events")
    payload = _parse_webhook(body, settings.max_events_per_request)
    received_at = datetime.now(UTC)
    batch = EventBatch(
        tenant_id=tenant_id,
        customer=payload.customer,
        events=_settled(payload.events, received_at),
        received_at=received_at,
    )
    await services.publisher.publish(
        partition_key(tenant_id, payload.customer.id),
        batch.model_dump_json(exclude_none=True).encode(),
    )
    metrics.EVENTS_ACCEPTED.labels(tenant_id).inc(len(batch.events))
    answer = IngestResponse(
        customer_id=customer_id(tenant_id, payload.customer.id),
        events_ingested=len(batch.events),
    )
    # Serialised here: FastAPI would validate the returned model against the route's
    # response model again and encode it generically (``response_model`` stays, for the spec).
    return Response(answer.model_dump_json(), media_type="application/json")


def _parse_webhook(body: bytes, max_events: int) -> WebhookEventsRequest:
    try:
        payload = WebhookEventsRequest.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors()
        if any(error["type"] == "json_invalid" for error in errors):
            raise ApiError(
                400, "invalid_json", "The body is not valid JSON.", error_details(errors)
            ) from None
        raise ApiError(
            422, "validation_error", "The events were not ingested.", error_details(errors)
        ) from None
    if len(payload.events) > max_events:
        raise ApiError(
            413,
            "too_many_events",
            f"{len(payload.events)} events in one request; at most {max_events} are accepted.",
            [ErrorDetail(loc="events", message=f"at most {max_events} items")],
        )
    return payload


def _settled(events: list[EventIn], received_at: datetime) -> list[EventIn]:
    """The events, each with an id and a time, so that every replay of the record agrees.

    An event without an id gets ``<request id>-<position>``: a record our producer
    writes twice (a retry after a lost acknowledgement) then still counts once.
    Set in place: the events are this request's own, and a copy of each cost more than
    parsing it. The values go straight into each model's ``__dict__``, where pydantic
    keeps them: its ``__setattr__`` cost 0.8 µs per event (they are valid, and the
    record is written with ``exclude_none``, never ``exclude_unset``).
    """
    request_id = new_request_id()
    for index, event in enumerate(events):
        fields = event.__dict__
        if fields["id"] is None:
            fields["id"] = f"{request_id}-{index}"
        if fields["occurred_at"] is None:
            fields["occurred_at"] = received_at
    return events

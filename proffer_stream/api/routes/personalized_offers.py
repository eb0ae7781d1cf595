"""The billing platform's personalised offers API under ``/api/v2``: the one best offer
for a customer in context, offer events (viewed, dismissed), and fulfilments of an
accepted option (in_progress, then completed or failed).

Bodies are JSON or form-encoded with bracket keys; the key is a Bearer token or the
HTTP Basic username, so the platform's client libraries work with only their base
domain changed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from proffer_stream.api.catalog import json_answer
from proffer_stream.api.decision_models import (
    FulfillmentBody,
    FulfillmentUpdate,
    OfferEventBody,
    PersonalizedOffersBody,
)
from proffer_stream.api.decisions import Ask, Decisions, new_id
from proffer_stream.api.deps import AnyTenant
from proffer_stream.api.errors import ApiError, error_details
from proffer_stream.api.models import NOT_JSON, ErrorResponse
from proffer_stream.api.wire import header, invalid, read_body
from proffer_stream.db.decisions import Fulfillment
from proffer_stream.decisions.context import DecisionContext, device_named, device_of
from proffer_stream.decisions.models import DecisionMade

router = APIRouter(prefix="/api/v2", tags=["personalized offers"])
ANSWERS: dict[int | str, dict[str, Any]] = {
    **NOT_JSON,
    401: {"model": ErrorResponse, "description": "Missing or invalid API key"},
    404: {"model": ErrorResponse, "description": "No such decision or fulfilment"},
    422: {"model": ErrorResponse, "description": "Invalid: which field, and why"},
    503: {"model": ErrorResponse, "description": "Kafka or PostgreSQL unavailable"},
}
M = TypeVar("M", bound=BaseModel)
FulfillmentId = Annotated[
    str, Path(min_length=1, max_length=100, pattern=r"^ful_[0-9]+_[0-9a-f]+$")
]


def inlined(schema: Any, defs: dict[str, Any] | None = None) -> Any:
    """A model's JSON Schema with its ``$defs`` written in place (none is recursive)."""
    if defs is None and isinstance(schema, dict):
        defs = schema.pop("$defs", {})
    if isinstance(schema, dict):
        ref = schema.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return inlined(dict(defs[ref.rsplit("/", 1)[1]]), defs)  # type: ignore[index]
        return {k: inlined(v, defs) for k, v in schema.items()}
    if isinstance(schema, list):
        return [inlined(v, defs) for v in schema]
    return schema


def body_of(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that reads ``model`` from JSON or a form
    (a form's bracket keys, ``a[b]=1``, are described in the route's text)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inlined(model.model_json_schema())}},
        }
    }


async def read_model(request: Request, model: type[M]) -> M:
    """The body (JSON or a form with bracket keys) as ``model``; 422 naming the field."""
    most = request.app.state.services.settings.max_body_bytes
    data = await read_body(request, most)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = error_details([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()])
        raise ApiError(422, "validation_error", "Invalid request.", details) from None


def context_of(body: PersonalizedOffersBody, request: Request) -> DecisionContext:
    """The request's context: its fields, and the platform's request-origin headers."""
    given = body.request_context
    return DecisionContext(
        url=given.url,
        referrer_url=given.referrer_url,
        locale=given.locale,
        timezone=given.timezone,
        user_agent=given.user_agent,
        device=device_named(header(request, "chargebee-request-origin-device"))
        or device_of(given.user_agent),
        ip=header(request, "chargebee-request-origin-ip"),
        roles=body.roles,
        custom=body.custom,
    )


@router.post(
    "/personalized_offers",
    summary="The one best offer for a customer, in context",
    responses=ANSWERS,
    openapi_extra=body_of(PersonalizedOffersBody),
)
async def personalized_offers(
    request: Request, tenant_id: AnyTenant, decider: Decisions
) -> Response:
    """At most one offer (an empty list when none fits, or the customer is unknown),
    with its text in ``request_context.locale``; the decision is logged before the
    answer goes out (503 if it cannot be)."""
    body = await read_model(request, PersonalizedOffersBody)
    made = await decider.decide(
        Ask(tenant_id, body.customer_id, "personalized_offers", context_of(body, request))
    )
    return json_answer(decider.personalized_answer(made))


@router.post(
    "/offer_events",
    summary="The customer viewed or dismissed an offer",
    responses=ANSWERS,
    openapi_extra=body_of(OfferEventBody),
)
async def offer_events(request: Request, tenant_id: AnyTenant, decider: Decisions) -> Response:
    body = await read_model(request, OfferEventBody)
    decision = await decider.decision(tenant_id, body.personalized_offer_id)
    await decider.react(decision, body.type, _source(request))
    return json_answer({})


@router.post(
    "/offer_fulfillments",
    summary="The customer accepted an option",
    responses=ANSWERS,
    openapi_extra=body_of(FulfillmentBody),
)
async def create_fulfillment(
    request: Request, tenant_id: AnyTenant, decider: Decisions
) -> Response:
    """Starts a fulfilment (``in_progress``) of one of the decision's options."""
    body = await read_model(request, FulfillmentBody)
    decision = await decider.decision(tenant_id, body.personalized_offer_id)
    option = _option(decision, body.option_id)
    reaction = await decider.react(
        decision,
        "fulfillment_started",
        _source(request),
        option_id=option["id"],
        fulfillment_id=new_id("ful", datetime.now(UTC)),
    )
    return json_answer(
        {
            "offer_fulfillment": {
                "id": reaction.fulfillment_id,
                "personalized_offer_id": decision.decision_id,
                "option_id": option["id"],
                "processing_type": option["processing_type"],
                "redirect_url": option["redirect_url"],
                "status": "in_progress",
                "created_at": int(reaction.at.timestamp()),
            }
        }
    )


@router.get("/offer_fulfillments/{fulfillment_id}", summary="A fulfilment", responses=ANSWERS)
async def get_fulfillment(
    fulfillment_id: FulfillmentId, tenant_id: AnyTenant, decider: Decisions
) -> Response:
    found = await decider.fulfillment(tenant_id, fulfillment_id)
    return json_answer({"offer_fulfillment": _fulfillment_view(found)})


@router.post(
    "/offer_fulfillments/{fulfillment_id}",
    summary="Complete or fail a fulfilment",
    responses={**ANSWERS, 409: {"model": ErrorResponse, "description": "Already ended"}},
    openapi_extra=body_of(FulfillmentUpdate),
)
async def update_fulfillment(
    fulfillment_id: FulfillmentId, request: Request, tenant_id: AnyTenant, decider: Decisions
) -> Response:
    body = await read_model(request, FulfillmentUpdate)
    found = await decider.fulfillment(tenant_id, fulfillment_id)
    if found.status != "in_progress":
        raise ApiError(409, "fulfillment_ended", f"The fulfilment is {found.status} already.")
    decision = await decider.decision(tenant_id, found.decision_id)
    ended = await decider.end_fulfillment(
        decision,
        found,
        "fulfillment_completed" if body.status == "completed" else "fulfillment_failed",
        _source(request),
        failure_reason=body.failure_reason,
    )
    if ended is None:  # not projected within the wait: as asked (the first end is kept)
        view = _fulfillment_view(found)
        view.update(status=body.status, failure_reason=body.failure_reason)
        return json_answer({"offer_fulfillment": view})
    if ended.status != body.status:  # another end came first
        raise ApiError(409, "fulfillment_ended", f"The fulfilment is {ended.status} already.")
    return json_answer({"offer_fulfillment": _fulfillment_view(ended)})


def _option(decision: DecisionMade, option_id: str) -> dict[str, Any]:
    options = decision.choice.options if decision.choice else []
    for option in options:
        if option.id == option_id:
            return option.model_dump(mode="json")
    known = [o.id for o in options] or "none: the decision chose no offer"
    raise invalid("body.option_id", f"{option_id!r} is not an option of the offer ({known})")


def _fulfillment_view(found: Fulfillment) -> dict[str, Any]:
    return {
        "id": found.fulfillment_id,
        "personalized_offer_id": found.decision_id,
        "option_id": found.option_id,
        "status": found.status,
        "failure_reason": found.failure_reason,
        "created_at": int(found.created_at.timestamp()),
        "updated_at": int(found.updated_at.timestamp()),
    }


def _source(request: Request) -> str:
    return f"api key {request.state.key_name!r}"

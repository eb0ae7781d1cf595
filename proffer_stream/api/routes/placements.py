"""The placement offers API under ``/api/v2/integrations``: flows (one visit of a
customer), the one best offer at a placement of a flow, and what became of it (shown,
accepted, declined).

Every offer asked for is a decision logged before the answer (``decision.made`` with
the flow and placement in its context), none included; the reactions are attributed to
the decision, whose id is the offer's ``id`` in the answer and the links.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import Field

from proffer_stream.api.catalog import json_answer
from proffer_stream.api.deps import AnyTenant
from proffer_stream.api.errors import ApiError
from proffer_stream.api.member_views import Languages
from proffer_stream.api.models import NOT_JSON, PlacementErrors
from proffer_stream.api.placements import (
    PREFIX,
    PlacementAsk,
    Placements,
    made_event,
    none_answer,
    offer_answer,
    offers_url,
    reaction_event,
    site_of,
)
from proffer_stream.api.routes.personalized_offers import body_of, read_model
from proffer_stream.api.wire import header, invalid
from proffer_stream.catalog.models import PLACEMENT_PATTERN, OfferOption
from proffer_stream.core.types import ExternalId, StrictModel, ascii_number
from proffer_stream.decisions.models import ReactionKind
from proffer_stream.placements.answer import API_VERSION
from proffer_stream.placements.flows import Flow, new_flow_id

router = APIRouter(prefix=PREFIX, tags=["placements"])
ANSWERS: dict[int | str, dict[str, Any]] = {
    **{status: {**answer, "model": PlacementErrors} for status, answer in NOT_JSON.items()},
    401: {"model": PlacementErrors, "description": "Missing or invalid API key"},
    403: {"model": PlacementErrors, "description": "The site is blocked"},
    404: {"model": PlacementErrors, "description": "No such integration, flow or offer"},
    422: {"model": PlacementErrors, "description": "Invalid, or no such placement"},
    503: {"model": PlacementErrors, "description": "Kafka or PostgreSQL unavailable"},
}
"""The placement offers API answers its errors as ``{"errors": [...]}``."""


def _integration_id(
    integration_id: Annotated[str, Path(max_length=100, description="The integration's id.")],
) -> int:
    """The path's integration id, a string as the reference has it: 404 when it names no
    integration we could have (not a number in our ids' range), as for an unknown one."""
    number = ascii_number(integration_id, 16)
    if number is not None and 1 <= number < 2**53:
        return number
    raise ApiError(404, "integration_not_found", f"No integration {integration_id!r}.")


IntegrationId = Annotated[int, Depends(_integration_id)]
FlowId = Annotated[str, Field(min_length=5, max_length=2_000, pattern=r"^flw_[A-Za-z0-9_.-]+$")]
DecisionId = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^dec_[0-9]+_[0-9a-f]+$")]
Site = Annotated[str | None, Query(max_length=300, description="The site, if not the Origin's.")]
NoNul = r"^[^\x00]*$"
REACTIONS: dict[str, ReactionKind] = {"shown": "shown", "accept": "accepted", "decline": "declined"}


class FlowBody(StrictModel):
    """``POST .../flows``: whose visit, and on which site (else the Origin's)."""

    external_customer_id: ExternalId
    site: Annotated[str, Field(max_length=300)] | None = None


@router.post(
    "/{integration_id}/flows",
    status_code=201,
    summary="Start a flow",
    responses=ANSWERS,
    openapi_extra=body_of(FlowBody),
)
async def start_flow(
    integration_id: IntegrationId, request: Request, tenant_id: AnyTenant, placer: Placements
) -> Response:
    """One visit of a customer at the integration's placements: its id names it in the
    offers asked for (403 if the site is blocked)."""
    body = await read_model(request, FlowBody)
    integration = placer.integration(tenant_id, integration_id)
    site = site_of(body.site, "body.site", request)
    placer.allow(integration, site)
    flow = Flow(
        integration_id, body.external_customer_id, site, datetime.now(UTC), uuid.uuid4().hex[:12]
    )
    made = new_flow_id(placer.signing_key, tenant_id, flow)
    data = {
        "type": "flow",
        "id": made,
        "integration_id": integration_id,
        "external_customer_id": body.external_customer_id,
        "site": site,
        "placements": sorted(integration.placements),
    }
    links = [{"rel": "offers", "method": "POST", "href": offers_url(integration_id, made)}]
    return json_answer({"api_version": API_VERSION, "data": data, "links": links}, 201)


@router.post(
    "/{integration_id}/flows/{flow_id}/offers",
    status_code=201,
    summary="The one best offer at a placement",
    responses={**ANSWERS, 202: {"description": "No offer: empty data"}},
)
async def next_placement_offer(
    integration_id: IntegrationId,
    flow_id: FlowId,
    request: Request,
    tenant_id: AnyTenant,
    placer: Placements,
    placement: Annotated[str, Query(max_length=64, pattern=PLACEMENT_PATTERN)],
    languages: Languages,
    first_name: Annotated[str | None, Query(max_length=200, pattern=NoNul)] = None,
    site: Site = None,
    after: Annotated[
        DecisionId | None,
        Query(description="The flow's last offer, to be counted as shown (the next link's)."),
    ] = None,
) -> Response:
    """201 with the offer (never one this flow showed already), 202 with empty data when
    there is none; logged before it is answered."""
    integration = placer.integration(tenant_id, integration_id)
    flow = placer.flow(tenant_id, integration_id, flow_id)
    where = site_of(site, "query.site", request, flow)
    placer.allow(integration, where)
    if after is not None:  # read our own write: that decision is projected first
        await placer.decision_in_flow(tenant_id, flow_id, after)
    asked = PlacementAsk(
        flow_id,
        flow,
        placement,
        where,
        header(request, "referer"),
        header(request, "user-agent"),
        first_name,
        languages[0] if languages else None,
    )
    made = await placer.decide(tenant_id, integration, asked)
    if made.event.choice is None:
        return json_answer(none_answer(made.event), 202)
    default = placer.decider.settings.default_language
    answer = offer_answer(made.event, default, made_event(made.event))
    return json_answer(answer, 201)


@router.post(
    "/{integration_id}/flows/{flow_id}/offers/{decision_id}/{reaction}",
    summary="The offer was shown, accepted or declined",
    responses=ANSWERS,
)
async def react_to_placement_offer(
    integration_id: IntegrationId,
    flow_id: FlowId,
    decision_id: DecisionId,
    reaction: Literal["shown", "accept", "decline"],
    request: Request,
    tenant_id: AnyTenant,
    placer: Placements,
    option_id: Annotated[
        str | None, Query(max_length=100, description="The accepted option (else the first).")
    ] = None,
) -> Response:
    """Recorded against the decision (``decision.reaction``); answers the offer and the
    event recorded."""
    placer.flow(tenant_id, integration_id, flow_id)
    decision = await placer.decision_in_flow(tenant_id, flow_id, decision_id)
    option = _option(decision.choice.options if decision.choice else [], option_id, reaction)
    recorded = await placer.decider.react(
        decision, REACTIONS[reaction], f"api key {request.state.key_name!r}", option_id=option
    )
    default = placer.decider.settings.default_language
    return json_answer(offer_answer(decision, default, reaction_event(recorded)))


def _option(options: list[OfferOption], given: str | None, reaction: str) -> str | None:
    if reaction != "accept":
        return None
    ids = [o.id for o in options]
    if given is None:
        return ids[0] if ids else None
    if given not in ids:
        raise invalid("query.option_id", f"{given!r} is not an option of the offer ({ids})")
    return given

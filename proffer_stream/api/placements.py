"""Placements answered while a page loads: the integration and the placement's
candidates from this gateway's memory, the flow from its id, the customer and what the
flow showed already from the decision's one PostgreSQL read; the decision logged on
``proffer.decisions`` before the answer goes out, as for personalised offers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from proffer_stream.api.decisions import Ask, Decider, Made, decider_of
from proffer_stream.api.errors import ApiError
from proffer_stream.api.services import Services
from proffer_stream.api.wire import invalid
from proffer_stream.catalog.models import IntegrationDefinition
from proffer_stream.catalog.store import CatalogStore
from proffer_stream.decisions.context import DecisionContext, device_of
from proffer_stream.decisions.models import DecisionMade, DecisionReaction
from proffer_stream.placements.answer import (
    API_VERSION,
    event_data,
    offer_data,
    offer_links,
)
from proffer_stream.placements.candidates import LivePlacements
from proffer_stream.placements.flows import Flow, read_flow
from proffer_stream.placements.sites import blocked_because, host_of

PREFIX = "/api/v2/integrations"


def offers_url(integration_id: int, flow_id: str) -> str:
    """Where a flow's offers are asked for."""
    return f"{PREFIX}/{integration_id}/flows/{flow_id}/offers"


def site_of(
    given: str | None, where: str, request: Request, flow: Flow | None = None
) -> str | None:
    """The request's site: the ``site`` given (422 naming ``where`` if it is not a host or
    URL), else its Origin, else its Referer, else the flow's."""
    if given is not None:
        site = host_of(given)
        if site is None:
            raise invalid(where, f"{given!r} is not a host or a URL")
        return site
    headers = request.headers
    found = host_of(headers.get("origin")) or host_of(headers.get("referer"))
    return found or (flow.site if flow is not None else None)


@dataclass(frozen=True)
class PlacementDecider:
    """What the placement routes use: the decision engine, the catalog in memory (with
    the integrations), each placement's candidates, and the key flow ids are signed with."""

    decider: Decider
    catalog: CatalogStore
    placements: LivePlacements
    signing_key: bytes

    def integration(self, tenant_id: str, integration_id: int) -> IntegrationDefinition:
        """The tenant's integration, not archived; 404 if there is none."""
        found = self.catalog.integrations(tenant_id).get(integration_id)
        if found is None or found.archived_at is not None:
            raise ApiError(404, "integration_not_found", f"No integration {integration_id}.")
        return found

    def flow(self, tenant_id: str, integration_id: int, flow_id: str) -> Flow:
        """The flow ``flow_id`` names, of this tenant's integration; 404 if not."""
        found = read_flow(self.signing_key, tenant_id, integration_id, flow_id)
        if found is None:
            raise ApiError(404, "flow_not_found", f"No flow {flow_id!r} of this integration.")
        return found

    @staticmethod
    def allow(integration: IntegrationDefinition, site: str | None) -> None:
        """403 when the integration does not show offers on ``site``."""
        refused = blocked_because(integration, site)
        if refused is not None:
            raise ApiError(403, "site_blocked", f"{refused} for integration {integration.id}.")

    async def decide(
        self,
        tenant_id: str,
        integration: IntegrationDefinition,
        asked: PlacementAsk,
    ) -> Made:
        """The placement's decision for the flow's customer, logged."""
        if asked.placement not in integration.placements:
            known = sorted(integration.placements) or "none"
            raise invalid("query.placement", f"no placement {asked.placement!r} (known: {known})")
        rule = integration.placements[asked.placement]
        context = DecisionContext(
            url=asked.page,
            user_agent=asked.user_agent,
            device=device_of(asked.user_agent),
            locale=asked.locale,
            integration_id=integration.id,
            flow_id=asked.flow_id,
            placement=asked.placement,
            site=asked.site,
        )
        return await self.decider.decide(
            Ask(
                tenant_id,
                asked.flow.external_customer_id,
                "placements",
                context,
                catalog=self.placements.of(integration, asked.placement),
                open_offers=rule.open_offers,
                first_name=asked.first_name,
            )
        )

    async def decision_in_flow(
        self, tenant_id: str, flow_id: str, decision_id: str
    ) -> DecisionMade:
        """The flow's decision that chose an offer; 404 if there is none."""
        decision = await self.decider.decision(tenant_id, decision_id)
        if decision.context.flow_id != flow_id or decision.choice is None:
            raise ApiError(404, "offer_not_found", f"No offer {decision_id!r} in this flow.")
        return decision


@dataclass(frozen=True)
class PlacementAsk:
    """An offer asked for at a placement of a flow."""

    flow_id: str
    flow: Flow
    placement: str
    site: str | None
    page: str | None
    user_agent: str | None
    first_name: str | None
    locale: str | None


def offer_answer(
    decision: DecisionMade, default_language: str, event: dict[str, Any]
) -> dict[str, Any]:
    """The answer showing a decision's offer: its segments, the event, and the links."""
    assert decision.choice is not None and decision.context.integration_id is not None
    url = offers_url(decision.context.integration_id, decision.context.flow_id or "")
    links = offer_links(url, decision.decision_id, decision.context.placement or "")
    languages = [decision.context.locale] if decision.context.locale else []
    data = offer_data(decision.decision_id, decision.choice, links, languages, default_language)
    return {"api_version": API_VERSION, "data": [data, event], "links": links}


def made_event(decision: DecisionMade) -> dict[str, Any]:
    """The decision as the answer's event segment."""
    return event_data(
        "decision.made",
        decision.decision_id,
        decision.decision_id,
        decision.decided_at,
        placement=decision.context.placement,
        flow_id=decision.context.flow_id,
    )


def reaction_event(reaction: DecisionReaction) -> dict[str, Any]:
    """A reaction as the answer's event segment."""
    return event_data(
        f"offer.{reaction.reaction}", reaction.reaction_id, reaction.decision_id, reaction.at
    )


def none_answer(decision: DecisionMade) -> dict[str, Any]:
    """The answer when the placement shows nothing: empty ``data``, the decision named."""
    return {
        "api_version": API_VERSION,
        "data": [],
        "links": [],
        "decision_id": decision.decision_id,
    }


async def placement_decider_of(request: Request) -> PlacementDecider:
    """The request's gateway's placement engine."""
    services: Services = request.app.state.services
    return PlacementDecider(
        await decider_of(request), services.catalog, services.live_placements, services.signing_key
    )


Placements = Annotated[PlacementDecider, Depends(placement_decider_of)]

"""HTTP bodies of the API that are not topic messages: answers, errors, key requests."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.config import JsonDict

from proffer_stream.core.types import WHOLE, ExternalId, Money, StrictModel, Text, WholeNumber
from proffer_stream.db.keys import NewApiKey
from proffer_stream.db.offers import Decision
from proffer_stream.db.stats import FunnelStageName
from proffer_stream.ingest.models import NormalizedEvent
from proffer_stream.offers.models import Channel, DecisionTrace, Offer, OfferStatus
from proffer_stream.offers.policy import Policy
from proffer_stream.offers.rules import TriggerRule, unique_rule_ids
from proffer_stream.signals.models import CustomerView


class IngestResponse(BaseModel):
    success: Literal[True] = True
    customer_id: int = Field(description="Proffer's internal id of the customer.")
    events_ingested: int
    message: str = "Events ingested successfully"


class ErrorDetail(BaseModel):
    loc: str = Field(description="Where in the input, e.g. 'events[1].type'.")
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    success: Literal[False] = False
    error: ErrorBody


PLACEMENTS_PREFIX = "/api/v2/integrations"
"""Where the placement offers API is served: its errors have that API's shape."""


class PlacementError(BaseModel):
    """One error of the placement offers API."""

    status: str = Field(description="The HTTP status, as text.")
    code: str
    title: str
    detail: str | None = Field(None, description="What is wrong there, for an invalid input.")
    source: dict[str, str] | None = Field(
        None,
        description="Where: {'parameter': 'placement'} (path, query or header) or"
        " {'pointer': '/external_customer_id'} (body).",
    )


class PlacementErrors(BaseModel):
    """The placement offers API's errors: an ``errors`` array (one item per invalid
    input, else one)."""

    errors: list[PlacementError]


NOT_JSON: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorResponse,
        "description": "invalid_json: the body is not UTF-8 JSON (where and why)",
    },
    413: {"model": ErrorResponse, "description": "body_too_large: over PROFFER_MAX_BODY_BYTES"},
}
"""The answers of a route with a JSON body (:class:`~proffer_stream.api.json_body.JsonBodyRoute`)
to a body that is not JSON or too large, for its docs."""


class CustomerResponse(BaseModel):
    success: Literal[True] = True
    customer: CustomerView


class CustomersResponse(BaseModel):
    success: Literal[True] = True
    customers: list[CustomerView]
    limit: int
    offset: int


class EventsResponse(BaseModel):
    success: Literal[True] = True
    events: list[NormalizedEvent]
    limit: int
    offset: int


class ApiKeyCreate(StrictModel):
    name: Annotated[Text, Field(min_length=1, max_length=100)] = "API key"


class ApiKeyCreated(NewApiKey):
    success: Literal[True] = True


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, Literal["ok", "unavailable", "starting", "stalled"]] = Field(
        description="Each dependency: ok, unavailable, or (worker, sink) starting: not yet"
        " seen, since the gateway started, as a settled consumer group with every partition"
        " it reads assigned and nothing left to consume; or stalled: a partition it reads"
        " has lag and nothing committed for PROFFER_STALL_SECONDS. Details are in the log."
    )


ONE_CUSTOMER_ID: JsonDict = {
    "oneOf": [
        {
            "title": "ByCustomerId",
            "required": ["customer_id"],
            "properties": {
                "customer_id": {"type": "integer"},
                "external_customer_id": {"type": "null"},
            },
        },
        {
            "title": "ByExternalCustomerId",
            "required": ["external_customer_id"],
            "properties": {
                "external_customer_id": {"type": "string"},
                "customer_id": {"type": "null"},
            },
        },
    ]
}
"""The spec's account of :class:`GenerateOffer`'s rule: exactly one id, the other absent or null."""


class GenerateOffer(StrictModel):
    """Whom to make an offer for: Proffer's customer id, or your own (one of the two)."""

    model_config = ConfigDict(json_schema_extra=ONE_CUSTOMER_ID)

    customer_id: Annotated[int, Field(ge=1, lt=2**53), WHOLE] | None = Field(None, strict=True)
    external_customer_id: ExternalId | None = None

    @model_validator(mode="after")
    def _one_of_the_two(self) -> GenerateOffer:
        if (self.customer_id is None) == (self.external_customer_id is None):
            raise ValueError("give either customer_id or external_customer_id")
        return self


class OfferResponse(BaseModel):
    success: Literal[True] = True
    offer: Offer


class OfferPending(BaseModel):
    """The request is on its way; poll ``poll_url`` for the offer."""

    success: Literal[True] = True
    status: Literal["pending"] = "pending"
    request_id: str
    poll_url: str


class StatusChange(StrictModel):
    """Move an offer along its lifecycle: generated -> approved -> sent -> redeemed, or
    to expired from any of those."""

    status: OfferStatus
    reason: Text | None = Field(
        None, max_length=500, description="Why, in your words: kept in the offer's history."
    )


class ChangePending(BaseModel):
    """The change is on its way to the offers agent; poll ``poll_url`` for its outcome."""

    success: Literal[True] = True
    status: Literal["pending"] = "pending"
    command_id: str
    poll_url: str


class TransitionError(ErrorBody):
    current_status: OfferStatus | None = Field(None, description="The offer's status now.")
    allowed_statuses: list[OfferStatus] = Field(
        default_factory=list, description="Where the offer may move from its status."
    )


class TransitionConflict(BaseModel):
    """The offer cannot make this move (409)."""

    success: Literal[False] = False
    error: TransitionError


class OfferEventView(BaseModel):
    """One entry of an offer's history."""

    event_id: str
    event_type: str
    previous_status: OfferStatus | None
    status: OfferStatus | None
    version: int
    occurred_at: datetime
    cause: str = Field(description="Who or what caused it: an API key's name, a rule, ...")
    reason: str | None = Field(None, description="Why, for a rejected redemption.")


class OfferEventsResponse(BaseModel):
    success: Literal[True] = True
    offer_id: int
    events: list[OfferEventView]


class GenerateBatch(StrictModel):
    min_events: WholeNumber = Field(1, ge=0, le=1_000_000_000, strict=True)
    limit: WholeNumber = Field(10, ge=1, le=50, strict=True)


class BatchRequested(BaseModel):
    success: Literal[True] = True
    requested: int
    request_ids: list[str]


class OffersResponse(BaseModel):
    success: Literal[True] = True
    offers: list[Offer]
    total: int
    limit: int
    offset: int


class DecisionView(BaseModel):
    """What became of one offer request, and why."""

    request_id: str
    outcome: Literal["offer", "suppressed"]
    offer_id: int | None
    decided_at: datetime
    trace: DecisionTrace

    @classmethod
    def of(cls, decision: Decision) -> DecisionView:
        return cls(
            request_id=decision.request_id,
            outcome="offer" if decision.outcome == "offer" else "suppressed",
            offer_id=decision.offer_id,
            decided_at=decision.decided_at,
            trace=decision.trace,
        )


class TraceResponse(BaseModel):
    success: Literal[True] = True
    decision: DecisionView


class DecisionsResponse(BaseModel):
    success: Literal[True] = True
    decisions: list[DecisionView]
    limit: int
    offset: int


class RulesUpdate(StrictModel):
    """A whole new rule set (rule versions are the server's: unchanged rules keep theirs)."""

    rules: list[TriggerRule] = Field(max_length=200)

    _unique_ids = field_validator("rules")(lambda rules: unique_rule_ids(rules))


class RulesView(BaseModel):
    success: Literal[True] = True
    version: int = Field(description="The rule set's version; 0: the deployment's default.")
    rules: list[TriggerRule]
    changed_at: datetime | None = None
    is_default: bool = False


class PolicyView(BaseModel):
    success: Literal[True] = True
    version: int = Field(description="The policy's version; 0: the default policy.")
    policy: Policy
    changed_at: datetime | None = None
    is_default: bool = False


class ConfigChangePending(BaseModel):
    """The change is on its way to its owner; poll ``poll_url`` for its outcome."""

    success: Literal[True] = True
    status: Literal["pending"] = "pending"
    command_id: str
    poll_url: str


class VersionConflictError(ErrorBody):
    current_version: int = Field(description="The version in force (0: the defaults).")


class VersionConflict(BaseModel):
    """Another change was made meanwhile (409): read the current version and try again."""

    success: Literal[False] = False
    error: VersionConflictError


class FunnelStageView(BaseModel):
    """How many offers reached a stage (its timestamp is set; generated: all offers)."""

    model_config = ConfigDict(from_attributes=True)

    stage: FunnelStageName
    count: int
    rate_from_previous: float | None = Field(
        description="count / the previous stage's count, to 4 decimals; null for generated"
        " (no previous stage) or when the previous stage's count is 0."
    )
    rate_from_generated: float | None = Field(
        description="count / generated, to 4 decimals; null when no offer was generated."
    )


class OfferStatsView(BaseModel):
    """The numbers of a set of offers: all the tenant's in the window, or one rule's."""

    model_config = ConfigDict(from_attributes=True)

    offers: int = Field(description="Offers generated in the window.")
    by_status: dict[OfferStatus, int] = Field(description="Offers by current status, 0s too.")
    by_channel: dict[Channel, int] = Field(description="Offers by channel, 0s too.")
    funnel: list[FunnelStageView] = Field(
        description="generated, approved, sent, seen, clicked, redeemed, in that order."
    )
    redeemed_revenue: Money = Field(
        description="The sum of the redeemed offers' amounts, rounded to 2 decimals: a JSON"
        " number (0 when none)."
    )
    median_seconds_sent_to_redeemed: float | None = Field(
        description="The median of redeemed_at - sent_at in seconds over the offers with"
        " both; null when none."
    )


class RuleStatsView(OfferStatsView):
    rule_id: str | None = Field(
        description="The rule that made the offers; null: offers made through the API."
    )


class StatsResponse(BaseModel):
    model_config = ConfigDict(validate_by_name=True)

    success: Literal[True] = True
    from_: datetime | None = Field(
        alias="from", description="The window's start (inclusive), if given."
    )
    to: datetime | None = Field(description="The window's end (exclusive), if given.")
    totals: OfferStatsView
    by_rule: list[RuleStatsView] = Field(
        description="Per rule: by redeemed revenue, then by offers, descending."
    )

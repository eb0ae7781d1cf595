"""The offer domain's messages: drafts, offers, requests, decisions and their traces.

A writer (built-in or a model) produces an :class:`OfferDraft`; policy judges it; the
offers agent turns a judged draft into an :class:`Offer`. Every decision, an offer or
none, is an :class:`OfferEvent` on ``proffer.offers`` with its :class:`DecisionTrace`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from proffer_stream.core.types import ExternalId, StrictModel, TenantId, Text, UtcDatetime
from proffer_stream.signals.models import CustomerSignals

Channel = Literal["email", "sms", "push", "in_app"]
CHANNELS: tuple[Channel, ...] = ("email", "sms", "push", "in_app")
OfferType = Literal[
    "discount", "free_trial", "upgrade", "bundle", "free_shipping", "loyalty_points", "content"
]
OFFER_TYPES: tuple[OfferType, ...] = (
    "discount",
    "free_trial",
    "upgrade",
    "bundle",
    "free_shipping",
    "loyalty_points",
    "content",
)
OfferStatus = Literal["generated", "approved", "sent", "redeemed", "expired"]
RequestSource = Literal["rule", "api", "batch"]


class OfferTerms(BaseModel):
    """What the customer gets, and on what terms."""

    discount_percent: int | None = Field(None, ge=0, le=100)
    code: str | None = Field(None, max_length=40)
    valid_days: int = Field(7, ge=0, le=365)
    conditions: str | None = Field(None, max_length=500)


class OfferDraft(BaseModel):
    """A writer's proposal, before policy: also the LLM's structured output."""

    headline: str = Field(max_length=500)
    body_copy: str = Field(max_length=5000)
    offer_type: OfferType
    offer_terms: OfferTerms
    channel: Channel
    reasoning: str = Field(max_length=5000)


class Offer(BaseModel):
    """An offer as the API shows it (the reference's shape) plus what we keep with it."""

    id: int
    customer_id: int
    external_customer_id: str
    tenant_id: TenantId
    headline: str
    body_copy: str
    offer_type: OfferType
    offer_terms: OfferTerms
    channel: Channel
    status: OfferStatus = "generated"
    ai_reasoning: str
    expires_at: UtcDatetime
    generated_at: UtcDatetime
    request_id: str
    rule_id: str | None = None
    rule_version: int | None = None
    writer: str = Field(description='"built-in", or the model that wrote it.')
    version: int = Field(1, description="One more with every change of the offer.")


class OfferRequest(StrictModel):
    """A request for an offer, on ``proffer.offer-requests`` keyed like the customer's events.

    Its id is deterministic (a rule firing: tenant, customer, rule, source offset; the
    API: an id the gateway makes once), and the offer id follows from it.
    """

    schema_version: Literal[1] = 1
    request_id: str = Field(min_length=1, max_length=200)
    tenant_id: TenantId
    external_customer_id: ExternalId
    source: RequestSource
    rule_id: str | None = None
    rule_version: int | None = None
    requested_at: UtcDatetime
    requested_by: Text | None = Field(None, description="The API key's name, for API requests.")
    signals: CustomerSignals | None = Field(
        None, description="The profile the rule saw; None: the offers agent reads it."
    )


class Verdict(BaseModel):
    """One policy check of a draft: passed, corrected (how) or rejected (why)."""

    check: str
    outcome: Literal["passed", "corrected", "rejected"]
    detail: str = ""


class WriterTrace(BaseModel):
    """Who wrote the draft, and how it went."""

    kind: Literal["built-in", "llm"]
    model: str | None = None
    prompt: str | None = None
    raw_answer: str | None = None
    attempts: int = 1
    latency_ms: float = 0.0
    fallback_reason: str | None = Field(
        None, description="Why the built-in writer took over from the model, if it did."
    )


class DecisionTrace(BaseModel):
    """Why this customer got this offer, or none."""

    request_id: str
    source: RequestSource
    rule_id: str | None = None
    rule_version: int | None = None
    signals: CustomerSignals | None = None
    writer: WriterTrace | None = None
    draft: OfferDraft | None = None
    verdicts: list[Verdict] = Field(default_factory=list)
    suppressed: list[str] = Field(
        default_factory=list, description="Why no offer was made (cooldown, policy, ...)."
    )


OfferEventType = Literal["offer.generated", "offer.suppressed"]


class OfferEvent(BaseModel):
    """One change of an offer, or one decision not to make one, on ``proffer.offers``."""

    schema_version: Literal[1] = 1
    event_id: str
    event_type: OfferEventType
    tenant_id: TenantId
    customer_id: int
    external_customer_id: str
    request_id: str
    offer_id: int | None = None
    previous_status: OfferStatus | None = None
    status: OfferStatus | None = None
    version: int = 0
    occurred_at: UtcDatetime
    cause: str = Field(description="What caused it: an API key's name, a rule, a timer, ...")
    offer: Offer | None = None
    trace: DecisionTrace

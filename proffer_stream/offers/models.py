"""The offer domain's messages: drafts, offers, requests, decisions and their traces.

A writer (built-in or a model) produces an :class:`OfferDraft`; policy judges it; the
offers agent turns a judged draft into an :class:`Offer`. Every decision, an offer or
none, is an :class:`OfferEvent` on ``proffer.offers`` with its :class:`DecisionTrace`;
so is every later change of the offer, which an :class:`OfferCommand` asks for (the API,
a timer, or a customer's behaviour) and whose outcome, for the API, is a
:class:`CommandOutcome`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Discriminator, Field, RootModel, Tag, model_validator

from proffer_stream.core.types import ExternalId, StrictModel, TenantId, Text, UtcDatetime
from proffer_stream.signals.models import CustomerProfile

Channel = Literal["email", "sms", "push", "in_app"]
CHANNELS: tuple[Channel, ...] = get_args(Channel)
OfferType = Literal[
    "discount", "free_trial", "upgrade", "bundle", "free_shipping", "loyalty_points", "content"
]
OFFER_TYPES: tuple[OfferType, ...] = get_args(OfferType)
OfferStatus = Literal["generated", "approved", "sent", "redeemed", "expired"]
OFFER_STATUSES: tuple[OfferStatus, ...] = get_args(OfferStatus)
RequestSource = Literal["rule", "api", "batch"]


class OfferTerms(BaseModel):
    """What the customer gets, and on what terms."""

    discount_percent: int | None = Field(None, ge=0, le=100)
    code: str | None = Field(None, max_length=40)
    valid_days: int = Field(7, ge=0, le=365)
    conditions: str | None = Field(None, max_length=500)


class CatalogBrief(StrictModel):
    """The catalog offer a generated offer is written for: the business's text, and the
    terms that bound it (policy holds the draft to them)."""

    catalog_offer_id: int = Field(ge=1, lt=2**53)
    name: str | None = Field(None, max_length=10_000)
    description: str | None = Field(None, max_length=10_000)
    discount_percent: int | None = Field(
        None, ge=0, le=100, description="The most the offer may give; None: no percent."
    )
    discount_amount: Decimal | None = Field(None, ge=0, description="Stated in the conditions.")
    code_pattern: str | None = Field(None, max_length=40)
    valid_days: int | None = Field(None, ge=0, le=365, description="The longest the offer runs.")
    conditions: str | None = Field(None, max_length=500)
    channels: list[Channel] = Field(default_factory=list, description="Empty: any.")


class OfferDraft(BaseModel):
    """A writer's proposal, before policy: also the LLM's structured output."""

    headline: str = Field(max_length=500)
    body_copy: str = Field(max_length=5000)
    offer_type: OfferType
    offer_terms: OfferTerms
    channel: Channel
    reasoning: str = Field(max_length=5000)


class Redemption(BaseModel):
    """What redeemed an offer: the purchase event (or the API call) and its amount."""

    cause: str = Field(description="The purchase event's id, or the API key's name.")
    amount: Decimal | None = Field(None, description="The order's amount, when the event had one.")
    code: str | None = None


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
    approved_at: UtcDatetime | None = None
    sent_at: UtcDatetime | None = None
    redeemed_at: UtcDatetime | None = None
    expired_at: UtcDatetime | None = None
    seen_at: UtcDatetime | None = Field(None, description="When the customer first saw it.")
    clicked_at: UtcDatetime | None = Field(None, description="When the customer first clicked.")
    redemption: Redemption | None = None
    catalog_offer_id: int | None = Field(
        None,
        description="The catalog offer it was written for: issuing it granted that offer,"
        " and its redemption is a use of it.",
    )


class OfferRequest(StrictModel):
    """A request for an offer, on ``proffer.offer-requests`` keyed like the customer's events.

    Its id is deterministic (a rule firing: tenant, customer, rule, source offset; the
    API: an id the gateway makes once), and the offer id follows from it.
    """

    schema_version: Literal[1] = 1
    kind: Literal["request"] = "request"
    request_id: str = Field(min_length=1, max_length=200)
    tenant_id: TenantId
    external_customer_id: ExternalId
    source: RequestSource
    rule_id: str | None = None
    rule_version: int | None = None
    requested_at: UtcDatetime
    requested_by: Text | None = Field(None, description="The API key's name, for API requests.")
    signals: CustomerProfile | None = Field(
        None, description="The profile the rule saw; None: the offers agent reads it."
    )
    after_event_offset: int | None = Field(
        None,
        ge=0,
        description="The offset on proffer.events of the customer's last record the"
        " gateway had accepted when it made the request (same key, so same partition):"
        " the offers agent decides once the customer's profile has applied it (waiting a"
        " few seconds at most). None: no wait.",
    )


class Verdict(BaseModel):
    """One policy check of a draft: passed, corrected (how) or rejected (why)."""

    model_config = ConfigDict(frozen=True)  # drafts share one passed verdict per check

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
    signals: CustomerProfile | None = Field(None, description="The profile the decision saw.")
    writer: WriterTrace | None = None
    draft: OfferDraft | None = None
    verdicts: list[Verdict] = Field(default_factory=list)
    catalog: CatalogBrief | None = Field(
        None, description="The catalog offer chosen for the rule's catalog hints, if any."
    )
    suppressed: list[str] = Field(
        default_factory=list, description="Why no offer was made (cooldown, policy, ...)."
    )


CommandAction = Literal[
    "transition", "seen", "clicked", "redeem", "expire", "catalog_granted", "catalog_refused"
]


class OfferCommand(StrictModel):
    """A change asked of a customer's offers, on ``proffer.offer-requests`` beside requests.

    ``transition`` (the API: ``status``), ``seen`` and ``clicked`` (an engagement event:
    ``offer_id``), ``redeem`` (a purchase event: ``offer_id`` or ``code``), ``expire`` (the
    expiry timer), ``catalog_granted`` and ``catalog_refused`` (the catalog owner's answer
    to the grant of an offer written for a catalog offer: ``offer_id``, and why refused in
    ``reason``). The offers agent that owns the customer applies it once: its id is
    remembered, and ``issued_at`` is the time of the change, so a replay changes nothing.
    """

    schema_version: Literal[1] = 1
    kind: Literal["command"] = "command"
    command_id: str = Field(min_length=1, max_length=300)
    tenant_id: TenantId
    external_customer_id: ExternalId
    action: CommandAction
    offer_id: int | None = Field(None, ge=1, lt=2**53)
    status: OfferStatus | None = Field(None, description="The status asked for (transition).")
    code: Text | None = Field(
        None, max_length=200, description="The offer code a purchase carried (redeem)."
    )
    amount: Decimal | None = Field(
        None, ge=0, le=10**12, allow_inf_nan=False, description="The purchase's amount."
    )
    cause: Text = Field(
        max_length=300, description="Who or what asks: an API key's name, an event id, a timer."
    )
    reason: Text | None = Field(None, max_length=500, description="Why, as the caller said.")
    issued_at: UtcDatetime

    @model_validator(mode="after")
    def _has_what_its_action_needs(self) -> OfferCommand:
        if self.action == "transition" and self.status is None:
            raise ValueError("a transition names the status asked for")
        if self.action == "redeem" and self.offer_id is None and not self.code:
            raise ValueError("a redemption names the offer's id or code")
        if self.action not in ("transition", "redeem") and self.offer_id is None:
            raise ValueError(f"{self.action} names the offer's id")
        return self


def _kind(value: object) -> str:
    """Requests came before commands and carry no ``kind``."""
    if isinstance(value, dict):
        return str(value.get("kind", "request"))
    return str(getattr(value, "kind", "request"))


class OfferRequestsRecord(
    RootModel[
        Annotated[
            Annotated[OfferRequest, Tag("request")] | Annotated[OfferCommand, Tag("command")],
            Discriminator(_kind),
        ]
    ]
):
    """A record of ``proffer.offer-requests``: a request for an offer (``kind`` "request",
    or none), or a command (``kind`` "command")."""


class CommandOutcome(BaseModel):
    """What became of a command from the API, on ``proffer.offer-command-outcomes``.

    The gateway waits for it (through PostgreSQL) to answer the call that sent it.
    """

    schema_version: Literal[1] = 1
    command_id: str
    tenant_id: TenantId
    offer_id: int
    outcome: Literal["applied", "rejected"]
    status: OfferStatus | None = Field(None, description="The offer's status after it.")
    version: int = Field(0, description="The offer's version after it.")
    reason: str | None = Field(None, description="Why it was rejected.")
    allowed: list[OfferStatus] = Field(
        default_factory=list, description="The statuses the offer may move to from ``status``."
    )
    occurred_at: UtcDatetime


OfferEventType = Literal[
    "offer.generated",
    "offer.suppressed",
    "offer.approved",
    "offer.sent",
    "offer.seen",
    "offer.clicked",
    "offer.redeemed",
    "offer.expired",
    "offer.redemption_rejected",
]


class OfferEvent(BaseModel):
    """One change of an offer, or one decision not to make one, on ``proffer.offers``.

    ``version`` is the offer's after the change (one more per change; a rejected
    redemption changes nothing and keeps it); ``offer`` is its snapshot then.
    """

    schema_version: Literal[1] = 1
    event_id: str
    event_type: OfferEventType
    tenant_id: TenantId
    customer_id: int
    external_customer_id: str
    request_id: str | None = Field(None, description="The request, for generated/suppressed.")
    command_id: str | None = Field(None, description="The command, for later changes.")
    offer_id: int | None = None
    previous_status: OfferStatus | None = None
    status: OfferStatus | None = None
    version: int = 0
    occurred_at: UtcDatetime
    cause: str = Field(description="What caused it: an API key's name, a rule, a timer, ...")
    reason: str | None = Field(
        None, description="Why: the caller's words for a change, or why a redemption was rejected."
    )
    offer: Offer | None = None
    trace: DecisionTrace | None = Field(
        None, description="The decision's trace, for generated and suppressed."
    )

"""The decisions topic's messages: a decision made (with its trace), and a reaction to it.

Both travel on ``proffer.decisions`` keyed by tenant and customer (the customer's
partition), so a decision and its reactions are read in order.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, RootModel

from proffer_stream.catalog.models import OfferOption
from proffer_stream.core.types import StrictModel, TenantId, UtcDatetime
from proffer_stream.decisions.context import DecisionContext

CandidateKind = Literal["offer", "catalog"]
"""An open offer made for the customer (approved or sent), or a catalog offer."""
Surface = Literal["personalized_offers", "placements"]
ReactionKind = Literal[
    "viewed",
    "dismissed",
    "shown",
    "accepted",
    "declined",
    "fulfillment_started",
    "fulfillment_completed",
    "fulfillment_failed",
]


def candidate_ref(kind: CandidateKind, item_id: int) -> str:
    """How an answer names a candidate: ``catalog_4519...`` or ``offer_1902...``."""
    return f"{kind}_{item_id}"


class Score(StrictModel):
    """A candidate's transparent score: priority first, then expected value.

    ``expected_value = take_up * margin``: ``take_up`` is the prior chance the customer
    takes an offer of this kind (until experiments learn it), ``margin`` what an order
    brings after the offer's discount (the customer's average order, else 1).
    """

    priority: int
    take_up: float
    margin: float
    expected_value: float


class TracedCandidate(StrictModel):
    """One candidate of a decision: eligible or not, its score, and why it lost."""

    ref: str
    kind: CandidateKind
    id: int
    eligible: bool | None = Field(
        description="None: not checked, it ranked below the choice (it lost on its score)."
    )
    score: Score
    lost_because: list[str] = Field(default_factory=list, description="Empty for the chosen one.")


class Choice(StrictModel):
    """What a decision chose, and the probability with which it chose it."""

    ref: str
    kind: CandidateKind
    id: int
    probability: float = Field(1.0, ge=0, le=1, description="1.0 until experiments exist.")
    title: str | None = None
    description: str | None = None
    code: str | None = Field(None, description="The open offer's code, for redemption.")
    options: list[OfferOption] = Field(
        default_factory=list, description="The options shown to take it up."
    )


class DecisionMade(StrictModel):
    """``decision.made``: every decision, "none" included, logged before it is answered."""

    schema_version: Literal[1] = 1
    kind: Literal["decision.made"] = "decision.made"
    decision_id: Annotated[str, Field(min_length=1, max_length=100)]
    tenant_id: TenantId
    external_customer_id: str
    surface: Surface
    decided_at: UtcDatetime
    expires_at: UtcDatetime
    customer_known: bool
    context: DecisionContext
    choice: Choice | None
    none_because: str | None = Field(None, description="Why nothing was chosen.")
    candidates: list[TracedCandidate] = Field(
        description="Best first: the ineligible candidates ranked above the choice, the"
        " choice, and the candidates ranked below it, each kind of loser up to a bound."
    )
    excluded: dict[str, int] = Field(
        default_factory=dict,
        description="Candidates past the bound, counted by why they lost.",
    )


class DecisionReaction(StrictModel):
    """``decision.reaction``: what the customer did with a decision's offer."""

    schema_version: Literal[1] = 1
    kind: Literal["decision.reaction"] = "decision.reaction"
    reaction_id: Annotated[str, Field(min_length=1, max_length=100)]
    decision_id: str
    tenant_id: TenantId
    external_customer_id: str
    reaction: ReactionKind
    at: UtcDatetime
    option_id: str | None = None
    fulfillment_id: str | None = None
    failure_reason: str | None = Field(None, max_length=1_000)
    source: str = Field("api", max_length=200)


class DecisionRecord(
    RootModel[Annotated[DecisionMade | DecisionReaction, Field(discriminator="kind")]]
):
    """A record of ``proffer.decisions``: a decision or a reaction (``kind`` says)."""

"""The decision: of the customer's open offers and the catalog offers eligible for them
in this context, the one with the highest score; and the trace of every candidate.

Pure: the caller passes the catalog (from memory), what one PostgreSQL read said of the
customer (profile, open offers, standings and counts) and now.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from proffer_stream.catalog.models import CatalogDefinition
from proffer_stream.catalog.views import MemberContext
from proffer_stream.decisions.context import DecisionContext
from proffer_stream.decisions.eligibility import catalog_misses, open_offer_misses
from proffer_stream.decisions.models import CandidateKind, Score, TracedCandidate, candidate_ref
from proffer_stream.offers.models import Offer
from proffer_stream.signals.models import CustomerProfile

TAKE_UP: dict[CandidateKind, float] = {"offer": 0.2, "catalog": 0.1}
"""Prior chance that a customer takes up an offer of each kind: one made for them, one of
the catalog. Experiments will learn these; until then they only break priority ties."""
MOST_INELIGIBLE_TRACED = 50
"""Ineligible candidates the trace lists one by one; the rest are counted by reason."""


@dataclass(frozen=True)
class Candidate:
    """An eligible candidate with its score."""

    kind: CandidateKind
    item: Offer | CatalogDefinition
    score: Score

    @property
    def ref(self) -> str:
        return candidate_ref(self.kind, self.item.id)

    def rank(self) -> tuple[int, float, bool, int]:
        """Higher ranks first: priority, expected value, an open offer, the lower id."""
        return (self.score.priority, self.score.expected_value, self.kind == "offer", -self.item.id)


@dataclass(frozen=True)
class Decided:
    """A decision's outcome: the chosen candidate (None: nothing fits) and its trace."""

    chosen: Candidate | None
    candidates: list[TracedCandidate]
    excluded: dict[str, int]
    none_because: str | None


def average_order(profile: CustomerProfile | None) -> float:
    """The customer's average purchase amount; 1 without purchases (a unit order)."""
    if profile is None or profile.purchase_count == 0:
        return 1.0
    return float(profile.purchase_total / Decimal(profile.purchase_count))


def score(
    kind: CandidateKind,
    priority: int,
    discount_percent: int | None,
    discount_amount: Decimal | None,
    order: float,
) -> Score:
    """The transparent score of a candidate (see :class:`Score`)."""
    margin = order * (1 - (discount_percent or 0) / 100) - float(discount_amount or 0)
    margin = max(margin, 0.0)
    take_up = TAKE_UP[kind]
    return Score(
        priority=priority,
        take_up=take_up,
        margin=round(margin, 4),
        expected_value=round(take_up * margin, 6),
    )


def decide(
    open_offers: Sequence[Offer],
    catalog: Iterable[CatalogDefinition],
    member: MemberContext,
    context: DecisionContext,
    now: datetime,
) -> Decided:
    """The best candidate for the customer in ``context`` at ``now``, and why each lost."""
    order = average_order(member.profile)
    eligible: list[Candidate] = []
    ineligible: list[TracedCandidate] = []
    for offer in open_offers:
        misses = open_offer_misses(offer, now)
        if misses:
            ineligible.append(_ineligible("offer", offer.id, misses))
            continue
        offer_score = score("offer", 0, offer.offer_terms.discount_percent, None, order)
        eligible.append(Candidate("offer", offer, offer_score))
    for item in catalog:
        misses = catalog_misses(
            item,
            member.standing(item.id),
            member.counts_of(item.id),
            member.profile,
            context,
            now,
        )
        if misses:
            ineligible.append(_ineligible("catalog", item.id, misses))
            continue
        item_score = score(
            "catalog",
            item.priority,
            item.terms.discount_percent if item.terms else None,
            item.terms.discount_amount if item.terms else None,
            order,
        )
        eligible.append(Candidate("catalog", item, item_score))
    eligible.sort(key=Candidate.rank, reverse=True)
    chosen = eligible[0] if eligible else None
    traced = [_traced(candidate, chosen) for candidate in eligible]
    traced += ineligible[:MOST_INELIGIBLE_TRACED]
    excluded = Counter(c.lost_because[0] for c in ineligible[MOST_INELIGIBLE_TRACED:])
    return Decided(chosen, traced, dict(excluded), None if chosen else _none_because(ineligible))


def _ineligible(kind: CandidateKind, item_id: int, misses: list[str]) -> TracedCandidate:
    return TracedCandidate(
        ref=candidate_ref(kind, item_id), kind=kind, id=item_id, eligible=False, lost_because=misses
    )


def _traced(candidate: Candidate, chosen: Candidate | None) -> TracedCandidate:
    lost = [] if chosen is None or candidate is chosen else [_lost_to(candidate, chosen)]
    return TracedCandidate(
        ref=candidate.ref,
        kind=candidate.kind,
        id=candidate.item.id,
        eligible=True,
        score=candidate.score,
        lost_because=lost,
    )


def _lost_to(candidate: Candidate, winner: Candidate) -> str:
    mine, theirs = candidate.score, winner.score
    if mine.priority < theirs.priority:
        return f"priority {mine.priority} < {theirs.priority} of {winner.ref}"
    if mine.expected_value < theirs.expected_value:
        return f"expected value {mine.expected_value} < {theirs.expected_value} of {winner.ref}"
    return f"tied with {winner.ref}, which ranks first (open offers, then the lower id)"


def _none_because(ineligible: list[TracedCandidate]) -> str:
    if not ineligible:
        return "no candidates: no open offers and no catalog offers"
    return f"none of {len(ineligible)} candidate(s) is eligible"

"""The decision: of the customer's open offers and the catalog offers eligible for them
in this context, the one with the highest score; and the trace of the candidates.

Every candidate is scored (cheap arithmetic), then they are taken in rank order: each is
checked for eligibility until the first eligible one, which is chosen. So a candidate
ranked above the choice lost because it is not eligible (the trace says why), and one
ranked below lost on its score whether eligible or not (not checked: the trace says
by what it ranked lower). The trace names the first :data:`MOST_TRACED` of each kind of
loser; the rest are counted by reason.

Pure: the caller passes the catalog (from memory), what one PostgreSQL read said of the
customer (profile, open offers, standings and counts) and now.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from heapq import merge
from itertools import islice

from proffer_stream.catalog.models import CatalogDefinition
from proffer_stream.catalog.views import MemberContext
from proffer_stream.decisions.context import DecisionContext
from proffer_stream.decisions.eligibility import catalog_miss, catalog_misses, open_offer_misses
from proffer_stream.decisions.models import CandidateKind, Score, TracedCandidate, candidate_ref
from proffer_stream.offers.models import Offer
from proffer_stream.signals.models import CustomerProfile

TAKE_UP: dict[CandidateKind, float] = {"offer": 0.2, "catalog": 0.1}
"""Prior chance that a customer takes up an offer of each kind: one made for them, one of
the catalog. Experiments will learn these; until then they weigh margins against each
other within a priority."""
MOST_TRACED = 10
"""Ineligible candidates, and candidates ranked below the choice, that the trace names
one by one (each); the rest are counted by reason."""
RANKED_BELOW = "ranked below the choice"
SMALLEST_SCALED_ORDER = 1e-6
"""Below this average order (none is: money has cents) every candidate is ranked in full,
as products of a subnormal order and different shares can round to the same margin."""
SHOWN = "shown already in this flow"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A candidate with its score."""

    kind: CandidateKind
    item: Offer | CatalogDefinition
    priority: int
    take_up: float
    margin: float
    expected_value: float

    @property
    def ref(self) -> str:
        return candidate_ref(self.kind, self.item.id)

    def rank(self) -> tuple[int, float, bool, int]:
        """Higher ranks first: priority, expected value, an open offer, the lower id."""
        return (self.priority, self.expected_value, self.kind == "offer", -self.item.id)

    @property
    def score(self) -> Score:
        return Score(
            priority=self.priority,
            take_up=self.take_up,
            margin=round(self.margin, 4),
            expected_value=round(self.expected_value, 6),
        )


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


def scored(
    kind: CandidateKind,
    item: Offer | CatalogDefinition,
    priority: int,
    discount_percent: int | None,
    discount_amount: Decimal | None,
    order: float,
) -> Candidate:
    """The candidate with its transparent score (see :class:`Score`)."""
    take_up = TAKE_UP[kind]
    margin = _margin(order, discount_percent, discount_amount)
    return Candidate(kind, item, priority, take_up, margin, take_up * margin)


def _margin(order: float, percent: int | None, amount: Decimal | None) -> float:
    margin = order * (1 - (percent or 0) / 100) - (float(amount) if amount else 0.0)
    return margin if margin > 0 else 0.0


Ranked = tuple[int, float, bool, int, Offer | CatalogDefinition]
"""A candidate as ranked: priority, expected value, whether an open offer, minus its id
(tuples compare in that order, never reaching the item: ids are unique per kind)."""
ByPriority = Sequence[tuple[int, Sequence[CatalogDefinition]]]
"""Catalog offers grouped by priority, highest first (made once per catalog change)."""


def by_priority(catalog: Iterable[CatalogDefinition]) -> ByPriority:
    """The offers grouped by priority, highest first; within a group, in rank order for
    every customer those whose rank does not depend on the customer (no discount amount:
    a percentage scales every margin alike), then the others (see :func:`in_rank_order`)."""
    groups: dict[int, list[CatalogDefinition]] = {}
    for item in catalog:
        groups.setdefault(item.priority, []).append(item)
    return sorted(
        ((priority, sorted(items, key=_standing_order)) for priority, items in groups.items()),
        key=lambda group: group[0],
        reverse=True,
    )


def _has_amount(item: CatalogDefinition) -> bool:
    return item.terms is not None and item.terms.discount_amount is not None


def _standing_order(item: CatalogDefinition) -> tuple[bool, float, int]:
    """Offers without an amount first, by the share of an order they leave (highest
    first), then by id; the others after them."""
    if _has_amount(item):
        return (True, 0.0, item.id)
    percent = item.terms.discount_percent if item.terms is not None else None
    return (False, -(1 - (percent or 0) / 100), item.id)


def in_rank_order(
    open_offers: Sequence[Offer], catalog: ByPriority, order: float
) -> Iterator[Ranked]:
    """Every candidate's rank, best first, one priority at a time: a decision that
    chooses within the highest priorities never scores the rest, and within a priority
    the offers without an amount are ranked lazily, in the order :func:`by_priority`
    put them in (for an order of at least :data:`SMALLEST_SCALED_ORDER` it is their rank
    order), merged with the others."""
    groups: dict[int, Sequence[CatalogDefinition]] = dict(catalog)
    if open_offers:
        groups.setdefault(0, ())
    for priority in sorted(groups, reverse=True):
        items = groups[priority]
        extra: Sequence[Offer] = open_offers if priority == 0 else ()
        if order < SMALLEST_SCALED_ORDER:  # 0, or so small that margins round alike
            everything: list[Offer | CatalogDefinition] = [*items, *extra]
            yield from sorted((_rank(i, priority, order) for i in everything), reverse=True)
            continue
        split = bisect_left(items, True, key=_has_amount)
        fixed = (_rank(item, priority, order) for item in islice(items, split))
        rest: list[Offer | CatalogDefinition] = [*islice(items, split, None), *extra]
        others = sorted((_rank(item, priority, order) for item in rest), reverse=True)
        yield from merge(fixed, others, reverse=True)


def _rank(item: Offer | CatalogDefinition, priority: int, order: float) -> Ranked:
    if isinstance(item, Offer):
        margin = _margin(order, item.offer_terms.discount_percent, None)
        return (priority, TAKE_UP["offer"] * margin, True, -item.id, item)
    terms = item.terms
    margin = _margin(order, terms.discount_percent, terms.discount_amount) if terms else order
    return (priority, TAKE_UP["catalog"] * margin, False, -item.id, item)


def candidate(rank: Ranked, order: float) -> Candidate:
    """The ranked candidate with its score."""
    item = rank[4]
    if isinstance(item, Offer):
        return scored("offer", item, 0, item.offer_terms.discount_percent, None, order)
    terms = item.terms
    percent, amount = (terms.discount_percent, terms.discount_amount) if terms else (None, None)
    return scored("catalog", item, item.priority, percent, amount, order)


def decide(
    open_offers: Sequence[Offer],
    catalog: ByPriority,
    member: MemberContext,
    context: DecisionContext,
    now: datetime,
    shown: frozenset[str] = frozenset(),
) -> Decided:
    """The best eligible candidate for the customer in ``context`` at ``now``, and why
    the others lost; none of ``shown`` (candidate refs: what the flow showed already)."""
    order = average_order(member.profile)
    total = len(open_offers) + sum(len(items) for _, items in catalog)
    ranks = in_rank_order(open_offers, catalog, order)
    traced: list[TracedCandidate] = []
    excluded: Counter[str] = Counter()
    chosen: Candidate | None = None
    ineligible = seen = 0
    for rank in ranks:
        seen += 1
        miss = SHOWN if shown and _ref(rank[4]) in shown else _miss(rank[4], member, context, now)
        if miss is None:
            chosen = candidate(rank, order)
            traced.append(_traced(chosen, True, []))
            break
        if ineligible < MOST_TRACED:
            ineligible += 1
            misses = [miss] if miss == SHOWN else _misses(rank[4], member, context, now)
            traced.append(_traced(candidate(rank, order), False, misses))
        else:
            excluded[miss] += 1
    if chosen is not None:
        for below in islice(ranks, MOST_TRACED):
            seen += 1
            loser = candidate(below, order)
            traced.append(_traced(loser, None, [_lost_to(loser, chosen)]))
        if total > seen:
            excluded[RANKED_BELOW] = total - seen
    none_because = None if chosen else _none_because(total)
    return Decided(chosen, traced, dict(excluded), none_because)


def _ref(item: Offer | CatalogDefinition) -> str:
    return candidate_ref("offer" if isinstance(item, Offer) else "catalog", item.id)


def _miss(
    item: Offer | CatalogDefinition, member: MemberContext, context: DecisionContext, now: datetime
) -> str | None:
    """The first reason the candidate is not eligible, in a word; None: it is."""
    if isinstance(item, Offer):
        return "not open" if open_offer_misses(item, now) else None
    return catalog_miss(
        item, member.standing(item.id), member.counts_of(item.id), member.profile, context, now
    )


def _misses(
    item: Offer | CatalogDefinition, member: MemberContext, context: DecisionContext, now: datetime
) -> list[str]:
    """Every reason the candidate is not eligible, in words."""
    if isinstance(item, Offer):
        return open_offer_misses(item, now)
    return catalog_misses(
        item, member.standing(item.id), member.counts_of(item.id), member.profile, context, now
    )


def _traced(candidate: Candidate, eligible: bool | None, lost: list[str]) -> TracedCandidate:
    return TracedCandidate(
        ref=candidate.ref,
        kind=candidate.kind,
        id=candidate.item.id,
        eligible=eligible,
        score=candidate.score,
        lost_because=lost,
    )


def _lost_to(candidate: Candidate, winner: Candidate) -> str:
    if candidate.priority < winner.priority:
        return f"priority {candidate.priority} < {winner.priority} of {winner.ref}"
    if candidate.expected_value < winner.expected_value:
        return (
            f"expected value {round(candidate.expected_value, 6)}"
            f" < {round(winner.expected_value, 6)} of {winner.ref}"
        )
    return f"tied with {winner.ref}, which ranks first (open offers, then the lower id)"


def _none_because(count: int) -> str:
    if count == 0:
        return "no candidates: no open offers and no catalog offers"
    return f"none of {count} candidate(s) is eligible"

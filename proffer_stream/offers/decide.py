"""The offers agent's core: from (a customer's offers, a request, now) to one decision. Pure.

A decision is made in two steps around the writer, which may be a model that takes
seconds: :func:`suppression` says whether to write at all, :func:`conclude` judges the
draft and makes the offer, or records why none was made. Either way the outcome is one
:class:`OfferEvent`, and the customer's state remembers the request so that a replay
decides nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from proffer_stream.core.identity import customer_id, offer_id
from proffer_stream.offers.models import (
    CatalogBrief,
    DecisionTrace,
    Offer,
    OfferDraft,
    OfferEvent,
    OfferRequest,
    WriterTrace,
)
from proffer_stream.offers.policy import Policy, judge, reachable_channels
from proffer_stream.offers.rules import TriggerRule
from proffer_stream.signals.models import CustomerProfile

MAX_KEPT_OFFERS = 100
"""Most offers the agent keeps per customer (the newest); older ones live in PostgreSQL."""
MAX_REMEMBERED_REQUESTS = 1000
"""Most request and command ids remembered per customer, to decide a re-sent one once."""


class CustomerOffers(BaseModel):
    """What the offers agent owns for one customer: their offers and the requests decided."""

    schema_version: Literal[1] = 1
    tenant_id: str
    external_customer_id: str
    offers: dict[int, Offer] = Field(default_factory=dict)
    decided: list[str] = Field(default_factory=list)
    last_offer_at: datetime | None = None
    last_redeemed_at: datetime | None = None
    source_offset: int = -1
    awaiting_grant: dict[int, OfferEvent] = Field(
        default_factory=dict,
        description="Decisions of offers written for a catalog offer, held until its owner"
        " answers their grant (by offer id).",
    )


def restored_offers(
    tenant_id: str,
    external_customer_id: str,
    offers: Iterable[Offer],
    decided: Iterable[tuple[datetime, str]],
    *,
    last_offer_at: datetime | None = None,
    last_redeemed_at: datetime | None = None,
) -> CustomerOffers:
    """A customer's offers as PostgreSQL kept them, for a worker whose table lost them.

    ``offers``: the customer's offers at their latest version; ``decided``: the ids of
    the requests and commands decided for the customer, with when. The state keeps what
    the agent would have kept: the newest :data:`MAX_KEPT_OFFERS` offers, the newest
    :data:`MAX_REMEMBERED_REQUESTS` ids (oldest first, as :func:`remember` keeps them),
    and the times the cooldowns start from (the latest of those given and those the
    offers say). Its source offset is -1: the offsets it counted were of a log the
    broker no longer has.
    """
    newest = sorted(offers, key=lambda o: (o.generated_at, o.id))[-MAX_KEPT_OFFERS:]
    last_decided: dict[str, datetime] = {}
    for at, message_id in sorted(decided):
        last_decided.pop(message_id, None)  # re-inserted: its latest time orders it
        last_decided[message_id] = at
    offered = [o.generated_at for o in newest]
    redeemed = [o.redeemed_at for o in newest if o.redeemed_at is not None]
    return CustomerOffers(
        tenant_id=tenant_id,
        external_customer_id=external_customer_id,
        offers={o.id: o for o in newest},
        decided=list(last_decided)[-MAX_REMEMBERED_REQUESTS:],
        last_offer_at=_latest(last_offer_at, *offered),
        last_redeemed_at=_latest(last_redeemed_at, *redeemed),
        source_offset=-1,
    )


def _latest(*times: datetime | None) -> datetime | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None


def already_decided(state: CustomerOffers, message_id: str, offset: int) -> bool:
    """A replayed record (at or below the last offset), or a request or command with this
    id decided before."""
    return offset <= state.source_offset or message_id in state.decided


def remember(state: CustomerOffers, message_id: str, offset: int) -> None:
    """Record a request or command as decided, so that a replay decides it no more."""
    state.decided.append(message_id)
    del state.decided[:-MAX_REMEMBERED_REQUESTS]
    state.source_offset = max(state.source_offset, offset)


def suppression(
    state: CustomerOffers,
    request: OfferRequest,
    signals: CustomerProfile | None,
    rule: TriggerRule | None,
    policy: Policy,
    now: datetime,
) -> list[str]:
    """Why no offer should be written for this request; empty when one should.

    ``rule``: the tenant's rule of the request's rule id now in force, if any.
    """
    if signals is None:
        return ["unknown customer: no events seen for this customer id"]
    reasons = []
    if request.rule_id is not None and (rule is None or not rule.enabled):
        state_of_rule = "removed" if rule is None else "disabled"
        reasons.append(f"rule disabled: {request.rule_id} was {state_of_rule} since it fired")
    cooldown = timedelta(hours=policy.offer_cooldown_hours)
    automatic = request.source != "api"
    for what, at in (("made", state.last_offer_at), ("redeemed", state.last_redeemed_at)):
        if automatic and at is not None and now - at < cooldown:
            reasons.append(
                f"cooldown: an offer was {what} at {at.isoformat()},"
                f" within {policy.offer_cooldown_hours:g} hours"
            )
    return reasons


def conclude(
    state: CustomerOffers,
    request: OfferRequest,
    offset: int,
    *,
    signals: CustomerProfile | None,
    rule: TriggerRule | None,
    policy: Policy,
    now: datetime,
    suppressed: list[str],
    written: tuple[OfferDraft, WriterTrace] | None,
    brief: CatalogBrief | None = None,
) -> OfferEvent:
    """Judge the draft (if any), update ``state``, and return the decision's event.

    ``brief``: the catalog offer the draft was written for, whose terms bound it."""
    trace = DecisionTrace(
        request_id=request.request_id,
        source=request.source,
        rule_id=request.rule_id,
        rule_version=request.rule_version,
        signals=signals,
        catalog=brief,
    )
    offer = None
    if written is not None and signals is not None and not suppressed:
        offer = _offer(request, signals, rule, policy, now, written, trace)
        if offer is None:
            suppressed = ["rejected by policy: " + "; ".join(_rejections(trace))]
    trace.suppressed = suppressed
    _remember(state, request, offset, offer, now)
    return _event(request, signals, offer, trace, now)


def _offer(
    request: OfferRequest,
    signals: CustomerProfile,
    rule: TriggerRule | None,
    policy: Policy,
    now: datetime,
    written: tuple[OfferDraft, WriterTrace],
    trace: DecisionTrace,
) -> Offer | None:
    draft, writer = written
    trace.writer, trace.draft = writer, draft
    new_id = offer_id(request.tenant_id, request.request_id)
    judged = judge(
        draft,
        policy,
        reachable=reachable_channels(signals),
        hints=rule.hints if rule else None,
        offer_id=new_id,
        profile=signals,
        now=now,
        brief=trace.catalog,
    )
    trace.verdicts = judged.verdicts
    if judged.draft is None:
        return None
    final = judged.draft
    return Offer(
        id=new_id,
        customer_id=signals.customer_id,
        external_customer_id=signals.external_id,
        tenant_id=request.tenant_id,
        headline=final.headline,
        body_copy=final.body_copy,
        offer_type=final.offer_type,
        offer_terms=final.offer_terms,
        channel=final.channel,
        ai_reasoning=final.reasoning,
        expires_at=now + timedelta(days=final.offer_terms.valid_days),
        generated_at=now,
        request_id=request.request_id,
        rule_id=request.rule_id,
        rule_version=request.rule_version,
        # The built-in writer wrote it when the model fell back (the trace says why).
        writer="built-in" if writer.fallback_reason else writer.model or writer.kind,
        catalog_offer_id=trace.catalog.catalog_offer_id if trace.catalog else None,
    )


def hold_for_grant(state: CustomerOffers, decision: OfferEvent) -> Offer | None:
    """Hold the decision of an offer written for a catalog offer until the catalog
    offer's owner grants it (the offer is kept out of the customer's offers meanwhile);
    the offer to ask the grant for. None: the decision is not held (issue it now)."""
    offer = decision.offer
    if offer is None or offer.catalog_offer_id is None:
        return None
    del state.offers[offer.id]
    state.awaiting_grant[offer.id] = decision
    for oldest in list(state.awaiting_grant)[:-MAX_KEPT_OFFERS]:  # answers never came
        del state.awaiting_grant[oldest]
    return offer


def _rejections(trace: DecisionTrace) -> list[str]:
    return [f"{v.check}: {v.detail}" for v in trace.verdicts if v.outcome == "rejected"]


def _remember(
    state: CustomerOffers,
    request: OfferRequest,
    offset: int,
    offer: Offer | None,
    now: datetime,
) -> None:
    remember(state, request.request_id, offset)
    if offer is None:
        return
    state.offers[offer.id] = offer
    state.last_offer_at = now
    for old in sorted(state.offers, key=lambda i: state.offers[i].generated_at)[:-MAX_KEPT_OFFERS]:
        del state.offers[old]


def _event(
    request: OfferRequest,
    signals: CustomerProfile | None,
    offer: Offer | None,
    trace: DecisionTrace,
    now: datetime,
) -> OfferEvent:
    customer = customer_id(request.tenant_id, request.external_customer_id)
    cause = request.requested_by or (f"rule {request.rule_id}" if request.rule_id else "batch")
    return OfferEvent(
        event_id=f"{request.request_id}:decided",
        event_type="offer.generated" if offer else "offer.suppressed",
        tenant_id=request.tenant_id,
        customer_id=customer,
        external_customer_id=request.external_customer_id,
        request_id=request.request_id,
        offer_id=offer.id if offer else None,
        status=offer.status if offer else None,
        version=offer.version if offer else 0,
        occurred_at=now,
        cause=cause,
        offer=offer,
        trace=trace,
    )

"""Decisions in PostgreSQL: what a decision reads of a customer (one query), and the
projection of ``proffer.decisions`` (decisions, reactions, fulfilments) with its reads.

Every write is idempotent: a decision and a reaction are recorded once by id, and a
fulfilment leaves ``in_progress`` once, for its first ``completed`` or ``failed``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from proffer_stream.catalog.models import OfferCounts
from proffer_stream.catalog.views import MemberContext
from proffer_stream.db.catalog_reads import ending_of, standing_of
from proffer_stream.decisions.models import DecisionMade, DecisionReaction
from proffer_stream.offers.models import Offer
from proffer_stream.signals.models import CustomerProfile

FULFILLMENT_ENDS = {"fulfillment_completed": "completed", "fulfillment_failed": "failed"}

_INPUTS = """
SELECT
    (SELECT signals FROM customers WHERE tenant_id = $1 AND external_id = $2) AS profile,
    (SELECT coalesce(json_agg(offer), '[]') FROM offers
     WHERE tenant_id = $1 AND customer_id = $3 AND status IN ('approved', 'sent')
       AND expires_at > now()) AS open_offers,
    (SELECT coalesce(json_agg(json_build_array(offer_id, uses, grants, liked,
                                               last_granted_at, last_used_at, held)), '[]')
     FROM catalog_members WHERE tenant_id = $1 AND external_customer_id = $2) AS members,
    (SELECT coalesce(json_agg(json_build_array(offer_id, uses_count, reserved_count,
                                               ending)), '[]')
     FROM catalog_counts WHERE tenant_id = $1 AND offer_id = ANY($4::bigint[])) AS counts
"""
_FLOW_INPUTS = f"""{_INPUTS},
    (SELECT coalesce(array_agg(chosen), '{{}}') FROM decisions_made
     WHERE tenant_id = $1 AND flow_id = $5 AND chosen IS NOT NULL) AS flow_chosen
"""


@dataclass(frozen=True)
class CustomerInputs:
    """What a decision knows of the customer: profile, standings and counts (as the
    member's view), and their open offers."""

    member: MemberContext
    open_offers: list[Offer]
    flow_chosen: frozenset[str] = frozenset()
    """At a placement: what the flow's earlier decisions chose (candidate refs)."""


async def decision_inputs(
    pool: asyncpg.Pool,
    tenant_id: str,
    external_id: str,
    customer_id: int,
    counted_offer_ids: Sequence[int],
    flow_id: str | None = None,
) -> CustomerInputs:
    """In one query: the customer's profile, their open offers (approved or sent, not
    expired), their standing with catalog offers, the counts of ``counted_offer_ids``
    (the offers whose stock matters) and, given a flow, what its decisions chose."""
    args = (tenant_id, external_id, customer_id, list(counted_offer_ids))
    if flow_id is None:
        row = await pool.fetchrow(_INPUTS, *args)
    else:
        row = await pool.fetchrow(_FLOW_INPUTS, *args, flow_id)
    assert row is not None
    profile = (
        None if row["profile"] is None else CustomerProfile.model_validate_json(row["profile"])
    )
    member = MemberContext(
        profile=profile,
        standings={m[0]: standing_of(m) for m in json.loads(row["members"])},
        counts={
            c[0]: OfferCounts.model_construct(
                uses_count=c[1], reserved_count=c[2], ending=ending_of(c[3])
            )
            for c in json.loads(row["counts"])
        },
    )
    offers = [Offer.model_validate(o) for o in json.loads(row["open_offers"])]
    chosen = frozenset(row["flow_chosen"]) if flow_id is not None else frozenset()
    return CustomerInputs(member, offers, chosen)


async def apply_decision_records(
    conn: asyncpg.Connection, records: Sequence[DecisionMade | DecisionReaction]
) -> int:
    """Record each decision and reaction once, and move fulfilments on; return the
    records read."""
    made = [r for r in records if isinstance(r, DecisionMade)]
    reactions = [r for r in records if isinstance(r, DecisionReaction)]
    await _insert_decisions(conn, made)
    await _insert_reactions(conn, reactions)
    await _start_fulfillments(conn, [r for r in reactions if r.reaction == "fulfillment_started"])
    await _end_fulfillments(conn, [r for r in reactions if r.reaction in FULFILLMENT_ENDS])
    return len(records)


async def _insert_decisions(conn: asyncpg.Connection, made: Sequence[DecisionMade]) -> None:
    if not made:
        return
    await conn.execute(
        """
        INSERT INTO decisions_made (tenant_id, decision_id, external_customer_id, surface,
                                    chosen, decided_at, decision, flow_id)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                             $6::timestamptz[], $7::jsonb[], $8::text[])
        ON CONFLICT DO NOTHING
        """,
        [d.tenant_id for d in made],
        [d.decision_id for d in made],
        [d.external_customer_id for d in made],
        [d.surface for d in made],
        [d.choice.ref if d.choice else None for d in made],
        [d.decided_at for d in made],
        [d.model_dump_json() for d in made],
        [d.context.flow_id for d in made],
    )


async def _insert_reactions(
    conn: asyncpg.Connection, reactions: Sequence[DecisionReaction]
) -> None:
    if not reactions:
        return
    await conn.execute(
        """
        INSERT INTO decision_reactions (tenant_id, reaction_id, decision_id, reaction,
                                        option_id, fulfillment_id, at, event)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                             $6::text[], $7::timestamptz[], $8::jsonb[])
        ON CONFLICT DO NOTHING
        """,
        [r.tenant_id for r in reactions],
        [r.reaction_id for r in reactions],
        [r.decision_id for r in reactions],
        [r.reaction for r in reactions],
        [r.option_id for r in reactions],
        [r.fulfillment_id for r in reactions],
        [r.at for r in reactions],
        [r.model_dump_json() for r in reactions],
    )


async def _start_fulfillments(
    conn: asyncpg.Connection, started: Sequence[DecisionReaction]
) -> None:
    if not started:
        return
    await conn.execute(
        """
        INSERT INTO decision_fulfillments (tenant_id, fulfillment_id, decision_id, option_id,
                                           status, created_at, updated_at)
        SELECT t, f, d, o, 'in_progress', a, a
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
             AS s(t, f, d, o, a)
        ON CONFLICT DO NOTHING
        """,
        [r.tenant_id for r in started],
        [r.fulfillment_id for r in started],
        [r.decision_id for r in started],
        [r.option_id for r in started],
        [r.at for r in started],
    )


async def _end_fulfillments(conn: asyncpg.Connection, ended: Sequence[DecisionReaction]) -> None:
    first: dict[tuple[str, str | None], DecisionReaction] = {}
    for reaction in ended:
        first.setdefault((reaction.tenant_id, reaction.fulfillment_id), reaction)
    if not first:
        return
    kept = list(first.values())
    await conn.execute(
        """
        UPDATE decision_fulfillments AS f
        SET status = e.s, failure_reason = e.r, updated_at = e.a
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
             AS e(t, f, s, r, a)
        WHERE f.tenant_id = e.t AND f.fulfillment_id = e.f AND f.status = 'in_progress'
        """,
        [r.tenant_id for r in kept],
        [r.fulfillment_id for r in kept],
        [FULFILLMENT_ENDS[r.reaction] for r in kept],
        [r.failure_reason for r in kept],
        [r.at for r in kept],
    )


async def get_decision(pool: asyncpg.Pool, tenant_id: str, decision_id: str) -> DecisionMade | None:
    """The tenant's decision, once projected."""
    found = await pool.fetchval(
        "SELECT decision FROM decisions_made WHERE tenant_id = $1 AND decision_id = $2",
        tenant_id,
        decision_id,
    )
    return None if found is None else DecisionMade.model_validate_json(found)


@dataclass(frozen=True)
class Fulfillment:
    """An accepted option's fulfilment, as projected."""

    fulfillment_id: str
    decision_id: str
    option_id: str
    status: str
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime


async def get_fulfillment(
    pool: asyncpg.Pool, tenant_id: str, fulfillment_id: str
) -> Fulfillment | None:
    """The tenant's fulfilment, once projected."""
    row = await pool.fetchrow(
        "SELECT fulfillment_id, decision_id, option_id, status, failure_reason, created_at,"
        " updated_at FROM decision_fulfillments WHERE tenant_id = $1 AND fulfillment_id = $2",
        tenant_id,
        fulfillment_id,
    )
    return None if row is None else Fulfillment(**dict(row))


_VIEW = """
SELECT d.decision,
       (SELECT coalesce(json_agg(r.event ORDER BY r.at, r.reaction_id), '[]')
        FROM decision_reactions r
        WHERE r.tenant_id = d.tenant_id AND r.decision_id = d.decision_id) AS reactions,
       (SELECT coalesce(json_agg(json_build_object(
                'id', f.fulfillment_id, 'option_id', f.option_id, 'status', f.status,
                'failure_reason', f.failure_reason, 'created_at', f.created_at,
                'updated_at', f.updated_at) ORDER BY f.created_at), '[]')
        FROM decision_fulfillments f
        WHERE f.tenant_id = d.tenant_id AND f.decision_id = d.decision_id) AS fulfillments,
       (SELECT json_build_object('status', o.status, 'redeemed_at', o.redeemed_at,
                                 'redeemed_amount', o.redeemed_amount)
        FROM offers o
        WHERE o.tenant_id = d.tenant_id AND d.chosen LIKE 'offer\\_%'
          AND o.id = substr(d.chosen, 7)::bigint) AS offer
FROM decisions_made d
WHERE d.tenant_id = $1 AND d.decision_id = $2
"""


async def decision_view(
    pool: asyncpg.Pool, tenant_id: str, decision_id: str
) -> dict[str, Any] | None:
    """The decision with its trace, its reactions, its fulfilments and, when it chose
    an open offer, what became of that offer (redeemed or not)."""
    row = await pool.fetchrow(_VIEW, tenant_id, decision_id)
    if row is None:
        return None
    return {
        "decision": json.loads(row["decision"]),
        "reactions": json.loads(row["reactions"]),
        "fulfillments": json.loads(row["fulfillments"]),
        "offer": None if row["offer"] is None else json.loads(row["offer"]),
    }

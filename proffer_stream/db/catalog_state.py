"""Reading a catalog owner's state back from the projection, after the broker lost it.

The embedded broker keeps nothing across restarts, so the catalog table's changelog may
start empty while PostgreSQL still has the offers, their counts and their members: the
owner then restores an offer (:func:`load_offer_state`) and its members
(:func:`load_member_state`) from the tables of ``008_catalog.sql``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from proffer_stream.catalog.limits import KEPT_TOKENS, KEPT_USE_TIMES, MemberState, OfferState
from proffer_stream.catalog.models import (
    CatalogDefinition,
    CatalogEvent,
    CollectionDefinition,
    IntegrationDefinition,
    MemberCounts,
    OfferCounts,
    Reservation,
)
from proffer_stream.db.catalog import RESERVATIONS

USE_TIMES_KEPT_FOR = timedelta(days=366)
"""How far back a restored member's use times are read (the longest periodic limit)."""


async def load_offer_state(
    conn: asyncpg.Pool | asyncpg.Connection, tenant_id: str, target: str, item_id: int
) -> OfferState | None:
    """The owner's state of a catalog offer (or collection) as PostgreSQL has it, if any.

    Its ``seq`` is the projection's, so the events decided next number on from it.
    """
    if target == "integration":
        row = await conn.fetchrow(
            "SELECT definition, version FROM catalog_integrations WHERE tenant_id = $1 AND id = $2",
            tenant_id,
            item_id,
        )
        if row is None:
            return None
        integration = IntegrationDefinition.model_validate_json(row["definition"])
        return OfferState(integration=integration, seq=row["version"])
    if target == "collection":
        row = await conn.fetchrow(
            "SELECT definition, version FROM catalog_collections WHERE tenant_id = $1 AND id = $2",
            tenant_id,
            item_id,
        )
        if row is None:
            return None
        collection = CollectionDefinition.model_validate_json(row["definition"])
        # Collections have no counts: their events number on from their version.
        return OfferState(collection=collection, seq=row["version"])
    row = await conn.fetchrow(
        """
        SELECT o.definition, c.seq, c.uses_count, c.grants_count, c.reserved_count,
               c.likes_count, c.seen_count, c.clicked_count, c.refusals_count,
               c.released_count, c.ending, a.activity_seq, a.activity_at
          FROM catalog_offers o
          LEFT JOIN LATERAL (
               SELECT max(seq) AS activity_seq, max(at) AS activity_at FROM catalog_activity
                WHERE tenant_id = o.tenant_id AND offer_id = o.id AND target = 'offer'
          ) a ON true
          LEFT JOIN catalog_counts c ON c.tenant_id = o.tenant_id AND c.offer_id = o.id
         WHERE o.tenant_id = $1 AND o.id = $2
        """,
        tenant_id,
        item_id,
    )
    if row is None:
        return None
    offer = CatalogDefinition.model_validate_json(row["definition"])
    counts = OfferCounts.model_validate(
        {
            name: row[name]
            for name in OfferCounts.model_fields
            if name != "ending" and row[name] is not None
        }
    )  # (its buckets are the state's reservations, below)
    seq = max(row["seq"] or 0, row["activity_seq"] or 0)
    # Every command decided left an event at its issued_at, so the latest is the time
    # through which the owner released; the buckets still held are those that end after
    # it: as the newest event left them, else (projected before they were kept) its
    # members' grants (those before it were released, whatever a member's row says).
    through: datetime | None = row["activity_at"]
    if row["ending"] is not None:
        ending = RESERVATIONS.validate_json(row["ending"])
    else:
        ending = await _buckets_of_members(conn, tenant_id, item_id)
    reservations = [r for r in ending if through is None or r.holds_until > through]
    return OfferState(
        offer=offer, counts=counts, seq=seq, reservations=reservations, released_through=through
    )


async def _buckets_of_members(
    conn: asyncpg.Pool | asyncpg.Connection, tenant_id: str, item_id: int
) -> list[Reservation]:
    """An offer's buckets of reservations as its members' held grants name them."""
    buckets = await conn.fetch(
        """
        SELECT (h ->> 'holds_until')::timestamptz AS holds_until, count(*) AS count
          FROM catalog_members m, jsonb_array_elements(m.held) h
         WHERE m.tenant_id = $1 AND m.offer_id = $2 AND m.held IS NOT NULL
           AND h ->> 'holds_until' IS NOT NULL
         GROUP BY 1 ORDER BY 1
        """,
        tenant_id,
        item_id,
    )
    return [Reservation(holds_until=b["holds_until"], count=b["count"]) for b in buckets]


@dataclass
class RestoredMember:
    """A member's state of one catalog offer, and the events decided for them lately
    (so that a command sent again is answered as before)."""

    state: MemberState
    decided: list[CatalogEvent] = field(default_factory=list)


async def load_member_state(
    conn: asyncpg.Pool | asyncpg.Connection,
    tenant_id: str,
    offer_id: int,
    external_customer_id: str,
    now: datetime,
    decided_for: timedelta,
) -> RestoredMember | None:
    """The member's counts, their use times of the last year (and the encoded offers'
    tokens used), and the events decided for them since ``now - decided_for``, if
    PostgreSQL knows the member."""
    row = await conn.fetchrow(
        """
        SELECT uses, grants, liked, last_granted_at, last_used_at, held FROM catalog_members
         WHERE tenant_id = $1 AND offer_id = $2 AND external_customer_id = $3
        """,
        tenant_id,
        offer_id,
        external_customer_id,
    )
    if row is None:
        return None
    used = await conn.fetch(
        """
        SELECT at, event->>'encoded_token_id' AS token FROM catalog_activity
         WHERE tenant_id = $1 AND offer_id = $2 AND external_customer_id = $3
           AND kind = 'used' AND at >= $4
         ORDER BY at DESC LIMIT $5
        """,
        tenant_id,
        offer_id,
        external_customer_id,
        now - USE_TIMES_KEPT_FOR,
        KEPT_USE_TIMES,
    )
    decided = await conn.fetch(
        """
        SELECT event FROM catalog_activity
         WHERE tenant_id = $1 AND offer_id = $2 AND external_customer_id = $3 AND at >= $4
         ORDER BY seq
        """,
        tenant_id,
        offer_id,
        external_customer_id,
        now - decided_for,
    )
    state = MemberState(
        counts=MemberCounts.model_validate(
            {**dict(row), "held": None if row["held"] is None else json.loads(row["held"])}
        ),
        use_times=sorted(r["at"] for r in used),
        used_tokens=[r["token"] for r in reversed(used) if r["token"] is not None][-KEPT_TOKENS:],
    )
    return RestoredMember(state, [CatalogEvent.model_validate_json(r["event"]) for r in decided])

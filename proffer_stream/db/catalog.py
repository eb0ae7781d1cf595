"""The catalog's projection: definitions from ``proffer.catalog``, the owners' decisions
from ``proffer.catalog-events``. Writes for the sink (in its transaction, a statement per
table per batch), reads for the restore of an empty catalog topic.

Every write is idempotent and ordered, so a replay or a late batch never moves a row
back: a definition replaces the stored one only at a higher version, counts only at a
higher per-offer ``seq``, and a decision is recorded once per (tenant, event id).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from typing import TypeVar

import asyncpg
from pydantic import TypeAdapter

from proffer_stream.catalog.models import (
    CatalogDefinition,
    CatalogEvent,
    CollectionDefinition,
    Definition,
    HeldGrant,
    IntegrationDefinition,
    Reservation,
)

T = TypeVar("T")
_HELD: TypeAdapter[list[HeldGrant]] = TypeAdapter(list[HeldGrant])
RESERVATIONS: TypeAdapter[list[Reservation]] = TypeAdapter(list[Reservation])
"""An offer's buckets of reservations as ``catalog_counts.ending`` keeps them (JSON)."""


def newest(items: Iterable[T], key: Callable[[T], Hashable], order: Callable[[T], int]) -> list[T]:
    """The item of highest ``order`` of each ``key`` (one row each: a statement cannot
    update a row twice)."""
    kept: dict[Hashable, T] = {}
    for item in items:
        k = key(item)
        known = kept.get(k)
        if known is None or order(known) < order(item):
            kept[k] = item
    return list(kept.values())


async def apply_catalog_definitions(
    conn: asyncpg.Connection, definitions: Sequence[Definition]
) -> int:
    """Keep each offer, collection and integration at its highest version; return the
    definitions read."""
    offers = [d for d in definitions if isinstance(d, CatalogDefinition)]
    collections = [d for d in definitions if isinstance(d, CollectionDefinition)]
    integrations = [d for d in definitions if isinstance(d, IntegrationDefinition)]
    await _upsert_offers(conn, newest(offers, _id, _version))
    await _upsert_collections(conn, newest(collections, _id, _version))
    await _upsert_integrations(conn, newest(integrations, _id, _version))
    return len(definitions)


def _id(definition: Definition) -> tuple[str, int]:
    return definition.tenant_id, definition.id


def _version(definition: Definition) -> int:
    return definition.version


async def _upsert_offers(conn: asyncpg.Connection, offers: Sequence[CatalogDefinition]) -> None:
    if not offers:
        return
    await conn.execute(
        """
        INSERT INTO catalog_offers AS o (tenant_id, id, version, type, status, definition,
                                         created_at, updated_at, archived_at)
        SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[], $4::text[], $5::text[],
                             $6::jsonb[], $7::timestamptz[], $8::timestamptz[],
                             $9::timestamptz[])
        ON CONFLICT (tenant_id, id) DO UPDATE SET
            version = EXCLUDED.version, type = EXCLUDED.type, status = EXCLUDED.status,
            definition = EXCLUDED.definition, created_at = EXCLUDED.created_at,
            updated_at = EXCLUDED.updated_at, archived_at = EXCLUDED.archived_at
        WHERE o.version < EXCLUDED.version
        """,
        [o.tenant_id for o in offers],
        [o.id for o in offers],
        [o.version for o in offers],
        [o.type for o in offers],
        [o.status for o in offers],
        [o.model_dump_json() for o in offers],
        [o.created_at for o in offers],
        [o.updated_at for o in offers],
        [o.archived_at for o in offers],
    )


async def _upsert_collections(
    conn: asyncpg.Connection, collections: Sequence[CollectionDefinition]
) -> None:
    if not collections:
        return
    await conn.execute(
        """
        INSERT INTO catalog_collections AS c (tenant_id, id, version, definition, created_at,
                                              updated_at, archived_at)
        SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[], $4::jsonb[],
                             $5::timestamptz[], $6::timestamptz[], $7::timestamptz[])
        ON CONFLICT (tenant_id, id) DO UPDATE SET
            version = EXCLUDED.version, definition = EXCLUDED.definition,
            created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
            archived_at = EXCLUDED.archived_at
        WHERE c.version < EXCLUDED.version
        """,
        [c.tenant_id for c in collections],
        [c.id for c in collections],
        [c.version for c in collections],
        [c.model_dump_json() for c in collections],
        [c.created_at for c in collections],
        [c.updated_at for c in collections],
        [c.archived_at for c in collections],
    )


async def _upsert_integrations(
    conn: asyncpg.Connection, integrations: Sequence[IntegrationDefinition]
) -> None:
    if not integrations:
        return
    await conn.execute(
        """
        INSERT INTO catalog_integrations AS i (tenant_id, id, version, definition, created_at,
                                               updated_at, archived_at)
        SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[], $4::jsonb[],
                             $5::timestamptz[], $6::timestamptz[], $7::timestamptz[])
        ON CONFLICT (tenant_id, id) DO UPDATE SET
            version = EXCLUDED.version, definition = EXCLUDED.definition,
            created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at,
            archived_at = EXCLUDED.archived_at
        WHERE i.version < EXCLUDED.version
        """,
        [i.tenant_id for i in integrations],
        [i.id for i in integrations],
        [i.version for i in integrations],
        [i.model_dump_json() for i in integrations],
        [i.created_at for i in integrations],
        [i.updated_at for i in integrations],
        [i.archived_at for i in integrations],
    )


async def apply_catalog_events(conn: asyncpg.Connection, events: Sequence[CatalogEvent]) -> int:
    """Record each decision once, and keep each offer's counts and each member's standing
    as of the offer's highest ``seq``; return the events read.

    A collection's events (its definitions) are recorded but count nothing: their ``seq``
    numbers the collection's events, not an offer's.
    """
    if not events:
        return 0
    await _insert_activity(conn, events)
    offers = [e for e in events if e.target == "offer"]
    await _upsert_counts(conn, newest(offers, _offer, _seq))
    members = [e for e in offers if e.member is not None and e.external_customer_id is not None]
    await _upsert_members(conn, newest(members, _member, _seq))
    return len(events)


def _offer(event: CatalogEvent) -> tuple[str, int]:
    return event.tenant_id, event.offer_id


def _member(event: CatalogEvent) -> tuple[str, int, str | None]:
    return event.tenant_id, event.offer_id, event.external_customer_id


def _seq(event: CatalogEvent) -> int:
    return event.seq


async def _insert_activity(conn: asyncpg.Connection, events: Sequence[CatalogEvent]) -> None:
    await conn.execute(
        """
        INSERT INTO catalog_activity (tenant_id, event_id, target, offer_id,
                                      external_customer_id, kind, action, reason, at, seq,
                                      event)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[],
                             $6::text[], $7::text[], $8::text[], $9::timestamptz[],
                             $10::bigint[], $11::jsonb[])
        ON CONFLICT DO NOTHING
        """,
        [e.tenant_id for e in events],
        [e.event_id for e in events],
        [e.target for e in events],
        [e.offer_id for e in events],
        [e.external_customer_id for e in events],
        [e.kind for e in events],
        [e.action for e in events],
        [e.reason for e in events],
        [e.at for e in events],
        [e.seq for e in events],
        [e.model_dump_json() for e in events],
    )


async def _upsert_counts(conn: asyncpg.Connection, events: Sequence[CatalogEvent]) -> None:
    if not events:
        return
    counts = [e.counts for e in events]
    await conn.execute(
        """
        INSERT INTO catalog_counts AS c (tenant_id, offer_id, seq, uses_count, grants_count,
                                         reserved_count, likes_count, seen_count,
                                         clicked_count, refusals_count, released_count,
                                         ending)
        SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::int[], $5::int[],
                             $6::int[], $7::int[], $8::int[], $9::int[], $10::int[],
                             $11::int[], $12::jsonb[])
        ON CONFLICT (tenant_id, offer_id) DO UPDATE SET
            seq = EXCLUDED.seq, uses_count = EXCLUDED.uses_count,
            grants_count = EXCLUDED.grants_count, reserved_count = EXCLUDED.reserved_count,
            likes_count = EXCLUDED.likes_count, seen_count = EXCLUDED.seen_count,
            clicked_count = EXCLUDED.clicked_count, refusals_count = EXCLUDED.refusals_count,
            released_count = EXCLUDED.released_count, ending = EXCLUDED.ending
        WHERE c.seq < EXCLUDED.seq
        """,
        [e.tenant_id for e in events],
        [e.offer_id for e in events],
        [e.seq for e in events],
        [c.uses_count for c in counts],
        [c.grants_count for c in counts],
        [c.reserved_count for c in counts],
        [c.likes_count for c in counts],
        [c.seen_count for c in counts],
        [c.clicked_count for c in counts],
        [c.refusals_count for c in counts],
        [c.released_count for c in counts],
        [RESERVATIONS.dump_json(c.ending).decode() for c in counts],
    )


async def _upsert_members(conn: asyncpg.Connection, events: Sequence[CatalogEvent]) -> None:
    if not events:
        return
    members = [e.member for e in events if e.member is not None]
    await conn.execute(
        """
        INSERT INTO catalog_members AS m (tenant_id, offer_id, external_customer_id, seq, uses,
                                          grants, liked, last_granted_at, last_used_at,
                                          held)
        SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::int[],
                             $6::int[], $7::bool[], $8::timestamptz[], $9::timestamptz[],
                             $10::jsonb[])
        ON CONFLICT (tenant_id, offer_id, external_customer_id) DO UPDATE SET
            seq = EXCLUDED.seq, uses = EXCLUDED.uses, grants = EXCLUDED.grants,
            liked = EXCLUDED.liked, last_granted_at = EXCLUDED.last_granted_at,
            last_used_at = EXCLUDED.last_used_at, held = EXCLUDED.held
        WHERE m.seq < EXCLUDED.seq
        """,
        [e.tenant_id for e in events],
        [e.offer_id for e in events],
        [e.external_customer_id for e in events],
        [e.seq for e in events],
        [m.uses for m in members],
        [m.grants for m in members],
        [m.liked for m in members],
        [m.last_granted_at for m in members],
        [m.last_used_at for m in members],
        [None if m.held is None else _HELD.dump_json(m.held).decode() for m in members],
    )


async def all_definitions(pool: asyncpg.Pool) -> list[Definition]:
    """Every offer, collection and integration of every tenant at the version PostgreSQL
    holds (to publish again on a catalog topic that lost them), archived ones included."""
    offers = await pool.fetch("SELECT definition FROM catalog_offers ORDER BY tenant_id, id")
    collections = await pool.fetch(
        "SELECT definition FROM catalog_collections ORDER BY tenant_id, id"
    )
    integrations = await pool.fetch(
        "SELECT definition FROM catalog_integrations ORDER BY tenant_id, id"
    )
    return [
        *(CatalogDefinition.model_validate_json(r["definition"]) for r in offers),
        *(CollectionDefinition.model_validate_json(r["definition"]) for r in collections),
        *(IntegrationDefinition.model_validate_json(r["definition"]) for r in integrations),
    ]

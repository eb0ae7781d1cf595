"""What the API reads of the catalog's projection: definitions with their counts, a
command's outcome, and a member's context (profile, standings, counts) in one query."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

from proffer_stream.catalog.models import (
    CatalogDefinition,
    CatalogEvent,
    CollectionDefinition,
    MemberCounts,
    OfferCounts,
    Reservation,
)
from proffer_stream.catalog.views import MemberContext
from proffer_stream.signals.models import CustomerProfile

SortField = Literal[
    "name",
    "usable_since",
    "usable_until",
    "visible_since",
    "visible_until",
    "created_at",
    "updated_at",
    "archived_at",
]
_COUNT_COLUMNS = (
    "uses_count",
    "grants_count",
    "reserved_count",
    "likes_count",
    "seen_count",
    "clicked_count",
    "refusals_count",
)
_COUNTS = ", ".join(f"coalesce(c.{name}, 0) AS {name}" for name in _COUNT_COLUMNS)
_OFFER_SELECT = f"""
    SELECT o.definition, {_COUNTS}
    FROM catalog_offers o
    LEFT JOIN catalog_counts c ON c.tenant_id = o.tenant_id AND c.offer_id = o.id
"""


@dataclass(frozen=True)
class OfferRow:
    """A catalog offer as projected, with its counts."""

    offer: CatalogDefinition
    counts: OfferCounts


@dataclass(frozen=True)
class OfferFilter:
    """The management list's filters."""

    types: Sequence[str] = ()
    status: str | None = None
    collection_ids: Sequence[int] = ()
    ids: Sequence[int] = ()
    with_archived: bool = False


def _offer_row(row: asyncpg.Record) -> OfferRow:
    return OfferRow(
        offer=CatalogDefinition.model_validate_json(row["definition"]),
        counts=OfferCounts(**{name: row[name] for name in _COUNT_COLUMNS}),
    )


async def get_offer(pool: asyncpg.Pool, tenant_id: str, offer_id: int) -> OfferRow | None:
    """The tenant's catalog offer (archived too), with its counts."""
    row = await pool.fetchrow(
        f"{_OFFER_SELECT} WHERE o.tenant_id = $1 AND o.id = $2", tenant_id, offer_id
    )
    return None if row is None else _offer_row(row)


async def offer_at(
    pool: asyncpg.Pool, tenant_id: str, offer_id: int, version: int
) -> OfferRow | None:
    """The offer once its ``version`` (or a later one) is projected."""
    found = await get_offer(pool, tenant_id, offer_id)
    return found if found is not None and found.offer.version >= version else None


_NAME = "lower(coalesce(o.definition->'name'->>$7::text, o.definition->>'internal_name'))"
"""An offer's name in the list's language (else its internal name), to sort by."""


def _sort_expression(sort_by: SortField) -> str:
    if sort_by == "name":
        return _NAME
    if sort_by in ("created_at", "updated_at", "archived_at"):
        return f"o.{sort_by}"
    return f"(o.definition->>'{sort_by}')::timestamptz"


_FILTERS = """
    WHERE o.tenant_id = $1
      AND (cardinality($2::text[]) = 0 OR o.type = ANY($2))
      AND ($3::text IS NULL OR o.status = $3)
      AND (cardinality($4::bigint[]) = 0 OR o.id = ANY($4))
      AND (cardinality($5::bigint[]) = 0 OR EXISTS (
            SELECT 1 FROM jsonb_array_elements_text(o.definition->'collection_ids') AS c(id)
            WHERE c.id::bigint = ANY($5)))
      AND ($6 OR o.archived_at IS NULL)
"""


async def list_offers(
    pool: asyncpg.Pool,
    tenant_id: str,
    filters: OfferFilter,
    *,
    sort: tuple[SortField, bool],
    language: str,
    limit: int,
    offset: int,
) -> tuple[list[OfferRow], int]:
    """A page of the tenant's catalog offers (sorted by ``sort``: field, descending;
    names in ``language``), and how many match in all."""
    sort_by, descending = sort
    direction = "DESC" if descending else "ASC"
    arguments = (
        tenant_id,
        list(filters.types),
        filters.status,
        list(filters.ids),
        list(filters.collection_ids),
        filters.with_archived,
    )
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        total: int = await conn.fetchval(
            f"SELECT count(*) FROM catalog_offers o {_FILTERS}", *arguments
        )
        rows = await conn.fetch(
            f"""{_OFFER_SELECT} {_FILTERS}
            ORDER BY {_sort_expression(sort_by)} {direction} NULLS LAST, {_NAME}, o.id
            LIMIT $8 OFFSET $9""",
            *arguments,
            language,
            limit,
            offset,
        )
    return [_offer_row(row) for row in rows], total


async def all_offers(pool: asyncpg.Pool, tenant_id: str) -> list[OfferRow]:
    """Every catalog offer of the tenant (archived too), for collections' counts."""
    rows = await pool.fetch(f"{_OFFER_SELECT} WHERE o.tenant_id = $1", tenant_id)
    return [_offer_row(row) for row in rows]


async def get_collection(
    pool: asyncpg.Pool, tenant_id: str, collection_id: int
) -> CollectionDefinition | None:
    """The tenant's collection (archived too)."""
    found = await pool.fetchval(
        "SELECT definition FROM catalog_collections WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        collection_id,
    )
    return None if found is None else CollectionDefinition.model_validate_json(found)


async def collection_at(
    pool: asyncpg.Pool, tenant_id: str, collection_id: int, version: int
) -> CollectionDefinition | None:
    """The collection once its ``version`` (or a later one) is projected."""
    found = await get_collection(pool, tenant_id, collection_id)
    return found if found is not None and found.version >= version else None


async def list_collections(
    pool: asyncpg.Pool, tenant_id: str, *, with_archived: bool
) -> list[CollectionDefinition]:
    """The tenant's collections, by position then id."""
    rows = await pool.fetch(
        "SELECT definition FROM catalog_collections WHERE tenant_id = $1"
        " AND ($2 OR archived_at IS NULL)"
        " ORDER BY (definition->>'position')::bigint NULLS LAST, id",
        tenant_id,
        with_archived,
    )
    return [CollectionDefinition.model_validate_json(row["definition"]) for row in rows]


async def command_outcome(
    pool: asyncpg.Pool, tenant_id: str, command_id: str
) -> CatalogEvent | None:
    """The owner's decision on a catalog command, once projected."""
    found = await pool.fetchval(
        "SELECT event FROM catalog_activity WHERE tenant_id = $1 AND event_id = $2",
        tenant_id,
        command_id,
    )
    return None if found is None else CatalogEvent.model_validate_json(found)


_MEMBER_CONTEXT = """
SELECT
    (SELECT signals FROM customers WHERE tenant_id = $1 AND external_id = $2) AS profile,
    (SELECT coalesce(json_agg(json_build_array(offer_id, uses, grants, liked,
                                               last_granted_at, last_used_at, held)), '[]')
     FROM catalog_members WHERE tenant_id = $1 AND external_customer_id = $2) AS members,
    (SELECT coalesce(json_agg(json_build_array(offer_id, uses_count, grants_count,
                                               reserved_count, likes_count, ending)), '[]')
     FROM catalog_counts WHERE tenant_id = $1 AND offer_id = ANY($3::bigint[])) AS counts
"""


async def member_profile(
    pool: asyncpg.Pool, tenant_id: str, external_id: str
) -> CustomerProfile | None:
    """The member's profile, if they were ever seen."""
    signals = await pool.fetchval(
        "SELECT signals FROM customers WHERE tenant_id = $1 AND external_id = $2",
        tenant_id,
        external_id,
    )
    return None if signals is None else CustomerProfile.model_validate_json(signals)


async def member_context(
    pool: asyncpg.Pool, tenant_id: str, external_id: str, offer_ids: Sequence[int]
) -> MemberContext:
    """In one query: the member's profile, their standing with each catalog offer, and
    the counts of ``offer_ids``."""
    row = await pool.fetchrow(_MEMBER_CONTEXT, tenant_id, external_id, list(offer_ids))
    assert row is not None
    profile = (
        None if row["profile"] is None else CustomerProfile.model_validate_json(row["profile"])
    )
    return MemberContext(
        profile=profile,
        standings={m[0]: standing_of(m) for m in json.loads(row["members"])},
        counts=_CountsRead(json.loads(row["counts"])),
    )


class _CountsRead(Mapping[int, OfferCounts]):
    """The counts a member read returned, made into :class:`OfferCounts` only when
    asked for: a list reads the counts of every offer it may show, and shows a page."""

    def __init__(self, rows: list[list[Any]]) -> None:
        self._rows = {row[0]: row for row in rows}

    def __getitem__(self, offer_id: int) -> OfferCounts:
        row = self._rows[offer_id]
        return OfferCounts.model_construct(  # PostgreSQL's integers: nothing to validate
            uses_count=row[1],
            grants_count=row[2],
            reserved_count=row[3],
            likes_count=row[4],
            ending=ending_of(row[5]),
        )

    def __iter__(self) -> Iterator[int]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


def ending_of(buckets: list[dict[str, Any]] | None) -> list[Reservation]:
    """The buckets of reservations of ``catalog_counts.ending`` as read in JSON (none if
    projected before they were kept: then no release is seen before the owner's)."""
    if not buckets:
        return []
    return [
        Reservation.model_construct(  # the sink wrote them from the owner's event
            holds_until=datetime.fromisoformat(b["holds_until"]), count=b["count"]
        )
        for b in buckets
    ]


def standing_of(member: list[Any]) -> MemberCounts:
    return MemberCounts(
        uses=member[1],
        grants=member[2],
        liked=member[3],
        last_granted_at=member[4],
        last_used_at=member[5],
        held=member[6] if len(member) > 6 else None,
    )

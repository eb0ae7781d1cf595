"""Customers: the latest signals snapshot of each, projected from the changelog."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
from pydantic_core import to_json

from proffer_stream.core.types import CustomerKey
from proffer_stream.signals.models import CustomerColumns, CustomerSignals


async def upsert_customers(
    conn: asyncpg.Connection,
    columns: Sequence[CustomerSignals | CustomerColumns],
    signals_json: Sequence[str],
) -> int:
    """Write the latest signals snapshot of each customer (last write wins): its columns,
    and its whole JSON as given (the sink has both from a changelog value without
    reading the whole profile).

    A snapshot whose internal id is held by another external id (a hash collision)
    leaves that row alone.
    """
    if not columns:
        return 0
    status = await conn.execute(
        """
        INSERT INTO customers AS c (tenant_id, id, external_id, email, name, metadata,
                                    event_count, first_seen_at, last_seen_at, signals, updated_at)
        SELECT t, i, x, e, n, m::jsonb, k, f, l, s::jsonb, coalesce(u, now())
        FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                    $7::bigint[], $8::timestamptz[], $9::timestamptz[], $10::text[],
                    $11::timestamptz[]) AS v(t, i, x, e, n, m, k, f, l, s, u)
        ON CONFLICT (tenant_id, id) DO UPDATE SET
            email = EXCLUDED.email, name = EXCLUDED.name, metadata = EXCLUDED.metadata,
            event_count = EXCLUDED.event_count, first_seen_at = EXCLUDED.first_seen_at,
            last_seen_at = EXCLUDED.last_seen_at, signals = EXCLUDED.signals,
            updated_at = EXCLUDED.updated_at
        WHERE c.external_id = EXCLUDED.external_id
        """,
        [c.tenant_id for c in columns],
        [c.customer_id for c in columns],
        [c.external_id for c in columns],
        [c.email for c in columns],
        [c.name for c in columns],
        [to_json(c.metadata).decode() for c in columns],
        [c.event_count for c in columns],
        [c.first_seen_at for c in columns],
        [c.last_seen_at for c in columns],
        list(signals_json),
        [c.updated_at for c in columns],
    )
    return int(status.rsplit(" ", 1)[1])


async def load_signals(
    pool: asyncpg.Pool, keys: Sequence[CustomerKey]
) -> dict[CustomerKey, CustomerSignals]:
    """The stored snapshots of the given (tenant id, external id) customers, where any."""
    if not keys:
        return {}
    rows = await pool.fetch(
        """
        SELECT c.signals FROM customers c
        JOIN unnest($1::text[], $2::text[]) AS k(t, x) ON c.tenant_id = k.t AND c.external_id = k.x
        """,
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    snapshots = (CustomerSignals.model_validate_json(r["signals"]) for r in rows)
    return {(s.tenant_id, s.external_id): s for s in snapshots}


async def get_customer(
    pool: asyncpg.Pool, tenant_id: str, customer_id: int
) -> CustomerSignals | None:
    """A customer of the tenant by internal id."""
    return _snapshot(
        await pool.fetchval(
            "SELECT signals FROM customers WHERE tenant_id = $1 AND id = $2",
            tenant_id,
            customer_id,
        )
    )


async def get_customer_by_external_id(
    pool: asyncpg.Pool, tenant_id: str, external_id: str
) -> CustomerSignals | None:
    """A customer of the tenant by the business's own id."""
    return _snapshot(
        await pool.fetchval(
            "SELECT signals FROM customers WHERE tenant_id = $1 AND external_id = $2",
            tenant_id,
            external_id,
        )
    )


CUSTOMERS_PAGE = (
    "SELECT signals FROM customers WHERE tenant_id = $1"
    " ORDER BY last_seen_at DESC NULLS LAST, id LIMIT $2 OFFSET $3"
)
"""A page of the tenant's customers, read in the order of the index customers_recent."""


async def list_customers(
    pool: asyncpg.Pool, tenant_id: str, *, limit: int, offset: int
) -> list[CustomerSignals]:
    """The tenant's customers, most recently active first."""
    rows = await pool.fetch(
        CUSTOMERS_PAGE,
        tenant_id,
        limit,
        offset,
    )
    return [CustomerSignals.model_validate_json(row["signals"]) for row in rows]


def _snapshot(signals: str | None) -> CustomerSignals | None:
    return None if signals is None else CustomerSignals.model_validate_json(signals)

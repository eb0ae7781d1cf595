"""Events: every accepted event once (idempotent by tenant, customer and event id)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from pydantic_core import to_json

from proffer_stream.core.types import CustomerKey
from proffer_stream.ingest.models import NormalizedEvent
from proffer_stream.signals.models import CustomerSignals


@dataclass(frozen=True)
class EventRow:
    """An event and whose it is, as the sink writes it."""

    tenant_id: str
    customer_id: int
    event: NormalizedEvent


async def insert_events(conn: asyncpg.Connection, rows: Sequence[EventRow]) -> int:
    """Insert events, skipping any already stored (same tenant, customer and event id)."""
    if not rows:
        return 0
    status = await conn.execute(
        """
        INSERT INTO events (tenant_id, customer_id, id, type, data, occurred_at, received_at)
        SELECT t, c, i, ty, d::jsonb, o, r
        FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                    $6::timestamptz[], $7::timestamptz[]) AS u(t, c, i, ty, d, o, r)
        ON CONFLICT DO NOTHING
        """,
        [r.tenant_id for r in rows],
        [r.customer_id for r in rows],
        [r.event.id for r in rows],
        [r.event.type for r in rows],
        [to_json(r.event.data).decode() for r in rows],
        [r.event.occurred_at for r in rows],
        [r.event.received_at for r in rows],
    )
    return int(status.rsplit(" ", 1)[1])


async def list_events(
    pool: asyncpg.Pool, tenant_id: str, customer_id: int, *, limit: int, offset: int
) -> list[NormalizedEvent]:
    """A customer's stored events, newest first."""
    rows = await pool.fetch(
        "SELECT id, type, data, occurred_at, received_at FROM events"
        " WHERE tenant_id = $1 AND customer_id = $2"
        " ORDER BY occurred_at DESC, id LIMIT $3 OFFSET $4",
        tenant_id,
        customer_id,
        limit,
        offset,
    )
    return [
        NormalizedEvent(
            id=row["id"],
            type=row["type"],
            data=json.loads(row["data"]),
            occurred_at=row["occurred_at"],
            received_at=row["received_at"],
        )
        for row in rows
    ]


async def counted_event_ids(
    pool: asyncpg.Pool, profiles: Sequence[CustomerSignals], since: datetime
) -> dict[CustomerKey, list[str]]:
    """The ids of the events received since ``since`` that these stored profiles counted.

    A row stands for an event the profile counted when it was received before the
    profile's last update: the sink may store rows ahead of the worker, not behind it.
    """
    if not profiles:
        return {}
    rows = await pool.fetch(
        """
        SELECT k.i, e.id FROM events e
        JOIN unnest($1::text[], $2::bigint[], $3::timestamptz[]) WITH ORDINALITY AS k(t, c, u, i)
          ON e.tenant_id = k.t AND e.customer_id = k.c
        WHERE e.received_at >= $4 AND e.received_at <= k.u
        """,
        [p.tenant_id for p in profiles],
        [p.customer_id for p in profiles],
        [p.updated_at for p in profiles],
        since,
    )
    ids: dict[CustomerKey, list[str]] = {}
    for row in rows:
        profile = profiles[row["i"] - 1]
        ids.setdefault((profile.tenant_id, profile.external_id), []).append(row["id"])
    return ids

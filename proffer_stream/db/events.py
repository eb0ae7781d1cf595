"""Events: every accepted event once (idempotent by tenant, customer and event id)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg
from pydantic_core import to_json

from proffer_stream.core.types import CustomerKey
from proffer_stream.ingest.models import NormalizedEvent
from proffer_stream.signals.models import CustomerSignals

StagedEvent: TypeAlias = tuple[str, int, str, str, str, datetime, datetime]
"""An event as the staging table takes it: tenant id, customer id, event id, type, data
(as JSON), occurred at, received at."""


def staged_event(tenant_id: str, customer_id: int, event: NormalizedEvent) -> StagedEvent:
    """The staging row of a customer's event."""
    return (
        tenant_id,
        customer_id,
        event.id,
        event.type,
        to_json(event.data).decode(),
        event.occurred_at,
        event.received_at,
    )


EVENTS_STAGING = "events_staging"
"""The session's staging table of event rows, emptied at every commit."""

_EVENTS_STAGING_DDL = f"""
    CREATE TEMP TABLE IF NOT EXISTS {EVENTS_STAGING} (
        tenant_id text, customer_id bigint, id text, type text, data jsonb,
        occurred_at timestamptz, received_at timestamptz
    ) ON COMMIT DELETE ROWS
"""
_EVENT_COLUMNS = ("tenant_id", "customer_id", "id", "type", "data", "occurred_at", "received_at")


async def insert_events(conn: asyncpg.Connection, events: Sequence[StagedEvent]) -> int:
    """Insert events, skipping any already stored (same tenant, customer and event id)
    and those of a tenant that does not exist (no API key, revoked or not: the signals
    agent dead-letters them, :class:`~proffer_stream.worker.tenants.KnownTenants`).

    Events repeated within ``events`` are inserted once. ``stored_at`` is the time each
    row went in (``clock_timestamp()``). Plain tuples: a dataclass per event cost the
    sink a tenth more CPU per event (``bench/sink.py``).
    """
    if not events:
        return 0
    return await write_staged(
        conn,
        _EVENTS_STAGING_DDL,
        EVENTS_STAGING,
        _EVENT_COLUMNS,
        events,
        f"""
        INSERT INTO events (tenant_id, customer_id, id, type, data, occurred_at, received_at)
        SELECT tenant_id, customer_id, id, type, data, occurred_at, received_at
        FROM {EVENTS_STAGING} s
        WHERE EXISTS (SELECT 1 FROM api_keys k WHERE k.tenant_id = s.tenant_id)
        ON CONFLICT DO NOTHING
        """,
    )


async def write_staged(
    conn: asyncpg.Connection,
    staging_ddl: str,
    staging: str,
    columns: Sequence[str],
    records: Sequence[tuple[Any, ...]],
    statement: str,
) -> int:
    """COPY ``records`` into a staging table, then run ``statement`` that reads it.

    The staging table is a temporary table of the session (``staging_ddl`` creates it
    unless it exists: ``ON COMMIT DELETE ROWS``, no indexes, no constraints), emptied
    at each commit. Binary COPY and one set-based statement cost PostgreSQL about a
    third less per row than arrays of parameters (``bench/sink.py``). Runs in the
    caller's transaction, or in one of its own when there is none (the staged rows
    would be gone at the COPY's own commit). Returns the rows ``statement`` changed.
    """
    if not conn.is_in_transaction():
        async with conn.transaction():
            return await write_staged(conn, staging_ddl, staging, columns, records, statement)
    # Empty already, unless an earlier call of this transaction staged rows: a DELETE
    # of an empty table reads nothing (a TRUNCATE would rewrite the catalog each time).
    await conn.execute(f"{staging_ddl}; DELETE FROM {staging}")
    await conn.copy_records_to_table(staging, records=records, columns=list(columns))
    status = await conn.execute(statement)
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


async def uncounted_events(
    pool: asyncpg.Pool,
    profiles: Sequence[CustomerSignals],
    before: Sequence[datetime],
) -> dict[CustomerKey, list[NormalizedEvent]]:
    """The events stored for these profiles that they did not count: received after the
    profile's last update (any, for a profile never stored) and before ``before`` (one
    per profile: the first event the worker has in hand, so that none it is about to
    apply is taken for a lost one), in the order they were received."""
    if not profiles:
        return {}
    rows = await pool.fetch(
        """
        SELECT k.i, e.id, e.type, e.data, e.occurred_at, e.received_at FROM events e
        JOIN unnest($1::text[], $2::bigint[], $3::timestamptz[], $4::timestamptz[])
             WITH ORDINALITY AS k(t, c, u, b, i)
          ON e.tenant_id = k.t AND e.customer_id = k.c
        WHERE (k.u IS NULL OR e.received_at > k.u) AND e.received_at < k.b
        ORDER BY e.received_at, e.id
        """,
        [p.tenant_id for p in profiles],
        [p.customer_id for p in profiles],
        [p.updated_at for p in profiles],
        list(before),
    )
    events: dict[CustomerKey, list[NormalizedEvent]] = {}
    for row in rows:
        profile = profiles[row["i"] - 1]
        events.setdefault((profile.tenant_id, profile.external_id), []).append(
            NormalizedEvent(
                id=row["id"],
                type=row["type"],
                data=json.loads(row["data"]),
                occurred_at=row["occurred_at"],
                received_at=row["received_at"],
            )
        )
    return events

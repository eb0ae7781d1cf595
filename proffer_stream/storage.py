"""PostgreSQL access with asyncpg: migrations, the sink's idempotent upserts, API reads."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

import asyncpg
from pydantic_core import to_json

from proffer_stream.models import CustomerSignals, NormalizedEvent

log = logging.getLogger(__name__)

_MIGRATION_LOCK = 0x50524F46  # "PROF": one migrator at a time


async def connect_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A connection pool; fails fast with a clear message when the server is unreachable."""
    try:
        return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise ConnectionError(f"cannot reach PostgreSQL at {redact(dsn)}: {exc}") from exc


def redact(dsn: str) -> str:
    """The DSN without its password, for logs."""
    if "@" not in dsn or "://" not in dsn:
        return dsn
    scheme, rest = dsn.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"


async def migrate(pool: asyncpg.Pool) -> list[str]:
    """Apply the migrations not yet applied, in order; return their names."""
    files = sorted(
        (
            f
            for f in resources.files("proffer_stream.migrations").iterdir()
            if f.name.endswith(".sql")
        ),
        key=lambda f: f.name,
    )
    applied: list[str] = []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for migration in files:
            if migration.name in done:
                continue
            await conn.execute(migration.read_text())
            await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", migration.name)
            applied.append(migration.name)
    return applied


# --- API keys -------------------------------------------------------------------------


def hash_key(key: str) -> str:
    """How a key is stored: its SHA-256 (keys are random, 256 bits, so no slow hash needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class CreatedKey:
    id: int
    key: str
    name: str
    tenant_id: str
    created_at: datetime


async def create_key(pool: asyncpg.Pool, tenant_id: str, name: str) -> CreatedKey:
    """Create an API key for ``tenant_id``; the secret is returned once and stored hashed."""
    key = "pk_" + secrets.token_urlsafe(32)
    row = await pool.fetchrow(
        "INSERT INTO api_keys (tenant_id, name, key_prefix, key_hash) VALUES ($1, $2, $3, $4)"
        " RETURNING id, created_at",
        tenant_id,
        name,
        key[:10],
        hash_key(key),
    )
    return CreatedKey(row["id"], key, name, tenant_id, row["created_at"])


async def tenant_for_key(pool: asyncpg.Pool, key: str) -> str | None:
    """The tenant of a valid, unrevoked key, else ``None``."""
    return await pool.fetchval(
        "SELECT tenant_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", hash_key(key)
    )


async def list_keys(pool: asyncpg.Pool, tenant_id: str | None = None) -> list[asyncpg.Record]:
    """Keys (never their secrets), optionally of one tenant."""
    return await pool.fetch(
        "SELECT id, tenant_id, name, key_prefix, created_at, revoked_at FROM api_keys"
        " WHERE $1::text IS NULL OR tenant_id = $1 ORDER BY id",
        tenant_id,
    )


async def revoke_key(pool: asyncpg.Pool, key_id: int) -> bool:
    """Revoke a key by id; ``False`` when there is no such active key."""
    status = await pool.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", key_id
    )
    return status.endswith(" 1")


# --- Sink writes -------------------------------------------------------------------------


@dataclass(frozen=True)
class EventRow:
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


async def upsert_customers(conn: asyncpg.Connection, snapshots: Sequence[CustomerSignals]) -> int:
    """Write the latest signals snapshot of each customer (last write wins).

    A snapshot whose internal id is held by another external id (a hash collision)
    leaves that row alone.
    """
    if not snapshots:
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
        [s.tenant_id for s in snapshots],
        [s.customer_id for s in snapshots],
        [s.external_id for s in snapshots],
        [s.email for s in snapshots],
        [s.name for s in snapshots],
        [to_json(s.metadata).decode() for s in snapshots],
        [s.event_count for s in snapshots],
        [s.first_seen_at for s in snapshots],
        [s.last_seen_at for s in snapshots],
        [s.model_dump_json() for s in snapshots],
        [s.updated_at for s in snapshots],
    )
    return int(status.rsplit(" ", 1)[1])


# --- Worker restore ------------------------------------------------------------------------


async def load_signals(
    pool: asyncpg.Pool, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], CustomerSignals]:
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


# --- API reads ------------------------------------------------------------------------------

_CUSTOMER_COLUMNS = "id, external_id, email, name, metadata, first_seen_at, last_seen_at, signals"


async def get_customer(
    pool: asyncpg.Pool, tenant_id: str, customer_id: int
) -> asyncpg.Record | None:
    """A customer of the tenant by internal id."""
    return await pool.fetchrow(
        f"SELECT {_CUSTOMER_COLUMNS} FROM customers WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        customer_id,
    )


async def get_customer_by_external_id(
    pool: asyncpg.Pool, tenant_id: str, external_id: str
) -> asyncpg.Record | None:
    """A customer of the tenant by the business's own id."""
    return await pool.fetchrow(
        f"SELECT {_CUSTOMER_COLUMNS} FROM customers WHERE tenant_id = $1 AND external_id = $2",
        tenant_id,
        external_id,
    )


async def list_customers(
    pool: asyncpg.Pool, tenant_id: str, *, limit: int, offset: int
) -> list[asyncpg.Record]:
    """The tenant's customers, most recently active first."""
    return await pool.fetch(
        f"SELECT {_CUSTOMER_COLUMNS} FROM customers WHERE tenant_id = $1"
        " ORDER BY last_seen_at DESC NULLS LAST, id LIMIT $2 OFFSET $3",
        tenant_id,
        limit,
        offset,
    )


async def list_events(
    pool: asyncpg.Pool, tenant_id: str, customer_id: int, *, limit: int, offset: int
) -> list[asyncpg.Record]:
    """A customer's stored events, newest first."""
    return await pool.fetch(
        "SELECT id, type, data, occurred_at, received_at FROM events"
        " WHERE tenant_id = $1 AND customer_id = $2"
        " ORDER BY occurred_at DESC, id LIMIT $3 OFFSET $4",
        tenant_id,
        customer_id,
        limit,
        offset,
    )

"""Each tenant's rule set and policy, as projected from ``proffer.tenant-config``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import asyncpg

from proffer_stream.offers.config import ConfigChange, ConfigKind

_LOCK_NAMESPACE = 0x50524643  # "PRFC": one config change of a tenant's kind at a time


async def apply_config_changes(conn: asyncpg.Connection, changes: Sequence[ConfigChange]) -> int:
    """Keep the latest change of each tenant and kind; an older one changes nothing.

    An equal version replaces the row, as compaction keeps the later of two records.
    """
    if not changes:
        return 0
    result = await conn.execute(
        """
        INSERT INTO tenant_config (tenant_id, kind, version, change, changed_at)
        SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::jsonb[], $5::timestamptz[])
        ON CONFLICT (tenant_id, kind) DO UPDATE
            SET version = excluded.version, change = excluded.change,
                changed_at = excluded.changed_at
            WHERE tenant_config.version <= excluded.version
        """,
        [c.tenant_id for c in changes],
        [c.kind for c in changes],
        [c.version for c in changes],
        [c.model_dump_json() for c in changes],
        [c.changed_at for c in changes],
    )
    return int(result.split()[-1])


async def latest_change(
    conn: asyncpg.Connection | asyncpg.Pool, tenant_id: str, kind: ConfigKind
) -> ConfigChange | None:
    """The tenant's config of this kind in force, or None when it never changed it."""
    row = await conn.fetchval(
        "SELECT change FROM tenant_config WHERE tenant_id = $1 AND kind = $2", tenant_id, kind
    )
    return None if row is None else ConfigChange.model_validate_json(row)


async def all_changes(pool: asyncpg.Pool) -> list[ConfigChange]:
    """Every tenant's config in force (workers start from it when the topic lost it)."""
    rows = await pool.fetch("SELECT change FROM tenant_config")
    return [ConfigChange.model_validate_json(row["change"]) for row in rows]


async def change_config(
    pool: asyncpg.Pool,
    tenant_id: str,
    kind: ConfigKind,
    make: Callable[[ConfigChange | None], ConfigChange],
    publish: Callable[[ConfigChange], Awaitable[None]],
) -> ConfigChange:
    """Make the next change from the one in force, publish it, and record it.

    One change of a tenant's kind at a time (an advisory lock), so two concurrent
    changes get two versions. The row is written after the topic has the change, in the
    same transaction as the lock, so a read after the answer sees it; the sink writes
    the same row again, idempotently.
    """
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))", _LOCK_NAMESPACE, tenant_id + kind
        )
        change = make(await latest_change(conn, tenant_id, kind))
        await publish(change)
        await apply_config_changes(conn, [change])
    return change

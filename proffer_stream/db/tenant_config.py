"""Each tenant's rule set and policy, as projected from ``proffer.tenant-config`` (the
ones in force, and every version), and what became of the changes asked for
(``proffer.tenant-config-outcomes``)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from proffer_stream.offers.config import ConfigChange, ConfigKind, ConfigOutcome


async def apply_config_changes(conn: asyncpg.Connection, changes: Sequence[ConfigChange]) -> int:
    """Keep the latest change of each tenant and kind; an older one changes nothing.

    An equal version replaces the row, as compaction keeps the later of two records.
    """
    latest: dict[tuple[str, str], ConfigChange] = {}
    for change in changes:  # one row each: a statement cannot update a row twice
        known = latest.get((change.tenant_id, change.kind))
        if known is None or known.version <= change.version:
            latest[(change.tenant_id, change.kind)] = change
    await apply_config_versions(conn, changes)
    changes = list(latest.values())
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


async def apply_config_versions(conn: asyncpg.Connection, changes: Sequence[ConfigChange]) -> int:
    """Keep every version of each tenant's rules and policy (``tenant_config_versions``).

    Keyed by tenant, kind and version: a replay writes the same rows. Of two records of
    one version, the later wins, as in ``tenant_config`` (and as compaction keeps it).
    """
    versions: dict[tuple[str, str, int], ConfigChange] = {}
    for change in changes:  # the later of a batch's records of one version
        versions[(change.tenant_id, change.kind, change.version)] = change
    if not versions:
        return 0
    result = await conn.execute(
        """
        INSERT INTO tenant_config_versions (tenant_id, kind, version, change, changed_at)
        SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::jsonb[], $5::timestamptz[])
        ON CONFLICT (tenant_id, kind, version) DO UPDATE
            SET change = excluded.change, changed_at = excluded.changed_at
            WHERE tenant_config_versions.change IS DISTINCT FROM excluded.change
        """,
        [c.tenant_id for c in versions.values()],
        [c.kind for c in versions.values()],
        [c.version for c in versions.values()],
        [c.model_dump_json() for c in versions.values()],
        [c.changed_at for c in versions.values()],
    )
    return int(result.split()[-1])


async def config_versions(
    pool: asyncpg.Pool,
    tenant_id: str,
    kind: ConfigKind,
    *,
    before: int | None = None,
    limit: int = 20,
) -> list[ConfigChange]:
    """The tenant's versions of this kind, newest first, older than ``before`` if given,
    at most ``limit`` (read backwards down the table's key)."""
    rows = await pool.fetch(
        "SELECT change FROM tenant_config_versions WHERE tenant_id = $1 AND kind = $2"
        " AND version < $3 ORDER BY version DESC LIMIT $4",
        tenant_id,
        kind,
        before if before is not None else 2**31 - 1,
        limit,
    )
    return [ConfigChange.model_validate_json(row["change"]) for row in rows]


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


async def change_at(
    pool: asyncpg.Pool, tenant_id: str, kind: ConfigKind, version: int
) -> ConfigChange | None:
    """The tenant's change of this kind in force, once it is ``version`` or later."""
    row = await pool.fetchval(
        "SELECT change FROM tenant_config WHERE tenant_id = $1 AND kind = $2 AND version >= $3",
        tenant_id,
        kind,
        version,
    )
    return None if row is None else ConfigChange.model_validate_json(row)


async def apply_config_outcomes(conn: asyncpg.Connection, outcomes: Sequence[ConfigOutcome]) -> int:
    """Project config command outcomes: each command's once."""
    if not outcomes:
        return 0
    await conn.execute(
        """
        INSERT INTO config_commands (tenant_id, command_id, kind, outcome, occurred_at)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::timestamptz[])
        ON CONFLICT DO NOTHING
        """,
        [o.tenant_id for o in outcomes],
        [o.command_id for o in outcomes],
        [o.kind for o in outcomes],
        [o.model_dump_json() for o in outcomes],
        [o.occurred_at for o in outcomes],
    )
    return len(outcomes)


async def get_config_outcome(
    pool: asyncpg.Pool, tenant_id: str, command_id: str
) -> ConfigOutcome | None:
    """What became of a config command, once the sink has it."""
    row = await pool.fetchval(
        "SELECT outcome FROM config_commands WHERE tenant_id = $1 AND command_id = $2",
        tenant_id,
        command_id,
    )
    return None if row is None else ConfigOutcome.model_validate_json(row)

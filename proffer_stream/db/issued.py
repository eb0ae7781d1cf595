"""The request and command ids the gateway issued, per tenant, so that a poll can tell an
id still being decided (202) from one never issued to the caller's tenant (404)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import asyncpg

IssuedKind = Literal["request", "offer_command", "config_command", "catalog_command"]
"""What an id names: an offer request (``/api/offers/requests/{id}``), a status change
(``/api/offers/commands/{id}``), a rules or policy change (``/api/config/commands/{id}``),
a catalog command (``/api/catalog/commands/{id}``)."""


async def record_issued(
    pool: asyncpg.Pool, tenant_id: str, kind: IssuedKind, command_ids: Sequence[str]
) -> None:
    """Record ids about to be published (one statement, however many)."""
    if not command_ids:
        return
    await pool.execute(
        "INSERT INTO issued_commands (tenant_id, command_id, kind)"
        " SELECT $1, unnest($2::text[]), $3 ON CONFLICT DO NOTHING",
        tenant_id,
        list(command_ids),
        kind,
    )


async def was_issued(pool: asyncpg.Pool, tenant_id: str, kind: IssuedKind, command_id: str) -> bool:
    """Whether the gateway issued this id, of this kind, to this tenant."""
    found = await pool.fetchval(
        "SELECT 1 FROM issued_commands WHERE tenant_id = $1 AND command_id = $2 AND kind = $3",
        tenant_id,
        command_id,
        kind,
    )
    return found is not None

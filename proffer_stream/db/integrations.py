"""Integrations as projected from ``proffer.catalog`` (``catalog_integrations``)."""

from __future__ import annotations

import asyncpg

from proffer_stream.catalog.models import IntegrationDefinition


async def get_integration(
    pool: asyncpg.Pool, tenant_id: str, integration_id: int
) -> IntegrationDefinition | None:
    """The tenant's integration (archived too)."""
    found = await pool.fetchval(
        "SELECT definition FROM catalog_integrations WHERE tenant_id = $1 AND id = $2",
        tenant_id,
        integration_id,
    )
    return None if found is None else IntegrationDefinition.model_validate_json(found)


async def integration_at(
    pool: asyncpg.Pool, tenant_id: str, integration_id: int, version: int
) -> IntegrationDefinition | None:
    """The integration once its ``version`` (or a later one) is projected."""
    found = await get_integration(pool, tenant_id, integration_id)
    return found if found is not None and found.version >= version else None


async def list_integrations(
    pool: asyncpg.Pool, tenant_id: str, *, with_archived: bool
) -> list[IntegrationDefinition]:
    """The tenant's integrations, oldest first."""
    rows = await pool.fetch(
        "SELECT definition FROM catalog_integrations WHERE tenant_id = $1"
        " AND ($2 OR archived_at IS NULL) ORDER BY created_at, id",
        tenant_id,
        with_archived,
    )
    return [IntegrationDefinition.model_validate_json(row["definition"]) for row in rows]

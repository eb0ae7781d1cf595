"""API keys: created with a random secret, stored as its hash, revocable."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import asyncpg
from pydantic import BaseModel, Field

from proffer_stream.core.types import UtcDatetime


class ApiKey(BaseModel):
    """A key as listed: never its secret."""

    id: int
    tenant_id: str
    name: str
    key_prefix: str
    created_at: UtcDatetime
    revoked_at: UtcDatetime | None = None


class NewApiKey(BaseModel):
    """A key just created, with its secret (shown once)."""

    key: str = Field(description="The secret; shown once, stored only as a hash.")
    id: int
    name: str
    tenant_id: str
    created_at: UtcDatetime


def new_tenant_id() -> str:
    """A fresh tenant id for a self-service sign-up."""
    return f"t{secrets.token_hex(8)}"


def hash_key(key: str) -> str:
    """How a key is stored: its SHA-256 (keys are random, 256 bits, so no slow hash needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


async def create_key(pool: asyncpg.Pool, tenant_id: str, name: str) -> NewApiKey:
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
    return NewApiKey(
        key=key, id=row["id"], name=name, tenant_id=tenant_id, created_at=row["created_at"]
    )


async def tenant_for_key(pool: asyncpg.Pool, key: str) -> str | None:
    """The tenant of a valid, unrevoked key, else ``None``."""
    owner = await key_owner(pool, key)
    return owner.tenant_id if owner else None


@dataclass(frozen=True)
class KeyOwner:
    """Whose a key is: its tenant, and the name it was given (which changes record)."""

    tenant_id: str
    name: str


async def key_owner(pool: asyncpg.Pool, key: str) -> KeyOwner | None:
    """The tenant and name of a valid, unrevoked key, else ``None``."""
    return await key_owner_by_hash(pool, hash_key(key))


async def key_owner_by_hash(pool: asyncpg.Pool, key_hash: str) -> KeyOwner | None:
    """The tenant and name of the valid, unrevoked key of this hash, else ``None``."""
    row = await pool.fetchrow(
        "SELECT tenant_id, name FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        key_hash,
    )
    return None if row is None else KeyOwner(row["tenant_id"], row["name"])


async def list_keys(pool: asyncpg.Pool, tenant_id: str | None = None) -> list[ApiKey]:
    """Keys (never their secrets), optionally of one tenant."""
    rows = await pool.fetch(
        "SELECT id, tenant_id, name, key_prefix, created_at, revoked_at FROM api_keys"
        " WHERE $1::text IS NULL OR tenant_id = $1 ORDER BY id",
        tenant_id,
    )
    return [ApiKey.model_validate(dict(row)) for row in rows]


async def revoke_key(pool: asyncpg.Pool, key_id: int) -> bool:
    """Revoke a key by id; ``False`` when there is no such active key."""
    status: str = await pool.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", key_id
    )
    return status.endswith(" 1")


async def existing_tenants(pool: asyncpg.Pool, tenant_ids: list[str]) -> set[str]:
    """Those of ``tenant_ids`` that exist: that have an API key, revoked or not."""
    rows = await pool.fetch(
        "SELECT DISTINCT tenant_id FROM api_keys WHERE tenant_id = ANY($1::text[])", tenant_ids
    )
    return {row["tenant_id"] for row in rows}

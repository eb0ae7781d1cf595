"""Schema migrations: SQL files applied once, in order, by `migrate` and `up` only."""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable

import asyncpg

from proffer_stream.core.errors import SchemaBehind

_MIGRATION_LOCK = 0x50524F46  # "PROF": one migrator at a time
_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations"
    " (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
)


def _files() -> list[Traversable]:
    folder = resources.files("proffer_stream.db") / "migrations"
    return sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)


async def migrate(pool: asyncpg.Pool) -> list[str]:
    """Apply the migrations not yet applied, in order; return their names."""
    applied: list[str] = []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(_TABLE)
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for migration in _files():
            if migration.name in done:
                continue
            await conn.execute(migration.read_text())
            await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", migration.name)
            applied.append(migration.name)
    return applied


async def pending(pool: asyncpg.Pool) -> list[str]:
    """The migrations not applied yet; reads only, changes nothing."""
    exists = await pool.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    done = (
        {r["name"] for r in await pool.fetch("SELECT name FROM schema_migrations")}
        if exists
        else set()
    )
    return [f.name for f in _files() if f.name not in done]


async def require_current(pool: asyncpg.Pool) -> None:
    """Raise :class:`SchemaBehind` when migrations are pending."""
    missing = await pending(pool)
    if missing:
        raise SchemaBehind(missing)

"""The tenants that exist, as the signals agent needs to know them: a record of any other
tenant is refused, as the gateway refuses a request without a valid key."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection

import asyncpg

from proffer_stream.core.retry import retry_transient
from proffer_stream.db import keys
from proffer_stream.db.pool import TRANSIENT_ERRORS, connect_pool

Lookup = Callable[[list[str]], Awaitable[set[str]]]
"""Those of some tenant ids that exist."""


class KnownTenants:
    """Tenants that exist (have an API key in PostgreSQL, revoked or not), cached.

    PostgreSQL's ``api_keys`` is where a tenant comes into being (the gateway's sign-up,
    ``proffer-stream keys create``) and what the gateway checks every request against;
    a topic of tenants would be a second record of the same fact, and one the embedded
    broker loses on restart. A tenant is never removed, so a tenant found is cached for
    good; ids not yet known are looked up once per batch, together (a flood of records
    for tenants that do not exist costs one query per batch). Only records of a tenant
    this worker has not seen yet wait for PostgreSQL when it is down.
    """

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        self._known: set[str] = set()

    async def unknown(self, tenant_ids: Collection[str]) -> set[str]:
        """Those of ``tenant_ids`` that do not exist."""
        missing = set(tenant_ids) - self._known
        if missing:
            self._known |= await self.lookup(sorted(missing))
        return missing - self._known


class PostgresTenants:
    """:data:`Lookup` against PostgreSQL's ``api_keys``; an outage is waited out."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._pool: asyncpg.Pool | None = None
        self._connecting = asyncio.Lock()

    async def __call__(self, tenant_ids: list[str]) -> set[str]:
        async def query() -> set[str]:
            return await keys.existing_tenants(await self._connected(), tenant_ids)

        return await retry_transient(query, transient=TRANSIENT_ERRORS, what="PostgreSQL")

    async def _connected(self) -> asyncpg.Pool:
        async with self._connecting:
            if self._pool is None:
                self._pool = await connect_pool(self.database_url, max_size=1)
            return self._pool

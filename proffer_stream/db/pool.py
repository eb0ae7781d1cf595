"""Connecting to PostgreSQL, and which of its errors are worth retrying."""

from __future__ import annotations

import asyncpg

from proffer_stream.core.errors import Unavailable

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, timed out (ConnectionError and TimeoutError are OSErrors)
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # e.g. the connection was closed mid-query
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    Unavailable,
)
"""Errors of an outage or a lost race: retry these. Anything else is a bug or bad data."""


async def connect_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    server_settings: dict[str, str] | None = None,
) -> asyncpg.Pool:
    """A connection pool; raises :class:`Unavailable` when the server is unreachable.

    ``server_settings`` are set on each connection (e.g. a ``search_path``).
    """
    try:
        return await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            timeout=10,
            server_settings=server_settings,
            reset=_only_end_transactions,
        )
    except TRANSIENT_ERRORS as exc:
        raise Unavailable(f"cannot reach PostgreSQL at {redact(dsn)}: {exc}") from exc


async def _only_end_transactions(connection: asyncpg.Connection) -> None:
    """What a connection going back to the pool needs beyond asyncpg's own rollback of an
    open transaction and its dropping of listeners: nothing. Our queries leave no session
    state on pooled connections (no LISTEN, SET or session advisory lock outlives its
    ``async with``), so asyncpg's default reset query (``SELECT pg_advisory_unlock_all();
    CLOSE ALL; UNLISTEN *; RESET ALL``), a round trip on every release, is skipped: it
    was 17% of the gateway's time under bench/lifecycle.py's PATCHes."""


def redact(dsn: str) -> str:
    """The DSN without its password, for logs."""
    if "@" not in dsn or "://" not in dsn:
        return dsn
    scheme, rest = dsn.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{host}"

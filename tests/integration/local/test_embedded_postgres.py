"""The embedded PostgreSQL runs with the project's settings, across restarts."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from proffer_stream.local.embedded import POSTGRES_SETTINGS, EmbeddedPostgres

pytestmark = pytest.mark.integration


async def _settings_of(dsn: str) -> dict[str, str]:
    conn = await asyncpg.connect(dsn)
    try:
        return {name: await conn.fetchval(f"SHOW {name}") for name in POSTGRES_SETTINGS}
    finally:
        await conn.close()


async def test_the_embedded_server_runs_with_its_settings_after_a_restart(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "postgres")
    try:
        assert await _settings_of(server.start()) == POSTGRES_SETTINGS
        server.stop()
        assert await _settings_of(server.start()) == POSTGRES_SETTINGS
    finally:
        server.stop()

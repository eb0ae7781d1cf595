"""Only `migrate` and `up` change the schema; other commands say when it is behind."""

import subprocess
import sys

import asyncpg
import pytest
from support import new_database

from proffer_stream.core.errors import SchemaBehind
from proffer_stream.core.settings import Settings
from proffer_stream.db.migrations import migrate, pending, require_current
from proffer_stream.db.pool import connect_pool
from proffer_stream.worker.profiles import ProfileStore

pytestmark = pytest.mark.integration


@pytest.fixture
async def empty_database(postgres_url):
    return await new_database(postgres_url)


async def tables(dsn):
    conn = await asyncpg.connect(dsn)
    try:
        return {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    finally:
        await conn.close()


def cli(dsn, *args):
    return subprocess.run(
        [sys.executable, "-m", "proffer_stream", *args],
        env={"PROFFER_DATABASE_URL": dsn, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "command", [["keys", "list"], ["keys", "create", "--tenant", "acme"], ["keys", "revoke", "1"]]
)
async def test_key_commands_never_migrate_and_say_the_schema_is_behind(empty_database, command):
    result = cli(empty_database, *command)
    assert result.returncode == 1
    assert "schema is behind" in result.stderr and "proffer-stream migrate" in result.stderr
    assert "Traceback" not in result.stderr
    assert await tables(empty_database) == set()


async def test_migrate_then_keys_work(empty_database):
    assert "applied: 001_initial.sql" in cli(empty_database, "migrate").stdout
    created = cli(empty_database, "keys", "create", "--tenant", "acme")
    assert created.returncode == 0 and created.stdout.startswith("pk_")
    assert "acme" in cli(empty_database, "keys", "list").stdout


async def test_pending_reads_without_writing(empty_database):
    pool = await connect_pool(empty_database, max_size=1)
    try:
        assert await pending(pool) == [
            "001_initial.sql",
            "002_offers.sql",
            "003_tenant_config.sql",
            "004_offer_lifecycle.sql",
            "005_config_commands.sql",
            "006_issued_commands.sql",
            "007_offer_commands_by_offer.sql",
            "008_catalog.sql",
            "009_catalog_commands_issued.sql",
            "010_decisions.sql",
            "011_dashboard.sql",
            "012_placements.sql",
            "013_tenant_config_versions.sql",
            "014_catalog_held_grants.sql",
            "015_catalog_counts_ending.sql",
            "016_issued_commands_pruned.sql",
            "017_customers_recent_order.sql",
        ]
        with pytest.raises(SchemaBehind):
            await require_current(pool)
        assert await tables(empty_database) == set()
        await migrate(pool)
        assert await pending(pool) == []
    finally:
        await pool.close()


async def test_a_query_error_is_not_mistaken_for_an_outage(empty_database):
    """The worker's restore used to retry any PostgreSQL error for ever."""
    store = ProfileStore(
        state=None,
        partitions=4,
        database_url=Settings(database_url=empty_database).database_url,
        dedup_days=7,
    )
    try:
        restored = await store._restore([("acme", "u1"), ("acme", "u2")], {})
    finally:
        await store.close()
    assert restored.states == {}
    assert set(restored.failed) == {("acme", "u1"), ("acme", "u2")}
    assert all(isinstance(e, asyncpg.UndefinedTableError) for e in restored.failed.values())

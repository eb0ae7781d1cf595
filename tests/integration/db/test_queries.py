"""Storage against a real PostgreSQL: migrations, keys, idempotent upserts."""

from datetime import UTC, datetime

import pytest

from proffer_stream.core.identity import customer_id
from proffer_stream.db import customers, events, keys
from proffer_stream.db.migrations import migrate
from proffer_stream.ingest.models import NormalizedEvent
from proffer_stream.signals.fold import new_signals

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 17, 12, 0, tzinfo=UTC)


async def test_migrations_apply_once(db):
    assert await migrate(db) == []
    tables = {r["tablename"] for r in await db.fetch("SELECT tablename FROM pg_tables")}
    assert {"customers", "events", "api_keys", "schema_migrations"} <= tables


async def test_keys_are_stored_hashed_and_can_be_revoked(db):
    created = await keys.create_key(db, "acme", "ci")
    assert created.key.startswith("pk_")
    stored = await db.fetchval("SELECT key_hash FROM api_keys WHERE id = $1", created.id)
    assert created.key not in stored and stored == keys.hash_key(created.key)
    assert await keys.tenant_for_key(db, created.key) == "acme"
    assert await keys.tenant_for_key(db, created.key + "x") is None
    assert await keys.revoke_key(db, created.id)
    assert await keys.tenant_for_key(db, created.key) is None
    assert not await keys.revoke_key(db, created.id)


async def test_events_are_inserted_once(db):
    await keys.create_key(db, "acme", "test")
    cid = customer_id("acme", "u1")
    rows = [
        events.staged_event(
            "acme",
            cid,
            NormalizedEvent(
                id=f"e{i}", type="click", data={"n": i}, occurred_at=NOW, received_at=NOW
            ),
        )
        for i in range(3)
    ]
    async with db.acquire() as conn:
        assert await events.insert_events(conn, rows) == 3
        assert await events.insert_events(conn, rows + rows[:1]) == 0
    assert await db.fetchval("SELECT count(*) FROM events") == 3
    stored = await events.list_events(db, "acme", cid, limit=10, offset=0)
    assert {r.id for r in stored} == {"e0", "e1", "e2"}
    assert await events.list_events(db, "other", cid, limit=10, offset=0) == []


async def test_customer_snapshots_last_write_wins_and_load_back(db):
    first = new_signals("acme", "u1")
    first.event_count = 1
    later = first.model_copy(update={"event_count": 2, "email": "a@x.io"})
    async with db.acquire() as conn:
        await customers.upsert_customers(conn, [first], [first.model_dump_json()])
        await customers.upsert_customers(conn, [later], [later.model_dump_json()])
    row = await customers.get_customer_by_external_id(db, "acme", "u1")
    assert row.email == "a@x.io"
    assert row.customer_id == customer_id("acme", "u1")
    loaded = await customers.load_signals(db, [("acme", "u1"), ("acme", "nobody")])
    assert loaded[("acme", "u1")].event_count == 2
    assert ("acme", "nobody") not in loaded
    assert await customers.get_customer(db, "other", row.customer_id) is None


async def test_a_colliding_internal_id_keeps_the_first_customer(db):
    first = new_signals("acme", "u1")
    impostor = first.model_copy(update={"external_id": "u2", "email": "u2@x.io"})
    async with db.acquire() as conn:
        assert await customers.upsert_customers(conn, [first], [first.model_dump_json()]) == 1
        assert await customers.upsert_customers(conn, [impostor], [impostor.model_dump_json()]) == 0
    row = await customers.get_customer(db, "acme", first.customer_id)
    assert (row.external_id, row.email) == ("u1", None)


async def test_a_page_of_customers_is_read_from_the_index_in_its_order(db):
    await db.execute(
        "INSERT INTO customers (tenant_id, id, external_id, last_seen_at, signals, updated_at)"
        " SELECT 'acme', g, 'c' || g, CASE WHEN g % 10 = 0 THEN NULL"
        " ELSE now() - (g % 7) * interval '1 minute' END, '{}', now()"
        " FROM generate_series(1, 2000) g"
    )
    async with db.acquire() as conn:
        await conn.execute("SET enable_sort = off")  # a plan that must sort still shows one
        plan = await conn.fetchval(
            f"EXPLAIN (FORMAT JSON) {customers.CUSTOMERS_PAGE}", "acme", 50, 100
        )
        await conn.execute("RESET enable_sort")
    assert '"Sort"' not in plan and "customers_recent" in plan
